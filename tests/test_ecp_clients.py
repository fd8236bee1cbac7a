"""ECP clients that nobody here wrote, over HTTP against the live IdP: pysaml2's ECP client
through a pysaml2 SP (which verifies the response with xmlsec1), and awscli-login."""

import base64
import threading
from http.cookies import SimpleCookie
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from lxml import etree
from saml2 import BINDING_HTTP_POST, BINDING_PAOS
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.ecp_client import Client as EcpClient
from saml2.metadata import create_metadata_string

from idp.models import AuditEvent
from idp.saml import constants as c
from idp.saml import signing

from .agents import Browser

pytestmark = pytest.mark.django_db(transaction=True)

ROLE = "https://aws.amazon.com/SAML/Attributes/Role"


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):  # the test's output is the assertions'
        pass


class EcpServiceProvider:
    """A pysaml2 SP served over HTTP with the PAOS binding, as the ECP profile wants it.

    GET /protected without a session answers with a PAOS AuthnRequest (phase 1); the ECP
    posts the IdP's Response to /acs, where pysaml2 validates it (signature with xmlsec1,
    InResponseTo, audience, time) and opens a session (phase 3); /protected then greets.
    """

    def __init__(self, workdir, idp_metadata: bytes):
        self.server = make_server("127.0.0.1", 0, self.app, handler_class=_Quiet)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.acs = f"{self.url}/acs"
        workdir.mkdir(parents=True, exist_ok=True)
        key_pem, cert_pem = signing.generate_self_signed("pysaml2 ECP SP")
        (workdir / "sp.key").write_bytes(key_pem)
        (workdir / "sp.crt").write_bytes(cert_pem)
        config = SPConfig()
        config.load(
            {
                "entityid": f"{self.url}/metadata",
                "key_file": str(workdir / "sp.key"),
                "cert_file": str(workdir / "sp.crt"),
                "xmlsec_binary": "/usr/bin/xmlsec1",
                "metadata": {"inline": [idp_metadata.decode()]},
                "allow_unknown_attributes": True,
                "service": {
                    "sp": {
                        # One location for both: fedmock registers ACS locations as
                        # HTTP-POST and skips PAOS entries on import.
                        "endpoints": {
                            "assertion_consumer_service": [
                                (self.acs, BINDING_HTTP_POST),
                                (self.acs, BINDING_PAOS),
                            ]
                        },
                        "want_response_signed": True,
                        "want_assertions_signed": True,
                        "allow_unsolicited": False,
                    }
                },
            }
        )
        self.client = Saml2Client(config=config)
        self.idp_entity_id = next(iter(self.client.metadata.identity_providers()))
        self.outstanding: dict[str, str] = {}
        self.sessions: dict[str, str] = {}
        self.accepted = []
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def metadata(self) -> bytes:
        return create_metadata_string(None, config=self.client.config)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def app(self, environ, start_response):
        cookie = SimpleCookie(environ.get("HTTP_COOKIE", ""))
        session = cookie["sp"].value if "sp" in cookie else ""
        if environ["PATH_INFO"] == "/protected" and session in self.sessions:
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [f"hello {self.sessions[session]}".encode()]
        if environ["PATH_INFO"] == "/protected" and "HTTP_PAOS" in environ:
            request_id, envelope = self.client.create_ecp_authn_request(
                entityid=self.idp_entity_id, relay_state="/protected"
            )
            self.outstanding[request_id] = "/protected"
            start_response("200 OK", [("Content-Type", "application/vnd.paos+xml")])
            return [envelope.encode()]
        if environ["PATH_INFO"] == "/acs" and environ["REQUEST_METHOD"] == "POST":
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            # pysaml2's own parse_ecp_authn_response fails (its unravel() knows no PAOS
            # binding), so the SP takes the Response out of the envelope and validates it
            # exactly as a posted one: signature (xmlsec1), InResponseTo, audience, time.
            (saml_response,) = etree.fromstring(body).find(f"{{{c.SOAP11}}}Body")
            response = self.client.parse_authn_request_response(
                base64.b64encode(etree.tostring(saml_response)).decode(),
                BINDING_HTTP_POST,
                self.outstanding,
            )
            self.accepted.append(response)
            session = f"s{len(self.accepted)}"
            self.sessions[session] = response.assertion.subject.name_id.text
            start_response(
                "302 Found", [("Location", "/protected"), ("Set-Cookie", f"sp={session}")]
            )
            return [b""]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not here"]


class RelayingEcpClient(EcpClient):
    """pysaml2's ECP client, relaying the IdP's Response as it came.

    Unchanged, its phase 3 re-serialises the parsed Response with new prefixes (ns0:…),
    and exclusive C14N keeps prefixes, so every signature breaks and no signed response
    reaches any SP. phase2 runs as written (the SOAP call with Basic credentials, the
    status, the ecp:Response's ACS against the SP's responseConsumerURL); only its
    return value is the Response's text from the wire, which pysaml2 splices in verbatim.
    """

    idp_reply = b""

    def send(self, url, method="GET", **kwargs):
        reply = super().send(url, method, **kwargs)
        if url.endswith("/saml/ecp/"):
            type(self).idp_reply = reply.content
        return reply

    def phase2(self, *args, **kwargs):
        super().phase2(*args, **kwargs)
        (saml_response,) = etree.fromstring(self.idp_reply).find(f"{{{c.SOAP11}}}Body")
        return etree.tostring(saml_response).decode()


def test_pysaml2_ecp_client_signs_in_through_a_pysaml2_sp(demo, idp_url, tmp_path):
    metadata = Browser(idp_url).get("/saml/metadata/").content
    (tmp_path / "idp.xml").write_bytes(metadata)
    with EcpServiceProvider(tmp_path / "sp", metadata) as sp:
        (tmp_path / "sp.xml").write_bytes(sp.metadata())
        from django.core.management import call_command

        call_command("import_sp_metadata", str(tmp_path / "sp.xml"), stdout=open("/dev/null", "w"))
        ecp = RelayingEcpClient(
            "alice", "alice", sp=f"{sp.url}/protected", metadata_file=str(tmp_path / "idp.xml")
        )
        page = ecp.get(url=f"{sp.url}/protected", idp_entity_id=sp.idp_entity_id)

        assert page.status_code == 200
        (accepted,) = sp.accepted
        assert page.text == f"hello {accepted.assertion.subject.name_id.text}"
        assert accepted.in_response_to in sp.outstanding
    event = AuditEvent.objects.get(flow="ecp")
    assert (event.outcome, event.username, event.sp_entity_id) == (
        "sent",
        "alice",
        f"{sp.url}/metadata",
    )
    assert event.request_id == accepted.in_response_to
