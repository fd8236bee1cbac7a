"""Malformed and hostile input: every one gets a 4xx page that says what and how to fix it."""

import base64
import datetime
import zlib

import pytest

from idp.models import AssertionConsumerService, ServiceProvider
from idp.saml import constants as c
from idp.saml.bindings import encode_redirect

SP = "https://sp.example.test/metadata"
ACS = "https://sp.example.test/acs"


def authn_request(
    issuer: str | None = SP,
    acs: str | None = ACS,
    version: str = "2.0",
    request_id: str | None = "_req1",
    attributes: str = "",
    root: str = "AuthnRequest",
    instant: str | None = None,
    prolog: str = "",
) -> bytes:
    instant = instant or datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    parts = [f'Version="{version}"', f'IssueInstant="{instant}"']
    if request_id:
        parts.append(f'ID="{request_id}"')
    if acs:
        parts.append(f'AssertionConsumerServiceURL="{acs}"')
    issuer_element = f"<saml:Issuer>{issuer}</saml:Issuer>" if issuer else ""
    return (
        f'{prolog}<samlp:{root} xmlns:samlp="{c.SAMLP}" xmlns:saml="{c.SAML}" '
        f"{' '.join(parts)} {attributes}>{issuer_element}</samlp:{root}>"
    ).encode()


def post_b64(xml: bytes) -> str:
    return base64.b64encode(xml).decode()


def raw_deflate_b64(data: bytes) -> str:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return base64.b64encode(compressor.compress(data) + compressor.flush()).decode()


XXE = '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
)

# (name, method, params, expected status, text the page must contain)
CASES = [
    ("no SAMLRequest", "get", {}, 400, "SAMLRequest is missing"),
    ("bad base64", "get", {"SAMLRequest": "@@not base64@@"}, 400, "not valid base64"),
    ("bad deflate", "get", {"SAMLRequest": post_b64(b"\xff\xfe plain bytes")}, 400, "not DEFLATE"),
    ("bad base64 over POST", "post", {"SAMLRequest": "%%%"}, 400, "not valid base64"),
    ("not XML", "get", {"SAMLRequest": raw_deflate_b64(b"hello, world")}, 400, "not well-formed"),
    ("XXE", "post", {"SAMLRequest": post_b64(authn_request(prolog=XXE))}, 400, "DOCTYPE"),
    (
        "entity expansion",
        "get",
        {"SAMLRequest": encode_redirect(authn_request(prolog=LAUGHS))},
        400,
        "DOCTYPE",
    ),
    (
        "unknown issuer",
        "get",
        {"SAMLRequest": encode_redirect(authn_request(issuer="urn:nobody"))},
        400,
        "Unknown service provider",
    ),
    (
        "unregistered ACS",
        "get",
        {"SAMLRequest": encode_redirect(authn_request(acs="https://evil.example/steal"))},
        400,
        "AssertionConsumerServiceURL is not registered",
    ),
    (
        "unregistered ACS index",
        "get",
        {
            "SAMLRequest": encode_redirect(
                authn_request(acs=None, attributes='AssertionConsumerServiceIndex="7"')
            )
        },
        400,
        "AssertionConsumerServiceIndex is not registered",
    ),
    (
        "ACS index not a number",
        "get",
        {
            "SAMLRequest": encode_redirect(
                authn_request(acs=None, attributes='AssertionConsumerServiceIndex="x"')
            )
        },
        400,
        "not a number",
    ),
    (
        "SAML 1.1 version",
        "get",
        {"SAMLRequest": encode_redirect(authn_request(version="1.1"))},
        400,
        "Unsupported SAML version",
    ),
    ("oversized", "get", {"SAMLRequest": "A" * 70_000}, 413, "too large"),
    (
        "decompression bomb",
        "get",
        {"SAMLRequest": raw_deflate_b64(b"<a>" + b" " * 5_000_000)},
        413,
        "decompression bomb",
    ),
    (
        "LogoutRequest at SSO",
        "get",
        {"SAMLRequest": encode_redirect(authn_request(root="LogoutRequest"))},
        400,
        "not an AuthnRequest",
    ),
    (
        "missing Issuer",
        "get",
        {"SAMLRequest": encode_redirect(authn_request(issuer=None))},
        400,
        "no Issuer",
    ),
    (
        "missing ID",
        "get",
        {"SAMLRequest": encode_redirect(authn_request(request_id=None))},
        400,
        "no ID",
    ),
    (
        "bad IssueInstant",
        "get",
        {"SAMLRequest": encode_redirect(authn_request(instant="noon"))},
        400,
        "invalid IssueInstant",
    ),
    (
        "artifact response binding",
        "get",
        {
            "SAMLRequest": encode_redirect(
                authn_request(
                    attributes='ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact"'
                )
            )
        },
        400,
        "Unsupported response binding",
    ),
    (
        "wrong Destination",
        "get",
        {
            "SAMLRequest": encode_redirect(
                authn_request(attributes='Destination="https://other-idp.example/sso"')
            )
        },
        400,
        "addressed to another endpoint",
    ),
    (
        "RelayState too long",
        "get",
        {"SAMLRequest": encode_redirect(authn_request()), "RelayState": "r" * 2000},
        400,
        "RelayState is too long",
    ),
    (
        "deep nesting",
        "post",
        {"SAMLRequest": post_b64(b"<a>" * 5_000 + b"</a>" * 5_000)},
        400,
        "not well-formed",
    ),
    (
        "garbage redirect signature",
        "get",
        {
            "SAMLRequest": encode_redirect(authn_request(issuer="https://signed.example/sp")),
            "SigAlg": c.SIG_RSA_SHA256,
            "Signature": base64.b64encode(b"x" * 256).decode(),
        },
        400,
        "signature is invalid",
    ),
    (
        "unsigned request to a signing SP",
        "get",
        {"SAMLRequest": encode_redirect(authn_request(issuer="https://signed.example/sp"))},
        400,
        "not signed",
    ),
    (
        "disabled SP",
        "get",
        {"SAMLRequest": encode_redirect(authn_request(issuer="https://disabled.example/sp"))},
        403,
        "disabled",
    ),
]


