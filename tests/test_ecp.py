"""The ECP door, /saml/ecp/, through Django's test client: what it answers, what it refuses
and how (SOAP faults, 4xx statuses, never a traceback), the shared login throttle, the
one-answer-per-request rule, the signature rules and the audit."""

import base64
import datetime

import pytest
from axes.models import AccessAttempt
from lxml import etree

from idp import cache, clock
from idp.models import AssertionConsumerService, AuditEvent, ServiceProvider
from idp.saml import aws, signing
from idp.saml import constants as c
from idp.saml.ecp import MAX_ENVELOPE

AWS = "urn:amazon:webservices"
AWS_ACS = "https://signin.aws.amazon.com/saml"
SP = "https://ecp-sp.example.test/metadata"
SP_ACS = "https://ecp-sp.example.test/acs"
SIGNING_SP = "https://signing.example.test/sp"
ECP_URL = "http://127.0.0.1:8000/saml/ecp/"  # IDP_BASE_URL's default
NS = {
    "S": c.SOAP11,
    "ecp": c.ECP,
    "samlp": c.SAMLP,
    "saml": c.SAML,
    "ds": c.DS,
    "fm": "urn:fedmock:soap-fault",
}


@pytest.fixture
def sps(demo, key_pems):
    generic = ServiceProvider.objects.create(name="ECP SP", entity_id=SP)
    AssertionConsumerService.objects.create(
        service_provider=generic, location=SP_ACS, index=0, is_default=True
    )
    signing_sp = ServiceProvider.objects.create(
        name="Signing SP", entity_id=SIGNING_SP, request_certificate=key_pems[1].decode()
    )
    AssertionConsumerService.objects.create(service_provider=signing_sp, location=SP_ACS, index=0)
    off = ServiceProvider.objects.create(
        name="Off", entity_id="https://off.example/sp", enabled=False
    )
    AssertionConsumerService.objects.create(service_provider=off, location=SP_ACS, index=0)


def request_xml(
    issuer=AWS,
    acs=AWS_ACS,
    request_id="_ecp1",
    binding=c.BINDING_PAOS,
    instant: datetime.datetime | None = None,
    destination="",
) -> bytes:
    """An AuthnRequest as awscli-login builds it (saml.authn_request), with knobs."""
    moment = (instant or clock.now()).strftime("%Y-%m-%dT%H:%M:%SZ")
    extra = f' Destination="{destination}"' if destination else ""
    extra += f' AssertionConsumerServiceURL="{acs}"' if acs else ""
    extra += f' ProtocolBinding="{binding}"' if binding else ""
    return (
        f'<saml2p:AuthnRequest xmlns:saml2p="{c.SAMLP}" xmlns:saml2="{c.SAML}" ID="{request_id}" '
        f'IssueInstant="{moment}" Version="2.0"{extra}><saml2:Issuer>{issuer}</saml2:Issuer>'
        "</saml2p:AuthnRequest>"
    ).encode()


def envelope(body: bytes | None = None, header: str = "", ns: str = c.SOAP11) -> bytes:
    body = request_xml() if body is None else body
    return (
        f'<S:Envelope xmlns:S="{ns}">{header}<S:Body>'.encode() + body + b"</S:Body></S:Envelope>"
    )


def basic(username: str = "alice", password: str | None = None) -> str:
    """Basic credentials; the demo users' passwords are their names."""
    secret = username if password is None else password
    return "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()


def post(client, data: bytes, authorization: str | None = basic(), address="10.0.0.1", **extra):
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    return client.post(
        "/saml/ecp/",
        data,
        content_type=extra.pop("content_type", "text/xml"),
        REMOTE_ADDR=address,
        **headers,
        **extra,
    )


