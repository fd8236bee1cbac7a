"""IDP_LOGIN_MODE=picker: click a user to sign in, off by default, never into the admin."""

import re

import lxml.html
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from idp import conf
from idp.models import PersistentNameID
from idp.signals import PICKED_LOGIN, SESSION_INDEX
from users.models import User

from .agents import Browser, ServiceProvider, parse_post_form

WARNING = 'data-testid="picker-warning"'


@pytest.fixture
def picker(settings):
    settings.IDP_LOGIN_MODE = "picker"


def picks(page: str) -> list[str]:
    """The user names the picker offers, from its forms."""
    return [
        form.fields["username"]
        for form in lxml.html.fromstring(page).forms
        if form.action.endswith("/accounts/pick/")
    ]


def signed_in_as(client: Client) -> str | None:
    page = client.get("/")
    return None if page.status_code == 302 else page.wsgi_request.user.get_username()


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, "password"),
        ({"IDP_LOGIN_MODE": "picker"}, "picker"),
        ({"IDP_LOGIN_MODE": ""}, "password"),
    ],
)
def test_the_setting_defaults_to_password(environment, expected):
    assert conf.from_environment(environment)["IDP_LOGIN_MODE"] == expected


@pytest.mark.parametrize("value", ["Picker", "pick", "none", "password,picker"])
def test_a_bad_login_mode_is_one_line(value):
    with pytest.raises(ImproperlyConfigured) as refused:
        conf.from_environment({"IDP_LOGIN_MODE": value})
    assert "IDP_LOGIN_MODE" in str(refused.value) and "\n" not in str(refused.value)
    assert "password or picker" in str(refused.value)


def test_off_by_default_the_picker_refuses_and_nothing_shows(demo, client):
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    assert picks(page.content.decode()) == [] and WARNING not in page.content.decode()

    refused = client.post("/accounts/pick/", {"username": "alice"})

    assert refused.status_code == 404 and b"Picker login is off" in refused.content
    assert signed_in_as(client) is None
    client.login(username="alice", password="alice")
    assert WARNING not in client.get("/").content.decode()


def test_a_click_signs_in_like_a_password_and_the_warning_shows(demo, picker, client):
    page = client.get("/accounts/login/")
    assert WARNING in page.content.decode()
    assert picks(page.content.decode()) == ["alice", "bob", "carol"]  # not the staff admin

    answer = client.post("/accounts/pick/", {"username": "bob", "next": "/?x=1"})

    assert answer.status_code == 302 and answer["Location"] == "/?x=1"
    portal = client.get("/")
    assert portal.status_code == 200 and portal.wsgi_request.user.get_username() == "bob"
    assert WARNING in portal.content.decode()
    assert client.session[SESSION_INDEX].startswith("_") and client.session[PICKED_LOGIN]


def test_the_pick_needs_the_csrf_token(demo, picker):
    client = Client(enforce_csrf_checks=True)
    page = client.get("/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())[1]

    assert client.post("/accounts/pick/", {"username": "alice"}).status_code == 403
    assert signed_in_as(client) is None
    assert client.post("/accounts/pick/", {"username": "alice", "csrfmiddlewaretoken": token})
    assert signed_in_as(client) == "alice"


def test_a_get_cannot_pick(demo, picker, client):
    assert client.get("/accounts/pick/", {"username": "alice"}).status_code == 405
    assert signed_in_as(client) is None


@pytest.fixture
def odd_users(demo):
    User.objects.create_user("inactive", password="x", is_active=False)
    User.objects.create_user("operator", password="x", is_staff=True)
    User.objects.create_user("root", password="x", is_superuser=True)


@pytest.mark.parametrize(
    ("username", "status", "title"),
    [
        ("", 400, "Which user?"),
        ("ali\nce", 400, "Which user?"),
        ("a" * 151, 400, "Which user?"),
        ("nobody", 404, "No such user"),
        ("ALICE", 404, "No such user"),
        ("inactive", 404, "No such user"),
        ("admin", 403, "Staff users sign in with a password"),
        ("operator", 403, "Staff users sign in with a password"),
        ("root", 403, "Staff users sign in with a password"),
    ],
)
def test_a_user_that_cannot_be_picked_gets_an_error_page(
    odd_users, picker, client, username, status, title
):
    answer = client.post("/accounts/pick/", {"username": username})

    assert answer.status_code == status
    assert title in answer.content.decode() and "How to fix it" in answer.content.decode()
    assert signed_in_as(client) is None


def test_inactive_and_staff_users_are_not_listed(odd_users, picker, client):
    listed = picks(client.get("/accounts/login/").content.decode())
    assert listed == ["alice", "bob", "carol"]


@pytest.mark.parametrize(
    "next_url", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)", ""]
)
def test_an_outside_next_goes_to_the_portal(demo, picker, client, next_url):
    answer = client.post("/accounts/pick/", {"username": "alice", "next": next_url})
    assert answer.status_code == 302 and answer["Location"] == "/"


