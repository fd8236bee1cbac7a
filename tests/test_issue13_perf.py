"""Issue 13 part P: the sign-on's front door made cheaper, its behaviour kept: the auto-submit
page without the template engine, the CSP header built once, a short access log line."""

import lxml.html
import pytest

from idp.saml import aws
from idp.saml.bindings import PostForm
from idp.views import post_form_page

ROLE = "arn:aws:iam::111122223333:role/Admin"
HOSTILE = [
    "plain",
    '"><script>alert(1)</script>',
    "' onfocus='alert(1)",
    "a&amp;b & c &lt; <!-- -->",
    "ünïcødé 東京 \u2028 tab\there",
    "</form><form action='https://evil.example/'>",
    "{action} {inputs} %s {{ }}",
]


# --- the auto-submit page -----------------------------------------------------------


@pytest.mark.parametrize("hostile", HOSTILE)
def test_the_post_form_carries_every_value_exactly_and_nothing_else(hostile):
    form = PostForm(
        action=f"https://sp.example/acs?x={hostile}",
        fields={"SAMLResponse": "PHNhbWxwOlJlc3BvbnNlLz4=", "RelayState": hostile},
    )
    page = lxml.html.fromstring(post_form_page(form))
    [parsed] = page.forms
    assert parsed.action == form.action
    assert dict(parsed.form_values()) == form.fields
    assert parsed.method == "POST"
    # No value became markup: one script (the static file), one form, one button.
    assert [script.get("src") for script in page.iter("script")] == ["/static/idp/autosubmit.js"]
    assert len(list(page.iter("form"))) == 1
    [button] = page.iter("button")
    assert button.text_content() == f"Continue to {form.action}"


def test_the_post_form_without_relay_state_has_one_field():
    page = lxml.html.fromstring(post_form_page(PostForm("https://sp.example/acs", {"A": "b"})))
    assert [element.get("name") for element in page.iter("input")] == ["A"]


def test_the_post_form_script_follows_the_static_url(settings):
    settings.STATIC_URL = "/assets/"
    page = lxml.html.fromstring(post_form_page(PostForm("https://sp.example/acs", {"A": "b"})))
    assert [script.get("src") for script in page.iter("script")] == ["/assets/idp/autosubmit.js"]


def test_the_idp_initiated_page_keeps_its_headers(client, demo):
    from users.models import User

    client.force_login(User.objects.get(username="alice"))
    response = client.get(f"/saml/init/?sp={aws.AUDIENCE}&role={ROLE}")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response["Cache-Control"] == "no-store"
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    [form] = lxml.html.fromstring(response.content.decode()).forms
    assert form.action == "https://signin.aws.amazon.com/saml"
    assert set(dict(form.form_values())) == {"SAMLResponse"}