def fault(response) -> tuple[str, str, str]:
    """(faultcode, faultstring, fedmock's detail + hint) of a SOAP Fault answer."""
    assert response["Content-Type"].startswith("text/xml")
    root = etree.fromstring(response.content)
    node = root.find("S:Body/S:Fault", NS)
    assert node is not None, response.content[:500]
    problem = node.find("detail/fm:Problem", NS)
    assert problem.findtext("fm:hint", namespaces=NS)  # every refusal says what to do
    assert problem.findtext("fm:status", namespaces=NS) == str(response.status_code)
    return (
        node.findtext("faultcode"),
        node.findtext("faultstring"),
        problem.findtext("fm:detail", namespaces=NS)
        + " "
        + problem.findtext("fm:hint", namespaces=NS),
    )


# --- the answer ------------------------------------------------------------------------


def test_alice_gets_a_signed_response_in_the_ecp_envelope(client, demo):
    response = post(client, envelope())

    assert response.status_code == 200, response.content[:800]
    assert response["Content-Type"].startswith("text/xml")
    assert response["Cache-Control"] == "no-store"
    root = etree.fromstring(response.content)
    (header,) = root.find("S:Header", NS)
    assert header.tag == f"{{{c.ECP}}}Response"
    assert header.get("AssertionConsumerServiceURL") == AWS_ACS
    assert header.get(f"{{{c.SOAP11}}}mustUnderstand") == "1"
    assert header.get(f"{{{c.SOAP11}}}actor") == c.SOAP_ACTOR_NEXT
    (saml_response,) = root.find("S:Body", NS)
    assert saml_response.tag == f"{{{c.SAMLP}}}Response"
    assert saml_response.get("InResponseTo") == "_ecp1"
    assert saml_response.get("Destination") == AWS_ACS
    # Exactly what awscli-login sends to STS (saml.parse_soap_response): the Response element
    # alone. The AWS checker verifies its signature against the published keys and judges it.
    as_sent = etree.tostring(saml_response)
    findings = aws.check_response(
        as_sent,
        now=clock.now(),
        certificates=[key.cert_pem for key in _published()],
        issuer="http://127.0.0.1:8000/saml/metadata/",
    )
    assert [f for f in findings if f.severity == "error"] == []
    assert saml_response.find("saml:Assertion/ds:Signature", NS) is not None
    event = AuditEvent.objects.get()
    assert (event.flow, event.outcome, event.username) == ("ecp", "sent", "alice")
    assert (event.sp_entity_id, event.request_id, event.acs_url) == (AWS, "_ecp1", AWS_ACS)
    assert event.response_id == saml_response.get("ID")
    assert event.roles  # alice's AWS roles, as the browser flow records them


def _published():
    from idp import keys

    return keys.published_keys()


@pytest.mark.parametrize(
    "content_type", ["text/xml", "application/soap+xml", "application/vnd.paos+xml"]
)
def test_the_content_types_ecp_clients_send(client, demo, content_type):
    assert post(client, envelope(), content_type=content_type).status_code == 200


@pytest.mark.parametrize(
    ("binding", "destination"),
    [("", ""), (c.BINDING_SOAP, ECP_URL), (c.BINDING_POST, "")],
    ids=["no ProtocolBinding", "pysaml2's SOAP binding and Destination", "HTTP-POST"],
)
def test_request_shapes_that_ecp_sps_send(client, sps, binding, destination):
    body = request_xml(issuer=SP, acs=SP_ACS, binding=binding, destination=destination)
    assert post(client, envelope(body)).status_code == 200


def test_header_blocks_meant_for_the_ecp_are_ignored(client, demo):
    header = (
        f'<S:Header><paos:Request xmlns:paos="{c.PAOS}" S:mustUnderstand="1" '
        f'responseConsumerURL="{AWS_ACS}" service="{c.ECP}"/>'
        f'<ecp:RelayState xmlns:ecp="{c.ECP}" S:mustUnderstand="1">x</ecp:RelayState></S:Header>'
    )
    assert post(client, envelope(header=header)).status_code == 200


# --- credentials and the throttle -------------------------------------------------------


