"""Issue 8, items 1 and 4-8: what an attacker or a slip sends to the SSO endpoint and the registry.

Each test is written so that it failed on the code before the fix.
"""

import base64
import datetime
import io
import re
from pathlib import Path
from unittest import mock
from urllib.parse import quote, unquote

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction

from idp import cache, replay
from idp.models import AnsweredRequest, AssertionConsumerService, ServiceProvider
from idp.saml import constants as c
from idp.saml.bindings import encode_redirect
from idp.saml.signing import ENVELOPED, EXC_C14N

from . import test_hostile_inputs
from .test_hostile_inputs import (
    ACS,
    SP,
    authn_request,
    post_b64,
    signed_redirect_query,
)

registered = test_hostile_inputs.registered  # the fixture: three SPs and the demo directory
SIGNED_SP = "https://signed.example/sp"
XPATH = "http://www.w3.org/TR/1999/REC-xpath-19991116"
XSLT = "http://www.w3.org/TR/1999/REC-xslt-19991116"
INCLUSIVE_C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
HMAC_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"
SM2_CERTIFICATE = (Path(__file__).parent / "data" / "sm2-certificate.pem").read_text()


def now_text(offset_seconds: float = 0) -> str:
    moment = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=offset_seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def signature(
    transforms=(ENVELOPED, EXC_C14N),
    canonicalization=EXC_C14N,
    method=c.SIG_RSA_SHA256,
    digest=c.DIGEST_SHA256,
    uri="#_req1",
    extra_reference="",
    extra="",
    prefixes="",
    key_info="<ds:KeyInfo><ds:X509Data><ds:X509Certificate>AAAA</ds:X509Certificate>"
    "</ds:X509Data></ds:KeyInfo>",
) -> str:
    """A junk ds:Signature: its shape is what is judged, never its value."""
    inclusive = f'<ec:InclusiveNamespaces xmlns:ec="{EXC_C14N}" PrefixList="{prefixes}"/>'
    transform_xml = "".join(
        f'<ds:Transform Algorithm="{t}">'
        + ("<ds:XPath>count(//. | //@* | //namespace::*)</ds:XPath>" if t == XPATH else "")
        + (inclusive if prefixes and t == EXC_C14N else "")
        + "</ds:Transform>"
        for t in transforms
    )
    reference = (
        f'<ds:Reference URI="{uri}"><ds:Transforms>{transform_xml}</ds:Transforms>'
        f'<ds:DigestMethod Algorithm="{digest}"/><ds:DigestValue>AAAA</ds:DigestValue>'
        "</ds:Reference>"
    )
    return (
        f'<ds:Signature xmlns:ds="{c.DS}"><ds:SignedInfo>'
        f'<ds:CanonicalizationMethod Algorithm="{canonicalization}"/>'
        f'<ds:SignatureMethod Algorithm="{method}"/>{reference}{extra_reference}'
        f"</ds:SignedInfo><ds:SignatureValue>AAAA</ds:SignatureValue>{key_info}{extra}"
        "</ds:Signature>"
    )


def signed_request(
    signature_xml: str,
    filler: int = 0,
    issuer: str = SIGNED_SP,
    request_id: str = "_req1",
    depth: int = 0,
) -> bytes:
    filler_xml = "<f/>" * filler + "<f>" * depth + "</f>" * depth
    extensions = (
        f"<samlp:Extensions><x:f xmlns:x='urn:filler'>{filler_xml}</x:f></samlp:Extensions>"
        if filler_xml
        else ""
    )
    return (
        f'<samlp:AuthnRequest xmlns:samlp="{c.SAMLP}" xmlns:saml="{c.SAML}" ID="{request_id}" '
        f'Version="2.0" IssueInstant="{now_text()}" AssertionConsumerServiceURL="{ACS}">'
        f"<saml:Issuer>{issuer}</saml:Issuer>{signature_xml}{extensions}</samlp:AuthnRequest>"
    ).encode()


# --- item 1: nothing outside the allow-list is ever canonicalised ---------------------

