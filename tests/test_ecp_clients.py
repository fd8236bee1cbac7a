"""ECP clients that nobody here wrote, over HTTP against the live IdP: pysaml2's ECP client
through a pysaml2 SP (which verifies the response with xmlsec1), and awscli-login."""

import base64
import json
import os
import subprocess
import sys
import threading
from http.cookies import SimpleCookie
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from lxml import etree
from saml2 import BINDING_HTTP_POST, BINDING_PAOS
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.ecp_client import Client as EcpClient
from saml2.metadata import create_metadata_string

from idp import clock
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


# --- awscli-login (PyPI), the ECP client AWS users run ----------------------------------

ALICE_ROLES = {
    "arn:aws:iam::111122223333:role/Admin",
    "arn:aws:iam::111122223333:role/ReadOnly",
    "arn:aws:iam::444455556666:role/Developer",
}
ADMIN = "arn:aws:iam::111122223333:role/Admin"
PROVIDER = "arn:aws:iam::111122223333:saml-provider/fedmock"


def test_awscli_login_gets_alices_assertion_and_roles(demo, idp_url, tmp_path):
    """Its own ECP code (saml.authenticate): the AuthnRequest it builds (Issuer
    urn:amazon:webservices, PAOS, no Destination), Basic credentials, and the parsing
    of our envelope into the base64 Response it hands to STS and its role pairs."""
    from awscli_login import saml as awscli_login_saml

    from idp import keys
    from idp.saml import aws

    assertion, roles = awscli_login_saml.authenticate(
        f"{idp_url}/saml/ecp/", str(tmp_path / "jar.txt"), "alice", "alice", headers={}
    )

    assert {role for _, role in roles} == ALICE_ROLES
    assert {provider.rsplit("/", 1)[1] for provider, _ in roles} == {"fedmock"}
    # What it cut out of the envelope still verifies, and passes the AWS checks.
    findings = aws.check_response(
        base64.b64decode(assertion),
        now=clock.now(),
        certificates=[key.cert_pem for key in keys.published_keys()],
        issuer=f"{idp_url}/saml/metadata/",
    )
    assert [f for f in findings if f.severity == "error"] == []
    assert AuditEvent.objects.get(flow="ecp").sp_entity_id == "urn:amazon:webservices"


def test_awscli_login_refuses_what_the_idp_refuses(demo, idp_url, tmp_path):
    from awscli_login import saml as awscli_login_saml
    from requests import HTTPError

    jar = str(tmp_path / "jar.txt")
    awscli_login_saml.authenticate(f"{idp_url}/saml/ecp/", jar, "alice", "alice", headers={})
    with pytest.raises(HTTPError) as refused:
        awscli_login_saml.authenticate(f"{idp_url}/saml/ecp/", jar, "alice", "wrong", headers={})
    assert refused.value.response.status_code == 401
    assert b"Wrong user name or password" in refused.value.response.content
    # Its cookie refresh (a POST without credentials, as Shibboleth's session allows) is
    # a 401 here: fedmock keeps no ECP session, and awscli-login then asks for the password.
    with pytest.raises(HTTPError) as challenged:
        awscli_login_saml.refresh(f"{idp_url}/saml/ecp/", jar)
    assert challenged.value.response.status_code == 401


@pytest.fixture
def local_iam(demo, idp_url):
    """fedmock's own IAM at /aws/: the SAML provider fedmock with this IdP's metadata and
    the role Admin trusting it: created, or updated where the demo fixture holds them."""
    import boto3
    from botocore.exceptions import ClientError

    from idp import identity
    from idp.sts import state

    state.forget()  # the worker's copy of the IAM state reloads from this test's database
    iam = boto3.client(
        "iam",
        endpoint_url=f"{idp_url}/aws/",
        region_name="us-east-1",
        aws_access_key_id="111122223333",  # the local IAM's account is the key's
        aws_secret_access_key="local",
    )
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": PROVIDER},
                "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession"],
                "Condition": {"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}},
            }
        ],
    }
    metadata = identity.metadata_xml().decode()  # names the live server's URL
    policy = json.dumps(trust)
    try:
        iam.create_saml_provider(Name="fedmock", SAMLMetadataDocument=metadata)
    except ClientError as error:  # the demo's, with the metadata of IDP_BASE_URL's default
        assert error.response["Error"]["Code"] == "EntityAlreadyExists"
        iam.update_saml_provider(SAMLProviderArn=PROVIDER, SAMLMetadataDocument=metadata)
    try:
        iam.create_role(RoleName="Admin", AssumeRolePolicyDocument=policy)
    except ClientError as error:
        assert error.response["Error"]["Code"] == "EntityAlreadyExists"
        iam.update_assume_role_policy(RoleName="Admin", PolicyDocument=policy)
    yield f"{idp_url}/aws/"
    iam.close()
    state.forget()


def test_the_aws_login_command_signs_alice_in_through_ecp(demo, idp_url, local_iam, tmp_path):
    """awscli-login's own command, unchanged: `aws login` runs `aws-login --login ARGS`
    (the awscli plugin writes ARGS), and `credential_process` runs `aws-login --profile`.
    Its STS is fedmock's own at /aws/, which checks the assertion as AWS does."""
    home = tmp_path / "home"
    (home / ".aws-login").mkdir(parents=True)
    (home / ".aws-login" / "config").write_text(
        f"[fedmock]\necp_endpoint_url = {idp_url}/saml/ecp/\nusername = alice\n"
        f"role_arn = {ADMIN}\nfactor = off\n"  # no Duo prompt: fedmock asks for none
    )
    (home / "aws-config").write_text(
        "[profile fedmock]\nregion = us-east-1\ncredential_process = aws-login --profile fedmock\n"
    )
    arguments = {  # awscli_login.Login.ARG_TABLE, as the plugin passes it
        "ecp_endpoint_url": None,
        "username": None,
        "password": "alice",
        "factor": None,
        "passcode": None,
        "role_arn": None,
        "duration": None,
        "http_header_factor": None,
        "http_header_passcode": None,
        "verify_ssl_certificate": None,
        "ask_password": False,
        "force_refresh": False,
        "verbose": 0,
        "debug_info": False,
        "save_http_traffic": None,
        "load_http_traffic": None,
    }
    (tmp_path / "args.json").write_text(json.dumps(arguments))
    environment = {
        **os.environ,
        "HOME": str(home),
        "AWSCLI_LOGIN_ROOT": str(home),
        "AWS_CONFIG_FILE": str(home / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
        "AWS_ENDPOINT_URL_STS": local_iam,
    }
    command = str(Path(sys.executable).parent / "aws-login")

    login = subprocess.run(
        [command, "--login", str(tmp_path / "args.json"), "--profile", "fedmock"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert login.returncode == 0, login.stderr
    process = subprocess.run(
        [command, "--profile", "fedmock"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert process.returncode == 0, process.stderr
    credentials = json.loads(process.stdout)
    assert credentials["Version"] == 1
    assert credentials["AccessKeyId"] and credentials["SessionToken"]
    saved = (home / ".aws-login" / "credentials").read_text()
    assert f"aws_role_arn = {ADMIN}" in saved
    event = AuditEvent.objects.get(flow="ecp")
    assert (event.outcome, event.username, event.sp_entity_id) == (
        "sent",
        "alice",
        "urn:amazon:webservices",
    )
    import boto3

    sts = boto3.client(
        "sts",
        endpoint_url=local_iam,
        region_name="us-east-1",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    assert sts.get_caller_identity()["Arn"].endswith(":assumed-role/Admin/alice@example.com")
    sts.close()