@pytest.fixture
def registered(demo, key_pems):
    generic = ServiceProvider.objects.create(name="Test SP", entity_id=SP)
    AssertionConsumerService.objects.create(
        service_provider=generic, location=ACS, index=0, is_default=True
    )
    signed = ServiceProvider.objects.create(
        name="Signing SP",
        entity_id="https://signed.example/sp",
        request_certificate=key_pems[1].decode(),
        require_signed_requests=True,
    )
    AssertionConsumerService.objects.create(service_provider=signed, location=ACS, index=0)
    disabled = ServiceProvider.objects.create(
        name="Off", entity_id="https://disabled.example/sp", enabled=False
    )
    AssertionConsumerService.objects.create(service_provider=disabled, location=ACS, index=0)


@pytest.mark.parametrize(
    ("method", "params", "status", "message"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_sso_refuses_with_a_clear_page(client, registered, method, params, status, message):
    response = getattr(client, method)("/saml/sso/", params)
    body = response.content.decode()
    assert response.status_code == status, body
    assert message in body
    assert "How to fix it" in body


def test_at_least_twenty_hostile_inputs():
    assert len(CASES) >= 20


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({}, 400, "The sp parameter is missing"),
        ({"sp": "urn:nobody"}, 400, "Unknown service provider"),
        ({"sp": "urn:amazon:webservices", "RelayState": "x" * 5000}, 400, "RelayState is too long"),
        ({"sp": "urn:amazon:webservices", "role": "arn:aws:iam::1:role/X"}, 403, "do not have"),
    ],
)
def test_idp_initiated_refuses_with_a_clear_page(client, demo, params, status, message):
    client.login(username="alice", password="alice")
    response = client.get("/saml/init/", params)
    assert response.status_code == status
    assert message in response.content.decode()


def test_idp_initiated_off_is_refused(client, demo):
    ServiceProvider.objects.filter(entity_id="urn:amazon:webservices").update(
        allow_idp_initiated=False
    )
    client.login(username="alice", password="alice")
    response = client.get("/saml/init/", {"sp": "urn:amazon:webservices"})
    assert response.status_code == 403
    assert "IdP-initiated sign-on is off" in response.content.decode()


def test_stale_resume_link_is_explained(client, demo):
    response = client.get("/saml/sso/resume/nonsense/")
    assert response.status_code == 400
    assert "This sign-on link is not valid" in response.content.decode()


def test_unknown_page_is_a_friendly_404(client, db, settings):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()


def test_broken_rule_saved_behind_the_admin_gives_409_not_500(client, demo):
    sp = ServiceProvider.objects.get(entity_id="urn:amazon:webservices")
    sp.rules.filter(source="group_regex").update(group_pattern="(unclosed")
    client.login(username="alice", password="alice")
    response = client.get("/saml/init/", {"sp": sp.entity_id})
    assert response.status_code == 409
    assert "A claim rule is broken" in response.content.decode()


def test_missing_signing_key_is_explained(client, db):
    from django.core.management import call_command

    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    client.login(username="alice", password="alice")
    response = client.get("/saml/init/", {"sp": "urn:amazon:webservices"})
    assert response.status_code == 503
    assert "ensure_signing_key" in response.content.decode()


def test_login_without_csrf_token_is_explained(db):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post(
        "/accounts/login/", {"username": "alice", "password": "alice"}
    )
    assert response.status_code == 403
    assert "The form expired" in response.content.decode()