UNSAFE_SIGNATURES = [
    ("XPath transform", signature(transforms=(ENVELOPED, XPATH)), "transform"),
    ("XSLT transform", signature(transforms=(XSLT,)), "transform"),
    ("inclusive C14N transform", signature(transforms=(ENVELOPED, INCLUSIVE_C14N)), "transform"),
    ("three transforms", signature(transforms=(ENVELOPED, EXC_C14N, EXC_C14N)), "3 transforms"),
    ("inclusive SignedInfo C14N", signature(canonicalization=INCLUSIVE_C14N), "Canonicalization"),
    ("HMAC signature method", signature(method=HMAC_SHA256), "SignatureMethod"),
    ("MD5 digest", signature(digest="http://www.w3.org/2001/04/xmldsig-more#md5"), "Digest"),
    ("a second Reference", signature(extra_reference="<ds:Reference/>"), "exactly one Reference"),
    ("ds:Object", signature(extra="<ds:Object><x/></ds:Object>"), "Object"),
    (
        "RetrievalMethod in KeyInfo",
        signature(key_info='<ds:KeyInfo><ds:RetrievalMethod URI="http://evil/"/></ds:KeyInfo>'),
        "RetrievalMethod",
    ),
    ("Reference to another element", signature(uri="#_elsewhere"), "Reference URI"),
    ("two signatures", signature() + signature(), "2 signatures"),
    ("transforms out of order", signature(transforms=(EXC_C14N, ENVELOPED)), "then exclusive"),
    ("a long InclusiveNamespaces list", signature(prefixes=" ".join(["a"] * 6000)), "PrefixList"),
    (
        "an XPointer for an ID",
        signature(uri="#xpointer(//*[count(//*)>0])"),
        "not a plain XML name",
        {"request_id": "xpointer(//*[count(//*)>0])"},
    ),
    ("deep nesting", signature(), "nested deeper", {"depth": 100}),
    ("too many elements", signature(), "more than 5000", {"filler": 6000}),
]


@pytest.mark.parametrize(
    ("signature_xml", "message", "shape"),
    [(*case[1:], {})[:3] for case in UNSAFE_SIGNATURES],
    ids=[case[0] for case in UNSAFE_SIGNATURES],
)
def test_unsafe_signatures_are_refused_before_any_canonicalisation(
    client, registered, signature_xml, message, shape
):
    with mock.patch("idp.saml.signing.xmlsec") as xmlsec:
        response = client.post(
            "/saml/sso/", {"SAMLRequest": post_b64(signed_request(signature_xml, **shape))}
        )
    page = response.content.decode()
    assert response.status_code == 400, page
    assert "does not allow" in page and message in page
    assert not xmlsec.mock_calls  # refused before xmlsec saw anything


def test_the_reported_xpath_attack_is_refused_without_running_xmlsec(client, registered):
    """62 KB, 11,000 filler elements and an XPath transform: 30 s of xmlsec on the old code."""
    xml = signed_request(signature(transforms=(ENVELOPED, XPATH)), filler=11_000)
    assert len(post_b64(xml)) > 60_000
    with mock.patch("idp.saml.signing.xmlsec.SignatureContext") as verify:
        response = client.post("/saml/sso/", {"SAMLRequest": post_b64(xml)})
    assert response.status_code == 400
    assert "transform" in response.content.decode()
    verify.assert_not_called()


def test_unsafe_signatures_are_refused_even_without_a_certificate(client, registered):
    xml = signed_request(signature(transforms=(XSLT,)), issuer=SP)
    response = client.post("/saml/sso/", {"SAMLRequest": post_b64(xml)})
    assert response.status_code == 400
    assert "does not allow" in response.content.decode()


def test_sp_metadata_with_an_unsafe_signature_is_refused(db, tmp_path):
    metadata = (
        f'<md:EntityDescriptor xmlns:md="{c.MD}" entityID="https://meta.example/sp" ID="_m">'
        + signature(transforms=(ENVELOPED, XPATH), uri="#_m")
        + f'<md:SPSSODescriptor protocolSupportEnumeration="{c.SAMLP}">'
        f'<md:AssertionConsumerService Binding="{c.BINDING_POST}" '
        'Location="https://meta.example/acs" index="0"/></md:SPSSODescriptor>'
        "</md:EntityDescriptor>"
    )
    path = tmp_path / "sp.xml"
    path.write_text(metadata)
    with pytest.raises(CommandError, match="does not allow"):
        call_command("import_sp_metadata", str(path), stdout=io.StringIO())
    assert not ServiceProvider.objects.filter(entity_id="https://meta.example/sp").exists()