@pytest.fixture
def many_users(db):
    User.objects.bulk_create(
        User(username=f"user{n:04}", email=f"u{n}@example.test") for n in range(120)
    )


@pytest.mark.parametrize(
    ("query", "expected", "more"),
    [
        ("", [f"user{n:04}" for n in range(50)], True),
        ("user011", [f"user{n:04}" for n in range(110, 120)], False),
        ("U119@EXAMPLE", ["user0119"], False),  # e-mail, any case
        ("  user0007  ", ["user0007"], False),
        ("zzz", [], False),
        ("%", [], False),  # a LIKE wildcard is a plain character
    ],
)
def test_the_search_bounds_the_list(many_users, picker, client, query, expected, more):
    page = client.get("/accounts/login/", {"q": query}).content.decode()
    assert picks(page) == expected
    assert ('data-testid="more"' in page) is more


def test_a_picked_session_never_opens_the_admin(demo, picker, client):
    client.post("/accounts/pick/", {"username": "alice"})
    alice = User.objects.get(username="alice")
    alice.is_staff = alice.is_superuser = True
    alice.save()
    assert signed_in_as(client) == "alice"

    refused = client.get("/admin/")
    assert refused.status_code == 302 and refused["Location"].startswith("/admin/login/")

    # A password proves who she is: the same session then counts for the admin.
    client.post("/admin/login/", {"username": "alice", "password": "alice", "next": "/admin/"})
    assert client.get("/admin/").status_code == 200
    assert PICKED_LOGIN not in client.session


def test_turning_the_picker_off_ends_picked_sessions_only(demo, picker, settings):
    picked, typed = Client(), Client()
    picked.post("/accounts/pick/", {"username": "alice"})
    typed.login(username="bob", password="bob")

    settings.IDP_LOGIN_MODE = "password"

    assert signed_in_as(picked) is None
    assert signed_in_as(typed) == "bob"


@pytest.mark.django_db(transaction=True)
def test_sp_initiated_sign_on_completes_through_a_click(demo, picker, idp_url, tmp_path):
    """Over HTTP: pysaml2's AuthnRequest, the picker page, one click, a valid response."""
    browser = Browser(idp_url)
    sp = ServiceProvider(tmp_path / "sp", browser.get("/saml/metadata/").content)
    sp.register(tmp_path)
    request_id, url = sp.redirect_request(relay_state="after-pick")

    page = browser.get(url)
    assert "/accounts/login/" in page.url and WARNING in page.text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "<script" not in page.text  # no inline script, nor any: plain forms
    form = next(
        f
        for f in lxml.html.fromstring(page.text).forms
        if f.action.endswith("/accounts/pick/") and f.fields["username"] == "alice"
    )
    assert form.fields["next"].startswith("/saml/sso/resume/")
    answer = browser.post(form.action, dict(form.form_values()), headers={"Referer": page.url})

    posted = parse_post_form(answer.text)
    assert posted["action"] == sp.acs and posted["fields"]["RelayState"] == "after-pick"
    accepted = sp.accept(posted["fields"]["SAMLResponse"], request_id)
    assert accepted.in_response_to == request_id
    name_id = PersistentNameID.objects.get(service_provider__entity_id=sp.entity_id)
    assert (name_id.user.username, name_id.value) == ("alice", accepted.name_id.text)
    assert accepted.assertion.authn_statement[0].session_index.startswith("_")