@pytest.mark.parametrize(
    ("authorization", "title"),
    [
        (None, "Sign-in needed"),
        ("Bearer abc", "Sign-in needed"),
        ("Basic", "Sign-in needed"),
        ("Basic !!!notbase64", "Sign-in needed"),
        ("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), "Sign-in needed"),
        ("Basic " + base64.b64encode(b"alice").decode(), "Sign-in needed"),
        (basic("alice", ""), "Sign-in needed"),
        (basic("alice", "wrong"), "Wrong user name or password"),
        (basic("nobody", "nobody"), "Wrong user name or password"),
        (basic("ALICE", "alice"), "Wrong user name or password"),
    ],
    ids=[
        "none",
        "another scheme",
        "empty",
        "not base64",
        "not UTF-8",
        "no colon",
        "empty password",
        "wrong password",
        "unknown user",
        "user name in the wrong case",
    ],
)
def test_bad_credentials_are_a_401_challenge(client, demo, authorization, title):
    response = post(client, envelope(), authorization=authorization)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Basic realm="fedmock ECP", charset="UTF-8"'
    code, string, _ = fault(response)
    assert (code, string) == ("soap11:Client", title)
    assert not AuditEvent.objects.filter(outcome="sent").exists()


def test_a_challenge_leaves_the_request_unanswered_for_the_retry(client, demo):
    assert post(client, envelope(), authorization=None).status_code == 401
    assert post(client, envelope()).status_code == 200  # the same request ID


def test_a_wrong_password_is_audited_as_refused(client, demo):
    post(client, envelope(), authorization=basic("alice", "wrong"))
    event = AuditEvent.objects.get()
    assert (event.flow, event.outcome, event.username, event.request_id) == (
        "ecp",
        "refused",
        "alice",
        "_ecp1",
    )
    assert "Wrong user name or password" in event.detail


def test_an_inactive_user_cannot_sign_in(client, demo):
    from users.models import User

    User.objects.filter(username="alice").update(is_active=False)
    cache.forget()
    assert post(client, envelope()).status_code == 401


def test_the_fifth_failure_locks_out_with_a_soap_fault(client, demo):
    wrong = basic("alice", "wrong")
    for _ in range(4):
        assert post(client, envelope(), authorization=wrong).status_code == 401
    locked = post(client, envelope(), authorization=wrong)
    assert locked.status_code == 429
    assert locked["Retry-After"] == "900"
    code, string, text = fault(locked)
    assert (code, string) == ("soap11:Client", "Too many failed sign-ins")
    assert "axes_reset_username" in text
    still = post(client, envelope())  # even the right password
    assert still.status_code == 429 and fault(still)[1] == "Too many failed sign-ins"
    details = AuditEvent.objects.filter(flow="ecp").order_by("id").values_list("detail", flat=True)
    assert [d.split(":")[0] for d in details] == ["Wrong user name or password"] * 4 + [
        "Too many failed sign-ins"
    ] * 2
    # Another address, or another user from this one, is not locked (the pair is).
    assert post(client, envelope(), address="10.0.0.2").status_code == 200
    body = request_xml(request_id="_bob")
    assert post(client, envelope(body), authorization=basic("bob", "bob")).status_code == 200


def test_the_form_and_ecp_share_one_failure_count(client, demo):
    for _ in range(3):
        form = client.post(
            "/accounts/login/", {"username": "alice", "password": "no"}, REMOTE_ADDR="10.0.0.1"
        )
        assert form.status_code == 200
    assert post(client, envelope(), authorization=basic("alice", "no")).status_code == 401
    assert post(client, envelope(), authorization=basic("alice", "no")).status_code == 429
    page = client.post(
        "/accounts/login/", {"username": "alice", "password": "alice"}, REMOTE_ADDR="10.0.0.1"
    )
    assert page.status_code == 429 and b"Too many failed sign-ins" in page.content


def test_a_success_clears_the_failure_count_as_a_form_login_does(client, demo):
    for _ in range(4):
        post(client, envelope(), authorization=basic("alice", "wrong"))
    assert AccessAttempt.objects.filter(username="alice").exists()
    assert post(client, envelope()).status_code == 200
    assert not AccessAttempt.objects.filter(username="alice").exists()
    body = request_xml(request_id="_again")
    assert post(client, envelope(body), authorization=basic("alice", "wrong")).status_code == 401


# --- the envelope and the HTTP ------------------------------------------------------------

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
# (id, data, status, faultcode, faultstring)
MALFORMED = [
    ("not XML", b"hello", 400, "Client", "The SOAP envelope is not well-formed XML"),
    ("blank", b" ", 400, "Client", "The SOAP envelope is not well-formed XML"),
    (
        "a DOCTYPE",
        b'<!DOCTYPE S [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + envelope(),
        400,
        "Client",
        "The SOAP envelope contains a DOCTYPE",
    ),
    ("a bare AuthnRequest", request_xml(), 400, "Client", "This is not a SOAP envelope"),
    ("SOAP 1.2", envelope(ns=SOAP12), 400, "VersionMismatch", "Unsupported SOAP version"),
    (
        "no Body",
        f'<S:Envelope xmlns:S="{c.SOAP11}"/>'.encode(),
        400,
        "Client",
        "The SOAP envelope has no Body",
    ),
    (
        "two requests",
        envelope(request_xml() + request_xml()),
        400,
        "Client",
        "The SOAP Body must hold exactly one AuthnRequest",
    ),
    (
        "an empty Body",
        envelope(b""),
        400,
        "Client",
        "The SOAP Body must hold exactly one AuthnRequest",
    ),
    (
        "text beside it",
        envelope(b"junk" + request_xml()),
        400,
        "Client",
        "The SOAP Body must hold exactly one AuthnRequest",
    ),
    (
        "a LogoutRequest",
        envelope(f'<samlp:LogoutRequest xmlns:samlp="{c.SAMLP}"/>'.encode()),
        400,
        "Client",
        "The SOAP Body is not an AuthnRequest",
    ),
    (
        "an unknown mustUnderstand header",
        envelope(header='<S:Header><x:Lock xmlns:x="urn:x" S:mustUnderstand="1"/></S:Header>'),
        400,
        "MustUnderstand",
        "A SOAP header block this IdP does not understand",
    ),
    (
        "an AuthnRequest without an Issuer",
        envelope(
            request_xml().replace(b"<saml2:Issuer>urn:amazon:webservices</saml2:Issuer>", b"")
        ),
        400,
        "Client",
        "The AuthnRequest has no Issuer",
    ),
    (
        "too large",
        envelope(header="<S:Header>" + "<!-- -->" * (MAX_ENVELOPE // 8) + "</S:Header>"),
        413,
        "Client",
        "The SOAP envelope is too large",
    ),
]


@pytest.mark.parametrize(
    ("data", "status", "code", "title"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_envelopes_are_soap_faults(client, demo, data, status, code, title):
    response = post(client, data)
    assert response.status_code == status
    assert fault(response)[:2] == (f"soap11:{code}", title)


@pytest.mark.parametrize(
    ("method", "content_type", "status", "title"),
    [
        ("get", None, 405, "The ECP endpoint takes POST"),
        ("put", "text/xml", 405, "The ECP endpoint takes POST"),
        (
            "post",
            "application/x-www-form-urlencoded",
            415,
            "The ECP endpoint takes a SOAP envelope",
        ),
        ("post", "application/json", 415, "The ECP endpoint takes a SOAP envelope"),
    ],
)
def test_the_wrong_http_is_refused_in_soap(client, demo, method, content_type, status, title):
    extra = {"content_type": content_type} if content_type else {}
    response = getattr(client, method)("/saml/ecp/", envelope() if content_type else None, **extra)
    assert response.status_code == status
    assert fault(response)[1] == title
    if status == 405:
        assert response["Allow"] == "POST"


# --- the pipeline's rules, at this door --------------------------------------------------


def _signed(body: bytes, key_pems) -> bytes:
    root = etree.fromstring(body)
    signing.sign_element(root, signing.load_key(*key_pems))
    return etree.tostring(root)


# (id, request XML (or a function of key_pems), status, faultstring)
REFUSED = [
    (
        "an unknown SP",
        lambda k: request_xml(issuer="https://nobody.example/sp"),
        400,
        "Unknown service provider",
    ),
    (
        "a disabled SP",
        lambda k: request_xml(issuer="https://off.example/sp", acs=SP_ACS),
        403,
        "Service provider disabled",
    ),
    (
        "an unregistered ACS",
        lambda k: request_xml(acs="https://evil.example/acs"),
        400,
        "The AssertionConsumerServiceURL is not registered",
    ),
    (
        "the browser endpoint as Destination",
        lambda k: request_xml(destination="http://127.0.0.1:8000/saml/sso/"),
        400,
        "The AuthnRequest is addressed to another endpoint",
    ),
    (
        "an Artifact response binding",
        lambda k: request_xml(binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact"),
        400,
        "Unsupported response binding",
    ),
    (
        "a stale request",
        lambda k: request_xml(instant=clock.now() - datetime.timedelta(hours=2)),
        400,
        "The AuthnRequest is not fresh",
    ),
    (
        "a request from the future",
        lambda k: request_xml(instant=clock.now() + datetime.timedelta(hours=2)),
        400,
        "The AuthnRequest is not fresh",
    ),
    (
        "a signature nobody can check",
        lambda k: _signed(request_xml(), k),
        400,
        "The AuthnRequest is signed, but this IdP cannot check the signature",
    ),
    (
        "a signature that does not verify",
        lambda k: _signed(request_xml(issuer=SIGNING_SP, acs=SP_ACS), k).replace(
            b"_ecp1", b"_ecp2"
        ),
        400,
        "The request signature is invalid",
    ),
]


@pytest.mark.parametrize(
    ("make", "status", "title"), [case[1:] for case in REFUSED], ids=[case[0] for case in REFUSED]
)
def test_the_pipeline_refuses_at_this_door_too(client, sps, key_pems, make, status, title):
    response = post(client, envelope(make(key_pems)))
    assert response.status_code == status
    code, string, _ = fault(response)
    assert code == "soap11:Client"
    assert title in string, string
    assert not AuditEvent.objects.filter(outcome="sent").exists()


def test_a_signature_that_verifies_is_accepted(client, sps, key_pems):
    body = _signed(request_xml(issuer=SIGNING_SP, acs=SP_ACS), key_pems)
    assert post(client, envelope(body)).status_code == 200


def test_a_replayed_request_id_is_refused_and_audited(client, demo):
    assert post(client, envelope()).status_code == 200
    again = post(client, envelope())
    assert again.status_code == 400
    assert fault(again)[1] == "This sign-on request was already answered"
    refused = AuditEvent.objects.get(outcome="refused")
    assert (refused.flow, refused.request_id, refused.username) == ("ecp", "_ecp1", "alice")


def test_a_user_without_an_aws_role_is_refused_by_the_claim_rules(client, demo):
    from users.models import User

    User.objects.create_user("dave", password="dave")
    cache.forget()
    response = post(client, envelope(), authorization=basic("dave", "dave"))
    assert response.status_code == 403
    assert fault(response)[1] == "No AWS role for you"
    assert AuditEvent.objects.get().outcome == "refused"


# --- the metadata ---------------------------------------------------------------------


def test_the_metadata_lists_the_ecp_endpoint_with_the_soap_binding(client, demo):
    root = etree.fromstring(client.get("/saml/metadata/").content)
    services = {
        e.get("Binding"): e.get("Location")
        for e in root.iterfind(f".//{{{c.MD}}}SingleSignOnService")
    }
    assert services[c.BINDING_SOAP] == ECP_URL
    assert services[c.BINDING_POST] == "http://127.0.0.1:8000/saml/sso/"
