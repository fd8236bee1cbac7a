"""Provisioning the second factor and the "as if" methods: the API (write-only totp_secret,
authn_method, mfa_enrolled), fixtures (totp_secret, authn_method, dumped back), the mint's
authn_context (API and mint_response), and the admin."""

import base64
import io

import pytest
from django.core.management import CommandError, call_command
from django_otp.plugins.otp_totp.models import TOTPDevice
from lxml import etree

from idp import authn_context as ac
from idp import fixtures, mfa
from idp.models import ServiceProvider
from idp.saml import aws
from idp.saml import constants as c
from users.models import User

from .test_api_directory import client_for, refusal, staff
from .test_issue12_mfa import SECRET, code_for, password, signed_in_as, submit_code

pytestmark = pytest.mark.django_db

NS = {"saml": c.SAML}


@pytest.fixture
def api(demo):
    return client_for(staff("operator", "users.view_user", "users.add_user", "users.change_user"))


def device_key(username: str) -> str | None:
    device = TOTPDevice.objects.filter(user__username=username, confirmed=True).first()
    return device.key if device else None


# --- the API ----------------------------------------------------------------------------


def test_the_api_provisions_a_secret_that_never_reads_back(api, client):
    created = api.post(
        "/api/v1/users",
        {"username": "ana", "password": "a long password 1", "totp_secret": SECRET},
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert "totp_secret" not in body and body["mfa_enrolled"] is True
    assert body["authn_method"] == "password"
    assert device_key("ana") == base64.b32decode(SECRET).hex()
    assert "totp_secret" not in api.get("/api/v1/users/ana").json()

    # The provisioned secret is the one the login asks for.
    client.post("/accounts/login/", {"username": "ana", "password": "a long password 1"})
    assert submit_code(client, code_for(SECRET)).status_code == 302
    assert signed_in_as(client) == "ana"

    # A PUT that leaves the secret out keeps the device; "" removes it.
    kept = api.put("/api/v1/users/ana", {"username": "ana"}, format="json")
    assert kept.status_code == 200 and kept.json()["mfa_enrolled"] is True
    removed = api.patch("/api/v1/users/ana", {"totp_secret": ""}, format="json")
    assert removed.json()["mfa_enrolled"] is False and device_key("ana") is None


@pytest.mark.parametrize(
    ("secret", "words"),
    [("not base32!", "not base32"), ("JBSWY3DP", "5 bytes"), ("A" * 199, "bytes")],
)
def test_a_bad_secret_is_a_400_in_the_admins_words(api, secret, words):
    answer = api.post("/api/v1/users", {"username": "bad", "totp_secret": secret}, format="json")
    body = refusal(answer, 400)
    assert words in str(body["fields"]["totp_secret"])
    assert not User.objects.filter(username="bad").exists()


def test_authn_method_is_checked_and_read_back(api):
    refused = api.post(
        "/api/v1/users", {"username": "kim", "authn_method": "retina"}, format="json"
    )
    assert "authn_method" in refusal(refused, 400)["fields"]
    made = api.post("/api/v1/users", {"username": "kim", "authn_method": "x509"}, format="json")
    assert made.json()["authn_method"] == "x509"
    assert User.objects.get(username="kim").authn_method == "x509"


# --- the mint ---------------------------------------------------------------------------


def statement_class(xml: str) -> str:
    return etree.fromstring(xml.encode()).findtext(".//saml:AuthnContextClassRef", namespaces=NS)


@pytest.mark.parametrize(
    ("given", "stated"),
    [
        ("", ac.PASSWORD_PROTECTED_TRANSPORT),
        ("X509", ac.X509),
        ("mfa", ac.MFA),
        (ac.KERBEROS, ac.KERBEROS),
        ("unspecified", ac.UNSPECIFIED),
    ],
)
def test_the_api_mint_states_the_class_it_is_given(demo, given, stated):
    root = client_for(User.objects.get(username="admin"))
    answer = root.post(
        "/api/v1/sign-ons",
        {"user": "alice", "sp": aws.AUDIENCE, "authn_context": given},
        format="json",
    )
    assert answer.status_code == 201, answer.content
    assert statement_class(answer.json()["xml"]) == stated


def test_an_unknown_class_is_a_400_that_lists_the_known_ones(demo):
    root = client_for(User.objects.get(username="admin"))
    answer = root.post(
        "/api/v1/sign-ons",
        {"user": "alice", "sp": aws.AUDIENCE, "authn_context": "retina"},
        format="json",
    )
    body = refusal(answer, 400)
    assert "retina" in body["message"] and "X509" in body["message"]


def test_mint_response_takes_authn_context(demo):
    out = io.StringIO()
    call_command(
        "mint_response",
        "alice",
        aws.AUDIENCE,
        "--authn-context",
        "X509",
        "--format",
        "xml",
        stdout=out,
    )
    assert statement_class(out.getvalue()) == ac.X509
    sp = ServiceProvider.objects.get(entity_id=aws.AUDIENCE)
    sp.require_mfa = True
    sp.save()
    with pytest.raises(CommandError) as refused:
        call_command("mint_response", "alice", aws.AUDIENCE, stdout=io.StringIO())
    assert "requires multi-factor" in str(refused.value) and "\n" not in str(refused.value)


# --- fixtures ---------------------------------------------------------------------------


def fixture(**user) -> dict:
    return {"users": [{"username": "fay", "password": "fay", **user}]}


def test_a_fixture_provisions_totp_and_authn_method_and_dumps_them_back(demo, client):
    fixtures.load(fixture(totp_secret=SECRET, authn_method="kerberos"), source="t")
    assert device_key("fay") == base64.b32decode(SECRET).hex()
    assert User.objects.get(username="fay").authn_method == "kerberos"
    dumped = next(u for u in fixtures.dump()["users"] if u["username"] == "fay")
    assert dumped["totp_secret"] == SECRET and dumped["authn_method"] == "kerberos"

    password(client, "fay")
    assert submit_code(client, code_for(SECRET)).status_code == 302
    assert client.session["fedmock_authn_class"] == ac.MFA

    # Reloading the same file changes nothing; leaving the secret out keeps the device.
    again = fixtures.load(fixture(totp_secret=SECRET, authn_method="kerberos"), source="t")
    assert not again.changed, str(again)
    fixtures.load(fixture(), source="t")
    assert device_key("fay") == base64.b32decode(SECRET).hex()
    fixtures.load(fixture(totp_secret=""), source="t")
    assert device_key("fay") is None


@pytest.mark.parametrize(
    ("user", "field", "words"),
    [
        ({"totp_secret": "0000"}, "totp_secret", "not base32"),
        ({"totp_secret": 123456}, "totp_secret", "text"),
        ({"authn_method": "retina"}, "authn_method", "not a valid choice"),
    ],
)
def test_fixture_refusals_name_the_field(demo, user, field, words):
    with pytest.raises(fixtures.FixtureError) as refused:
        fixtures.check(fixture(**user), source="t.yaml")
    assert field in str(refused.value) and words in str(refused.value)


def test_the_password_class_follows_authn_method(demo, client):
    User.objects.filter(username="alice").update(authn_method="x509")
    password(client, "alice")
    assert client.session["fedmock_authn_class"] == ac.X509


# --- the admin --------------------------------------------------------------------------


def test_the_admin_shows_and_clears_totp_and_edits_require_mfa(demo, admin_client):
    alice = User.objects.get(username="alice")
    mfa.provision(alice, mfa.secret_from_base32(SECRET))
    page = admin_client.get(f"/admin/users/user/{alice.pk}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Enrolled: every password sign-in asks for a code" in text
    assert 'name="authn_method"' in text
    done = admin_client.post(
        "/admin/users/user/",
        {"action": "remove_totp", "_selected_action": [alice.pk]},
        follow=True,
    )
    assert "Removed 1 TOTP device(s)." in done.content.decode()
    assert not mfa.enrolled(alice)
    sp = ServiceProvider.objects.get(entity_id=aws.AUDIENCE)
    assert (
        'name="require_mfa"'
        in admin_client.get(f"/admin/idp/serviceprovider/{sp.pk}/change/").content.decode()
    )


def test_require_mfa_is_an_sp_setting_in_the_api(demo):
    root = client_for(User.objects.get(username="admin"))
    path = "/api/v1/service-providers/urn:amazon:webservices"
    assert root.get(path).json()["require_mfa"] is False
    changed = root.patch(path, {"require_mfa": True}, format="json")
    assert changed.status_code == 200 and changed.json()["require_mfa"] is True
    assert ServiceProvider.objects.get(entity_id=aws.AUDIENCE).require_mfa
