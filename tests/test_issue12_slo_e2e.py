"""Single logout end to end over HTTP: two pysaml2 SPs with sessions, a live IdP, a browser."""

import base64
import zlib
from urllib.parse import parse_qs, urlsplit

import pytest
from lxml import etree
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT

from idp.models import AuditEvent, ServiceProvider, SpSession
from idp.saml import constants as c
from idp.saml import signing
from idp.saml.logout import STATUS_PARTIAL_LOGOUT

from .agents import Browser
from .slo_support import LogoutSP, drive

pytestmark = pytest.mark.django_db(transaction=True)

NS = {"samlp": c.SAMLP, "saml": c.SAML, "ds": c.DS}


@pytest.fixture
def idp_metadata(demo, idp_url):
    response = Browser(idp_url).get("/saml/metadata/")
    assert response.status_code == 200
    return response.content


def make_sps(tmp_path, idp_metadata, *, sign=False, second_has_slo=True):
    first = LogoutSP(tmp_path / "sp1", idp_metadata, "sp1.example.test", sign=sign)
    second = LogoutSP(
        tmp_path / "sp2", idp_metadata, "sp2.example.test", sign=sign, slo=second_has_slo
    )
    for sp in (first, second):
        sp.register()
    return first, second


def signed_on(browser, *sps):
    for sp in sps:
        sp.sign_on(browser)
        assert sp.signed_in
    return browser


def message_xml(value: str, binding: str) -> etree._Element:
    raw = base64.b64decode(value)
    if binding == BINDING_HTTP_REDIRECT:
        raw = zlib.decompress(raw, -15)
    return etree.fromstring(raw)


def idp_session_is_gone(browser, sp) -> bool:
    """A new sign-on at the IdP asks for a login again."""
    _, info = sp.client.prepare_for_authenticate(
        entityid=sp.idp_entity_id, binding=BINDING_HTTP_REDIRECT
    )
    return "/accounts/login/" in browser.get(dict(info["headers"])["Location"]).url


def idp_certificate(idp_metadata: bytes) -> str:
    body = etree.fromstring(idp_metadata).findtext(f".//{{{c.DS}}}X509Certificate")
    return signing.pem_from_base64(body)


@pytest.mark.parametrize("binding", [BINDING_HTTP_REDIRECT, BINDING_HTTP_POST])
@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_sp_initiated_logout_reaches_the_other_sp_and_answers_success(
    tmp_path, idp_metadata, idp_url, binding, signed
):
    first, second = make_sps(tmp_path, idp_metadata, sign=signed)
    if signed:  # every message the SPs send must verify, not merely be accepted
        for sp in ServiceProvider.objects.filter(entity_id__in=[first.entity_id, second.entity_id]):
            sp.require_signed_requests = True
            sp.save()  # through save(): the configuration cache follows
    browser = signed_on(Browser(idp_url), first, second)

    assert drive(browser, idp_url, [first, second], *first.start_logout(binding)) is None

    # SP 2 got a LogoutRequest that pysaml2 accepted, for the NameID and session it holds.
    assert not second.signed_in
    (request,) = second.logout_requests
    assert request["binding"] == BINDING_HTTP_REDIRECT  # Redirect preferred
    root = message_xml(request["SAMLRequest"], request["binding"])
    assert root.findtext("saml:NameID", namespaces=NS) == second.name_id.text
    assert root.findtext("samlp:SessionIndex", namespaces=NS)
    assert root.get("Destination") == second.slo_url
    assert ("Signature" in request) is True  # sign_response is on by default for SPs
    # SP 1 got a Success LogoutResponse to its request, which pysaml2 parsed.
    answer = first.logout_response
    parsed = answer["parsed"]
    assert parsed.response.status.status_code.value == c.STATUS_SUCCESS
    assert parsed.response.status.status_code.status_code is None  # not partial
    assert parsed.response.issuer.text == f"{idp_url}/saml/metadata/"
    # Its signature verifies against the IdP's metadata certificate.
    if answer["binding"] == BINDING_HTTP_REDIRECT:
        query = {k: v[0] for k, v in parse_qs(urlsplit("?" + _query(answer)).query).items()}
        from saml2.sigver import verify_redirect_signature

        assert verify_redirect_signature(
            query,
            first.client.sec.sec_backend,
            cert=etree.fromstring(idp_metadata).findtext(f".//{{{c.DS}}}X509Certificate"),
        )
    else:
        xml = message_xml(answer["SAMLResponse"], BINDING_HTTP_POST)
        assert signing.signature_valid(xml, idp_certificate(idp_metadata))
    # The IdP session is gone: a new sign-on asks for a login.
    assert idp_session_is_gone(browser, first)
    assert not SpSession.objects.filter(ended_at__isnull=True).exists()
    outcomes = set(AuditEvent.objects.filter(flow="slo").values_list("outcome", flat=True))
    assert {"received", "sent", "answered"} <= outcomes