def test_a_genuine_signature_still_verifies_over_post(client, registered, key_pems):
    from lxml import etree

    from idp.saml import signing

    root = etree.fromstring(signed_request(""))
    key = signing.load_key(*key_pems)
    signing.sign_element(root, key)
    client.login(username="alice", password="alice")
    response = client.post("/saml/sso/", {"SAMLRequest": post_b64(etree.tostring(root))})
    resumed = client.get(response["Location"])
    assert resumed.status_code == 200 and "SAMLResponse" in resumed.content.decode()


# --- item 7: a signature that is present verifies, or the request is refused -----------


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("&Signature=AAAA&SigAlg=urn:nope", "Unsupported SigAlg"),
        ("&SigAlg=" + quote(c.SIG_RSA_SHA256, safe=""), "SigAlg without a Signature"),
        ("&Signature=AAAA&SigAlg=" + quote(c.SIG_RSA_SHA256, safe=""), "cannot check"),
    ],
    ids=["unknown SigAlg", "SigAlg alone", "signature nobody can check"],
)
def test_redirect_signatures_to_an_sp_without_certificate(client, registered, query, message):
    request = quote(encode_redirect(authn_request()), safe="")
    response = client.get(f"/saml/sso/?SAMLRequest={request}{query}")
    assert response.status_code == 400
    assert message in response.content.decode()


def test_an_unknown_sigalg_is_refused_for_a_signing_sp_too(client, registered):
    request = quote(encode_redirect(authn_request(issuer=SIGNED_SP)), safe="")
    response = client.get(f"/saml/sso/?SAMLRequest={request}&Signature=AAAA&SigAlg=urn:nope")
    assert response.status_code == 400
    assert "Unsupported SigAlg" in response.content.decode()


def test_uncheckable_signatures_are_ignored_only_on_purpose(client, registered):
    query = (
        f"SAMLRequest={quote(encode_redirect(authn_request()), safe='')}"
        f"&SigAlg={quote(c.SIG_RSA_SHA256, safe='')}&Signature=AAAA"
    )
    assert client.get("/saml/sso/?" + query).status_code == 400
    post = {"SAMLRequest": post_b64(signed_request(signature(), issuer=SP))}
    assert client.post("/saml/sso/", post).status_code == 400
    ServiceProvider.objects.filter(entity_id=SP).update(ignore_unverifiable_signatures=True)
    cache.forget()
    assert client.get("/saml/sso/?" + query).status_code == 302  # on to the login
    assert client.post("/saml/sso/", post).status_code == 303


def test_an_xml_signature_inside_a_redirect_request_is_refused(client, registered):
    xml = signed_request(signature(), issuer=SP)
    response = client.get("/saml/sso/", {"SAMLRequest": encode_redirect(xml)})
    assert response.status_code == 400
    assert "XML signature" in response.content.decode()


@pytest.mark.parametrize("certificate", ["", "   \n"])
def test_require_signed_requests_needs_a_certificate_in_the_database(db, certificate):
    with pytest.raises(IntegrityError), transaction.atomic():
        ServiceProvider.objects.create(
            entity_id="https://orm.example/sp",
            require_signed_requests=True,
            request_certificate=certificate,
        )
    sp = ServiceProvider.objects.create(entity_id="https://orm.example/sp")
    with pytest.raises(IntegrityError), transaction.atomic():
        ServiceProvider.objects.filter(pk=sp.pk).update(require_signed_requests=True)


# --- item 4: unknown issuers do not grow memory --------------------------------------


def test_unknown_issuers_are_not_remembered(client, demo, settings):
    settings.IDP_KEY_REFRESH_SECONDS = 3600
    client.login(username="alice", password="alice")
    for n in range(300):
        client.get("/saml/init/", {"sp": f"https://unknown-{n}.example/sp"})
        client.get(
            "/saml/sso/",
            {"SAMLRequest": encode_redirect(authn_request(issuer=f"https://u{n}.example"))},
        )
    assert client.get("/saml/init/", {"sp": "urn:amazon:webservices"}).status_code == 200
    cached = cache._cache.fresh_tables()["service_providers"]
    assert list(cached) == ["urn:amazon:webservices"]


