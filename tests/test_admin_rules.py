"""Claim rules in the admin: help texts read as written, templates with stray braces are refused.

Issue 8, item 14.
"""

import pytest
from django.contrib import admin
from django.core.exceptions import ValidationError

from idp import rule_syntax
from idp.admin import MetadataImportForm, PreviewForm, RuleSetForm
from idp.models import ClaimRule, ServiceProvider


def test_claim_rule_help_texts_show_their_angle_brackets(client, demo):
    client.login(username="admin", password="admin")
    sp = ServiceProvider.objects.get(entity_id="urn:amazon:webservices")
    for url in ("/admin/idp/claimrule/add/", f"/admin/idp/serviceprovider/{sp.pk}/change/"):
        page = client.get(url).content.decode()
        assert "Named groups in Python (?P&lt;role&gt;…), ADFS (?&lt;role&gt;…)" in page, url
        assert "groups or attr.&lt;attribute name&gt;" in page, url
        assert "(?P<role>…), ADFS" not in page, url


def _help_texts():
    for model in admin.site._registry:
        for field in model._meta.get_fields():
            if getattr(field, "help_text", ""):
                yield f"{model._meta.label}.{field.name}", str(field.help_text)
    for form in (MetadataImportForm, PreviewForm, RuleSetForm):
        for name, field in form.base_fields.items():
            if field.help_text:
                yield f"{form.__name__}.{name}", str(field.help_text)


def test_no_help_text_carries_raw_markup():
    """Django inserts help texts as HTML: a < must be written &lt; to be seen."""
    raw = [label for label, text in _help_texts() if "<" in text or ">" in text]
    assert not raw


# (template, the problem's words or None)
TEMPLATES = [
    ("{email}", None),
    ("${account}", None),
    ("arn:aws:iam::{account}:role/{role},arn:aws:iam::{account}:saml-provider/{provider}", None),
    ("arn:aws:iam::${account}:saml-provider/${provider}", None),
    ("costs $5, {attr.department}", None),
    ("no placeholder at all", None),
    ("$", None),
    ("{email", "not closed"),
    ("${email", "not closed"),
    ("${", "not closed"),
    ("{", "not closed"),
    ("email}", "closes no placeholder"),
    ("}", "closes no placeholder"),
    ("{email}}", "closes no placeholder"),
    ("}{email}", "closes no placeholder"),
    ("{{email}}", "not closed before the next"),
    ("{a{b}}", "not closed before the next"),
    ("{}", "is empty"),
    ("${}", "is empty"),
    ("{email} and {", "not closed"),
]


@pytest.mark.parametrize(("template", "problem"), TEMPLATES)
def test_template_problem(template, problem):
    found = rule_syntax.template_problem(template)
    if problem is None:
        assert found == ""
    else:
        assert problem in found


@pytest.mark.parametrize(
    ("source", "extra"),
    [
        ("template", {}),
        ("group_regex", {"group_pattern": r"^AWS-(?P<account>\d{12})$"}),
    ],
)
@pytest.mark.parametrize(("template", "problem"), [t for t in TEMPLATES if t[1]])
def test_a_rule_with_stray_braces_is_refused(db, source, extra, template, problem):
    rule = ClaimRule(attribute_name="x", source=source, value=template, **extra)
    with pytest.raises(ValidationError) as refused:
        rule.full_clean()
    assert problem in " ".join(refused.value.message_dict["value"])


def test_a_literal_may_contain_braces(db):
    ClaimRule(attribute_name="x", source="literal", value="{not a template").full_clean()


def test_the_admin_refuses_an_unclosed_brace(client, demo):
    client.login(username="admin", password="admin")
    response = client.post(
        "/admin/idp/claimrule/add/",
        {
            "order": 1,
            "enabled": "on",
            "condition": "always",
            "source": "template",
            "value": "{email",
            "attribute_name": "mail",
            "name_format": "urn:oasis:names:tc:SAML:2.0:attrname-format:uri",
        },
    )
    assert response.status_code == 200
    assert "is not closed" in response.content.decode()
    assert not ClaimRule.objects.filter(value="{email").exists()
