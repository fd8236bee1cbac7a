"""AssumeRoleWithWebIdentity at the local STS over real HTTP with boto3: the issuer's
discovery document and JWKS are served by a tiny http.server thread (a loopback issuer)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from joserfc import jwt
from joserfc.jwk import RSAKey

from idp import clock
from idp.models import AuditEvent
from idp.sts import jwks, state

pytestmark = pytest.mark.django_db(transaction=True)

ACCOUNT = "123456789012"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
MAIN = "repo:acme/app:ref:refs/heads/main"


@pytest.fixture
def issuer():
    """An OIDC issuer on 127.0.0.1: discovery and JWKS, nothing else."""
    box = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            base = box["url"]
            documents = {
                "/.well-known/openid-configuration": {"issuer": base, "jwks_uri": base + "/jwks"},
                "/jwks": {"keys": [KEY.as_dict(private=False)]},
            }
            body = json.dumps(documents.get(self.path, {})).encode()
            self.send_response(200 if self.path in documents else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box["url"] = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    jwks.forget()
    state.forget()
    yield box["url"]
    server.shutdown()
    server.server_close()
    jwks.forget()
    state.forget()


@pytest.fixture
def aws(idp_url):
    made = []

    def make(service, **credentials):
        made.append(
            boto3.client(
                service,
                endpoint_url=idp_url + "/aws/",
                region_name="us-east-1",
                aws_access_key_id=credentials.get("key", ACCOUNT),
                aws_secret_access_key=credentials.get("secret", "local"),
                aws_session_token=credentials.get("token"),
                config=Config(retries={"max_attempts": 1}),
            )
        )
        return made[-1]

    yield make
    for client in made:
        client.close()


def token(issuer, **claims):
    now = int(clock.now().timestamp())
    body = {
        "iss": issuer,
        "aud": "sts.amazonaws.com",
        "sub": MAIN,
        "iat": now - 10,
        "nbf": now - 10,
        "exp": now + 300,
        **claims,
    }
    return jwt.encode({"alg": "RS256", "kid": "k1"}, body, KEY)


@pytest.fixture
def role(issuer, aws):
    iam = aws("iam")
    provider = iam.create_open_id_connect_provider(Url=issuer, ClientIDList=["sts.amazonaws.com"])[
        "OpenIDConnectProviderArn"
    ]
    host = issuer.removeprefix("http://")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {f"{host}:aud": "sts.amazonaws.com", f"{host}:sub": MAIN}
                },
            }
        ],
    }
    return iam.create_role(RoleName="deploy", AssumeRolePolicyDocument=json.dumps(trust))["Role"][
        "Arn"
    ]


def test_github_token_assumes_the_role(issuer, role, aws):
    answer = aws("sts").assume_role_with_web_identity(
        RoleArn=role, RoleSessionName="ci", WebIdentityToken=token(issuer)
    )
    assert answer["SubjectFromWebIdentityToken"] == MAIN
    assert answer["Audience"] == "sts.amazonaws.com"
    assert answer["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/deploy/ci"
    credentials = answer["Credentials"]
    who = aws(
        "sts",
        key=credentials["AccessKeyId"],
        secret=credentials["SecretAccessKey"],
        token=credentials["SessionToken"],
    ).get_caller_identity()
    assert who["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/deploy/ci"
    assert AuditEvent.objects.filter(
        sp_entity_id="sts:AssumeRoleWithWebIdentity", outcome=AuditEvent.Outcome.SENT
    ).exists()


@pytest.mark.parametrize(
    ("claims", "code", "message", "explained"),
    [
        ({"sub": "repo:acme/app:pull_request"}, "AccessDenied", "Not authorized", "sub"),
        ({"aud": "other"}, "InvalidIdentityToken", "Incorrect token audience", "other"),
        ({"exp": 1}, "ExpiredTokenException", "Token expired", "exp"),
    ],
)
def test_refusals_are_explained(issuer, role, aws, claims, code, message, explained):
    with pytest.raises(ClientError) as excinfo:
        aws("sts").assume_role_with_web_identity(
            RoleArn=role, RoleSessionName="ci", WebIdentityToken=token(issuer, **claims)
        )
    response = excinfo.value.response
    assert response["Error"]["Code"] == code
    assert message in response["Error"]["Message"]
    assert explained in response["ResponseMetadata"]["HTTPHeaders"]["x-fedmock-explanation"]
    event = AuditEvent.objects.get(sp_entity_id="sts:AssumeRoleWithWebIdentity")
    assert event.outcome == AuditEvent.Outcome.REFUSED


def test_issuer_without_provider(issuer, role, aws):
    other = "https://idp.example"
    with pytest.raises(ClientError) as excinfo:
        aws("sts").assume_role_with_web_identity(
            RoleArn=role, RoleSessionName="ci", WebIdentityToken=token(other)
        )
    assert excinfo.value.response["Error"]["Message"] == (
        f"No OpenIDConnect provider found in your account for {other}"
    )