# --- item 5: logout revokes the session on the server ---------------------------------


def test_a_cookie_saved_before_logout_no_longer_signs_anyone_on(client, demo):
    from django.test import Client

    client.login(username="alice", password="alice")
    saved = client.cookies["fedmock_session"].value
    other_session = Client()
    other_session.login(username="alice", password="alice")
    assert client.get("/saml/init/", {"sp": "urn:amazon:webservices"}).status_code == 200

    assert client.post("/accounts/logout/").status_code == 302

    replay_client = Client()
    replay_client.cookies["fedmock_session"] = saved
    response = replay_client.get("/saml/init/", {"sp": "urn:amazon:webservices"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert replay_client.get("/").status_code == 302
    # Only that session ended: alice's other browser is still signed in.
    assert other_session.get("/saml/init/", {"sp": "urn:amazon:webservices"}).status_code == 200


def test_admin_logout_revokes_too(client, demo):
    from django.test import Client

    client.login(username="admin", password="admin")
    saved = client.cookies["fedmock_session"].value
    assert client.post("/admin/logout/").status_code == 302
    replay_client = Client()
    replay_client.cookies["fedmock_session"] = saved
    assert replay_client.get("/admin/").status_code == 302


def test_another_users_logout_costs_the_warm_path_no_query(
    client, demo, settings, django_assert_num_queries
):
    from django.test import Client

    settings.IDP_KEY_REFRESH_SECONDS = 3600  # as under gunicorn, where the watcher refreshes
    client.login(username="alice", password="alice")
    assert client.get("/saml/init/", {"sp": "urn:amazon:webservices"}).status_code == 200
    bob = Client()
    bob.login(username="bob", password="bob")
    bob.post("/accounts/logout/")  # must not cool alice's caches
    with mock.patch("idp.audit.record"), django_assert_num_queries(0):
        assert client.get("/saml/init/", {"sp": "urn:amazon:webservices"}).status_code == 200


def test_a_session_without_an_index_is_ended(client, demo):
    """Such a cookie could never be revoked, so it does not sign anyone on."""
    from django.contrib.auth import SESSION_KEY
    from django.test import Client

    from idp.signals import SESSION_INDEX

    client.login(username="alice", password="alice")
    session = client.session
    assert session[SESSION_INDEX] and SESSION_KEY in session
    del session[SESSION_INDEX]
    session.save()
    legacy = Client()
    legacy.cookies["fedmock_session"] = session.session_key
    response = legacy.get("/saml/init/", {"sp": "urn:amazon:webservices"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_revocations_from_other_workers_arrive_with_the_refresh(db, settings):
    from idp import sessions
    from idp.models import RevokedSession

    now = datetime.datetime.now(datetime.UTC)
    sessions.refresh()
    assert "_elsewhere" not in sessions._revoked.indexes
    RevokedSession.objects.create(  # as another worker or host records it
        session_index="_elsewhere", revoked_at=now, expires_at=now + datetime.timedelta(days=1)
    )
    sessions.refresh()
    assert "_elsewhere" in sessions._revoked.indexes


# --- item 6: one response per request; fresh requests only ----------------------------


def resume_url(client, xml: bytes) -> str:
    first = client.get("/saml/sso/", {"SAMLRequest": encode_redirect(xml)})
    assert first.status_code == 302
    return unquote(re.search(r"next=([^&]+)", first["Location"]).group(1))


def test_a_resume_link_gives_one_response(client, registered):
    from django.test import Client

    next_url = resume_url(client, authn_request())
    login = client.post("/accounts/login/", {"username": "alice", "password": "alice"})
    assert login.status_code == 302
    assert "SAMLResponse" in client.get(next_url).content.decode()
    again = client.get(next_url)
    assert again.status_code == 400 and "already answered" in again.content.decode()
    bob = Client()
    bob.login(username="bob", password="bob")
    stolen = bob.get(next_url)
    assert stolen.status_code == 400 and "SAMLResponse" not in stolen.content.decode()


def test_a_replayed_request_id_is_refused(client, registered):
    client.login(username="alice", password="alice")
    query = {"SAMLRequest": encode_redirect(authn_request(request_id="_once"))}
    assert client.get("/saml/sso/", query).status_code == 200
    replayed = client.get("/saml/sso/", query)
    assert replayed.status_code == 400 and "already answered" in replayed.content.decode()
    fresh = {"SAMLRequest": encode_redirect(authn_request(request_id="_twice"))}
    assert client.get("/saml/sso/", fresh).status_code == 200


def test_the_same_id_from_another_sp_is_its_own_request(client, registered, key_pems):
    client.login(username="alice", password="alice")
    xml = authn_request(request_id="_shared")
    assert client.get("/saml/sso/", {"SAMLRequest": encode_redirect(xml)}).status_code == 200
    signed = signed_redirect_query(
        key_pems[0], authn_request(issuer=SIGNED_SP, request_id="_shared")
    )
    assert client.get("/saml/sso/?" + signed).status_code == 200


def test_a_no_passive_answer_uses_up_the_request_too(client, registered):
    query = {"SAMLRequest": encode_redirect(authn_request(attributes='IsPassive="true"'))}
    assert "SAMLResponse" in client.get("/saml/sso/", query).content.decode()
    assert client.get("/saml/sso/", query).status_code == 400


@pytest.mark.parametrize(
    ("offset", "window", "status"),
    [
        (-600, 300, 400),  # ten minutes old
        (600, 300, 400),  # ten minutes in the future
        (-300, 300, 200),  # at the edge
        (-301, 300, 400),
        (-600, 3600, 200),  # the SP's own, wider window
    ],
)
def test_issue_instant_must_be_within_the_sps_window(client, registered, offset, window, status):
    ServiceProvider.objects.filter(entity_id=SP).update(request_max_age=window)
    cache.forget()
    client.login(username="alice", password="alice")
    now = datetime.datetime(2026, 11, 21, 12, 0, tzinfo=datetime.UTC)  # the IdP's clock
    instant = (now + datetime.timedelta(seconds=offset)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with mock.patch("idp.sso._now", return_value=now):
        response = client.get(
            "/saml/sso/", {"SAMLRequest": encode_redirect(authn_request(instant=instant))}
        )
    assert response.status_code == status
    if status == 400:
        assert "not fresh" in response.content.decode()


def test_claims_expire_and_are_pruned(db):
    now = datetime.datetime(2026, 11, 21, 12, tzinfo=datetime.UTC)
    replay.claim(SP, "_a", now, keep_for=60)
    with pytest.raises(replay.AlreadyAnswered):
        replay.claim(SP, "_a", now + datetime.timedelta(seconds=30), keep_for=60)
    assert replay.prune(now + datetime.timedelta(seconds=30)) == 0
    assert replay.prune(now + datetime.timedelta(seconds=61)) == 1
    assert not AnsweredRequest.objects.exists()


# --- item 8: odd certificates and URLs in SP metadata ----------------------------------


def sp_metadata(
    location: str = "https://app.example/acs",
    binding: str = c.BINDING_POST,
    certificate: str = "",
    extra_acs: str = "",
) -> str:
    key = (
        '<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">'
        f"<ds:X509Data><ds:X509Certificate>{certificate}</ds:X509Certificate></ds:X509Data>"
        "</ds:KeyInfo></md:KeyDescriptor>"
        if certificate
        else ""
    )
    return (
        f'<md:EntityDescriptor xmlns:md="{c.MD}" entityID="https://app.example/sp">'
        f'<md:SPSSODescriptor protocolSupportEnumeration="{c.SAMLP}">{key}{extra_acs}'
        f'<md:AssertionConsumerService Binding="{binding}" Location="{location}" index="1"/>'
        "</md:SPSSODescriptor></md:EntityDescriptor>"
    )


SM2_BODY = "".join(SM2_CERTIFICATE.strip().splitlines()[1:-1])

BAD_METADATA = [
    ("SM2 certificate", sp_metadata(certificate=SM2_BODY), "Only RSA"),
    ("unclosed IPv6 bracket", sp_metadata(location="https://[::1/acs"), "not a valid URL"),
    ("port 99999", sp_metadata(location="https://app.example:99999/acs"), "not a valid URL"),
    ("junk binding", sp_metadata(binding="junk"), "junk"),
]


@pytest.mark.parametrize(
    ("metadata", "message"),
    [case[1:] for case in BAD_METADATA],
    ids=[case[0] for case in BAD_METADATA],
)
def test_bad_sp_metadata_is_one_line_from_the_command(db, tmp_path, metadata, message):
    path = tmp_path / "sp.xml"
    path.write_text(metadata)
    with pytest.raises(CommandError, match=re.escape(message)) as refused:
        call_command("import_sp_metadata", str(path), stdout=io.StringIO())
    assert "\n" not in str(refused.value)
    assert not ServiceProvider.objects.filter(entity_id="https://app.example/sp").exists()
    assert not AssertionConsumerService.objects.filter(location__contains="app.example").exists()


@pytest.mark.parametrize(
    ("metadata", "message"),
    [case[1:] for case in BAD_METADATA],
    ids=[case[0] for case in BAD_METADATA],
)
def test_bad_sp_metadata_is_a_form_error_in_the_admin(admin_client, db, metadata, message):
    response = admin_client.post(
        "/admin/idp/serviceprovider/import-metadata/", {"metadata": metadata}
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ServiceProvider.objects.filter(entity_id="https://app.example/sp").exists()


def test_artifact_and_paos_endpoints_are_skipped_not_stored(db, tmp_path):
    artifact = (
        '<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact" '
        'Location="https://app.example/artifact" index="2"/>'
        '<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:PAOS" '
        'Location="https://app.example/ecp" index="3"/>'
    )
    path = tmp_path / "sp.xml"
    path.write_text(sp_metadata(extra_acs=artifact))
    call_command("import_sp_metadata", str(path), stdout=io.StringIO())
    sp = ServiceProvider.objects.get(entity_id="https://app.example/sp")
    assert [e.location for e in sp.endpoints.all()] == ["https://app.example/acs"]


def test_signed_response_is_not_sent_for_a_request_signed_with_sha1_without_a_note(
    client, registered, key_pems, settings
):
    """Item 9: a SHA-1 request signature is accepted but noted in the audit."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    from idp.models import AuditEvent

    query = "SAMLRequest=" + quote(encode_redirect(authn_request(issuer=SIGNED_SP)), safe="")
    query += "&SigAlg=" + quote(c.SIG_RSA_SHA1, safe="")
    key = serialization.load_pem_private_key(key_pems[0], password=None)
    value = key.sign(query.encode(), padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
    query += "&Signature=" + quote(base64.b64encode(value).decode(), safe="")
    client.login(username="alice", password="alice")
    assert client.get("/saml/sso/?" + query).status_code == 200
    event = AuditEvent.objects.get(sp_entity_id=SIGNED_SP)
    assert "RSA-SHA1" in event.detail


def test_a_bad_environment_variable_is_one_line_from_manage_py():
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=root,
        env={**os.environ, "IDP_KEY_EXPIRY_WARNING_DAYS": "soon"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert (
        result.stderr.strip().splitlines() == [result.stderr.strip()]
        and "IDP_KEY_EXPIRY_WARNING_DAYS='soon'" in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_the_check_page_needs_view_permission_on_service_providers(client, db):
    from django.contrib.auth.models import Permission

    from users.models import User

    staff = User.objects.create_user("staff", password="staff", is_staff=True)
    client.login(username="staff", password="staff")
    assert client.get("/admin/idp/serviceprovider/check-response/").status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_serviceprovider"))
    assert client.get("/admin/idp/serviceprovider/check-response/").status_code == 200


def test_a_revoked_staff_permission_takes_effect_at_once(client, db, settings):
    """Signed-in users come from the per-process cache; their permissions must not."""
    from django.contrib.auth.models import Permission

    from users.models import User

    settings.IDP_KEY_REFRESH_SECONDS = 3600  # as under gunicorn
    staff = User.objects.create_user("staff", password="staff", is_staff=True)
    permission = Permission.objects.get(codename="view_serviceprovider")
    staff.user_permissions.add(permission)
    client.login(username="staff", password="staff")
    assert client.get("/admin/idp/serviceprovider/").status_code == 200
    staff.user_permissions.remove(permission)
    assert client.get("/admin/idp/serviceprovider/").status_code == 403