def _query(answer: dict) -> str:
    from urllib.parse import urlencode

    return urlencode(
        {k: answer[k] for k in ("SAMLResponse", "RelayState", "SigAlg", "Signature") if k in answer}
    )


def test_an_sp_without_slo_makes_the_logout_partial(tmp_path, idp_metadata, idp_url):
    first, second = make_sps(tmp_path, idp_metadata, second_has_slo=False)
    browser = signed_on(Browser(idp_url), first, second)

    drive(browser, idp_url, [first, second], *first.start_logout(BINDING_HTTP_REDIRECT))

    status = first.logout_response["parsed"].response.status
    assert status.status_code.value == c.STATUS_SUCCESS
    assert status.status_code.status_code.value == STATUS_PARTIAL_LOGOUT
    assert second.logout_requests == []
    assert idp_session_is_gone(browser, first)
    assert AuditEvent.objects.filter(flow="slo", outcome="partial").exists()


def test_the_portal_sign_out_logs_out_of_every_sp(tmp_path, idp_metadata, idp_url):
    first, second = make_sps(tmp_path, idp_metadata)
    browser = signed_on(Browser(idp_url), first, second)
    portal = browser.get("/")
    token = portal.text.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]

    page = drive(
        browser,
        idp_url,
        [first, second],
        "POST",
        "/accounts/logout/",
        {"csrfmiddlewaretoken": token},
    )

    assert page.status_code == 200 and 'data-testid="signed-out"' in page.text
    assert "Partly" not in page.text and page.text.count('data-state="logged out"') == 2
    assert not first.signed_in and not second.signed_in
    assert idp_session_is_gone(browser, first)


def test_an_sp_with_only_an_http_post_slo_gets_a_signed_posted_request(
    tmp_path, idp_metadata, idp_url
):
    first = LogoutSP(tmp_path / "sp1", idp_metadata, "sp1.example.test")
    second = LogoutSP(
        tmp_path / "sp2", idp_metadata, "sp2.example.test", slo_bindings=(BINDING_HTTP_POST,)
    )
    for sp in (first, second):
        sp.register()
    browser = signed_on(Browser(idp_url), first, second)

    drive(browser, idp_url, [first, second], *first.start_logout(BINDING_HTTP_POST))

    (request,) = second.logout_requests
    assert request["binding"] == BINDING_HTTP_POST
    root = message_xml(request["SAMLRequest"], BINDING_HTTP_POST)
    assert signing.signature_valid(root, idp_certificate(idp_metadata))  # enveloped
    assert not second.signed_in
    assert first.logout_response["parsed"].response.status.status_code.status_code is None


@pytest.mark.parametrize("binding", [BINDING_HTTP_REDIRECT, BINDING_HTTP_POST])
def test_a_tampered_signed_logout_request_from_pysaml2_is_refused(
    tmp_path, idp_metadata, idp_url, binding
):
    first, second = make_sps(tmp_path, idp_metadata, sign=True)
    browser = signed_on(Browser(idp_url), first, second)
    method, url, fields = first.start_logout(binding)
    if method == "GET":
        # One byte of the signed RelayState changed (the query signature covers it).
        base, _, query = url.partition("?")
        pairs = dict(piece.split("=", 1) for piece in query.split("&"))
        relay = pairs.get("RelayState", "")
        pairs["RelayState"] = (relay[:-1] + ("A" if relay[-1:] != "A" else "B")) or "x"
        response = browser.get(f"{base}?{'&'.join(f'{k}={v}' for k, v in pairs.items())}")
    else:
        xml = base64.b64decode(fields["SAMLRequest"])
        name = first.name_id.text.encode()
        assert name in xml  # one byte of the signed NameID changed
        xml = xml.replace(name, bytes([name[0] ^ 1]) + name[1:])
        response = browser.post(url, {**fields, "SAMLRequest": base64.b64encode(xml).decode()})
    assert response.status_code == 400
    assert "signature is invalid" in response.text
    assert second.logout_requests == [] and second.signed_in
    assert not idp_session_is_gone(browser, first)