def test_wrong_password_keeps_the_pending_request(client, demo):
    response = client.post(
        "/accounts/login/",
        {"username": "alice", "password": "wrong", "next": "/saml/sso/resume/abc/"},
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "do not match" in body
    assert 'value="/saml/sso/resume/abc/"' in body


# --- found in review: each was a bypass or a 500 before ------------------------


def signed_redirect_query(key_pem: bytes, xml: bytes, relay_state: str = "") -> str:
    from urllib.parse import quote

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    query = "SAMLRequest=" + quote(encode_redirect(xml), safe="")
    if relay_state:
        query += "&RelayState=" + quote(relay_state, safe="")
    query += "&SigAlg=" + quote(c.SIG_RSA_SHA256, safe="")
    key = serialization.load_pem_private_key(key_pem, password=None)
    signature = key.sign(query.encode(), padding.PKCS1v15(), hashes.SHA256())
    return query + "&Signature=" + quote(base64.b64encode(signature).decode(), safe="")


def test_a_second_escaped_saml_request_cannot_ride_on_a_valid_signature(
    client, registered, key_pems
):
    from urllib.parse import quote

    signed_sp = "https://signed.example/sp"
    genuine = signed_redirect_query(key_pems[0], authn_request(issuer=signed_sp))
    client.login(username="alice", password="alice")
    assert client.get("/saml/sso/?" + genuine).status_code == 200
    forged = encode_redirect(authn_request(issuer=signed_sp, request_id="_FORGED"))
    response = client.get(f"/saml/sso/?{genuine}&SAML%52equest={quote(forged, safe='')}")
    assert response.status_code == 400
    assert "repeats SAMLRequest" in response.content.decode()


def test_relay_state_is_covered_by_the_redirect_signature(client, registered, key_pems):
    signed_sp = "https://signed.example/sp"
    query = signed_redirect_query(key_pems[0], authn_request(issuer=signed_sp), "original")
    response = client.get("/saml/sso/?" + query.replace("original", "forged"))
    assert response.status_code == 400
    assert "signature is invalid" in response.content.decode()


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (authn_request(attributes='ForceAuthn="maybe"'), "ForceAuthn is not a boolean"),
        (authn_request(request_id="_" + "x" * 300), "ID is too long"),
        (authn_request(issuer=SP + "<!-- x -->"), "Issuer holds markup"),
        (authn_request(instant="2026-11-21"), "invalid IssueInstant"),
        (authn_request(instant="20261121T120000Z"), "invalid IssueInstant"),
    ],
)
def test_odd_authn_requests_are_refused(client, registered, xml, message):
    response = client.get("/saml/sso/", {"SAMLRequest": encode_redirect(xml)})
    assert response.status_code == 400
    assert message in response.content.decode()


def test_control_characters_in_directory_data_give_409(client, demo):
    from users.models import User

    User.objects.filter(username="alice").update(email="alice\x01@example.com")
    client.login(username="alice", password="alice")
    ServiceProvider.objects.filter(entity_id="urn:amazon:webservices").update(check_policy="warn")
    response = client.get("/saml/init/", {"sp": "urn:amazon:webservices"})
    assert response.status_code == 409
    assert "control characters" in response.content.decode()


def test_nul_in_sp_parameter_is_a_clear_400(client, demo):
    client.login(username="alice", password="alice")
    response = client.get("/saml/init/", {"sp": "urn:\x00amazon"})
    assert response.status_code == 400
    assert "Unknown service provider" in response.content.decode()


def test_force_authn_as_another_user_keeps_the_request(client, registered):
    import re
    from urllib.parse import unquote

    client.login(username="alice", password="alice")
    xml = authn_request(attributes='ForceAuthn="true"')
    first = client.get("/saml/sso/", {"SAMLRequest": encode_redirect(xml)})
    next_url = unquote(re.search(r"next=([^&]+)", first["Location"]).group(1))
    login = client.post(
        "/accounts/login/", {"username": "bob", "password": "bob", "next": next_url}
    )
    assert login.status_code == 302
    response = client.get(next_url)
    assert response.status_code == 200
    assert "SAMLResponse" in response.content.decode()


def test_post_binding_continues_over_a_same_site_get(client, registered):
    response = client.post("/saml/sso/", {"SAMLRequest": post_b64(authn_request())})
    assert response.status_code == 303
    assert response["Location"].startswith("/saml/sso/resume/")


def test_non_rsa_request_certificate_is_refused(registered):
    from cryptography.hazmat.primitives.asymmetric import ec
    from django.core.exceptions import ValidationError

    from .agents import certificate

    sp = ServiceProvider.objects.get(entity_id=SP)
    sp.request_certificate = certificate(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(ValidationError, match="Only RSA"):
        sp.full_clean()
