"""fedmock's OIDC issuer over HTTP, driven by a relying party nobody here wrote (Authlib's
client) and by boto3 at the local STS.

- Authlib discovers the issuer, starts the code flow with PKCE (S256), exchanges the code,
  validates the ID token against /oidc/jwks with its own claims checks (iss, aud, exp,
  nonce) and reads userinfo; the user's side (login form) is driven with requests.
- Client credentials with Authlib; the access token is a JWT that AssumeRoleWithWebIdentity
  accepts when the IAM OIDC provider for our issuer lists the client ID.
- `rotate_key stage/activate --use jwt`: new ID tokens carry the new kid, and Authlib
  (which caches the JWKS) refetches it for the unknown kid.
"""

import io
import json
import re
from urllib.parse import urljoin

import boto3
import pytest
import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.django_client import OAuth
from authlib.integrations.requests_client import OAuth2Session
from botocore.config import Config
from botocore.exceptions import ClientError
from django.core.management import call_command
from joserfc import jwt
from joserfc.jwk import KeySet

from idp import keys
from idp.models import AuditEvent, SigningKey
from idp.oidc.models import Client
from idp.sts import jwks as sts_jwks
from idp.sts import state, web_identity

pytestmark = pytest.mark.django_db(transaction=True)

JWT = SigningKey.Use.JWT
ACCOUNT = "123456789012"
CALLBACK = "http://rp.example/callback"
SECRET = "e2e-secret-" + "y" * 24
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@pytest.fixture
def issuer(idp_url, demo):
    keys.ensure_active_key(JWT)
    keys.forget_cached_keys()
    sts_jwks.forget()
    state.forget()
    client = Client(
        client_id="grafana",
        name="Grafana",
        client_type=Client.CLIENT_CONFIDENTIAL,
        client_secret=SECRET,
        redirect_uris=CALLBACK,
        grant_types=[Client.GRANT_AUTHORIZATION_CODE, Client.GRANT_CLIENT_CREDENTIALS],
        allowed_scopes=["openid", "profile", "email", "groups"],
        skip_authorization=True,
    )
    client.full_clean()
    client.save()
    yield idp_url + "/oidc"
    sts_jwks.forget()
    state.forget()


@pytest.fixture
def rp(issuer):
    """Authlib's OAuth client app, configured by discovery as an application would be."""
    registry = OAuth()
    return registry.register(
        name="fedmock",
        client_id="grafana",
        client_secret=SECRET,
        server_metadata_url=issuer + "/.well-known/openid-configuration",
        client_kwargs={"scope": "openid profile email groups", "code_challenge_method": "S256"},
    )


def sign_in(url: str, username: str = "alice") -> str:
    """The user's browser: follow the authorization URL, fill in the login form, and stop
    at the redirect to the RP's callback (which does not exist); its URL is the answer."""
    browser = requests.Session()
    for _ in range(10):
        response = browser.get(url, allow_redirects=False, timeout=10)
        if response.status_code == 200 and "csrfmiddlewaretoken" in response.text:
            login = urljoin(url, "/accounts/login/")
            next_url = re.search(r'name="next" value="([^"]*)"', response.text).group(1)
            response = browser.post(
                login,
                {
                    "csrfmiddlewaretoken": CSRF.search(response.text).group(1),
                    "username": username,
                    "password": username,
                    "next": next_url.replace("&amp;", "&"),
                },
                allow_redirects=False,
                timeout=10,
            )
        assert response.status_code == 302, response.text[:500]
        url = urljoin(url, response.headers["Location"])
        if url.startswith(CALLBACK):
            return url
    raise AssertionError("the sign-in never reached the callback")


def code_flow(rp) -> tuple[dict, dict, str]:
    started = rp.create_authorization_url(redirect_uri=CALLBACK)
    assert "code_challenge_method=S256" in started["url"]
    answer = sign_in(started["url"])
    params = dict(p.split("=", 1) for p in answer.split("?", 1)[1].split("&"))
    assert params["state"] == started["state"]
    token = rp.fetch_access_token(
        redirect_uri=CALLBACK, code=params["code"], code_verifier=started["code_verifier"]
    )
    return token, started, answer


def test_authlib_runs_the_code_flow_with_pkce_and_validates_the_id_token(rp, issuer):
    token, started, _ = code_flow(rp)
    user = rp.parse_id_token(token, nonce=started["nonce"])  # Authlib: iss, aud, exp, nonce
    assert user["iss"] == issuer and user["aud"] == "grafana"
    assert user["sub"] == "alice" and user["email"] == "alice@example.com"
    assert "Engineering" in user["groups"]
    info = rp.userinfo(token=token)
    assert info["sub"] == "alice" and info["name"] == "Alice Anders"
    # a wrong nonce is refused by Authlib's own check
    with pytest.raises(Exception, match="nonce"):
        rp.parse_id_token(token, nonce="not-the-nonce")
    assert AuditEvent.objects.filter(flow="oidc", outcome="sent", username="alice").exists()


def test_a_code_is_refused_the_second_time(rp):
    started = rp.create_authorization_url(redirect_uri=CALLBACK)
    answer = sign_in(started["url"])
    code = answer.split("code=", 1)[1].split("&", 1)[0]
    rp.fetch_access_token(redirect_uri=CALLBACK, code=code, code_verifier=started["code_verifier"])
    with pytest.raises(OAuthError) as refused:
        rp.fetch_access_token(
            redirect_uri=CALLBACK, code=code, code_verifier=started["code_verifier"]
        )
    assert refused.value.error == "invalid_grant"
    assert "already used" in refused.value.description


def test_new_id_tokens_carry_the_new_kid_after_a_rollover(rp, issuer):
    token, started, _ = code_flow(rp)
    old_kid = jwt.decode(token["id_token"], rp_key_set(issuer)).header["kid"]
    assert rp.parse_id_token(token, nonce=started["nonce"])  # Authlib caches the JWKS
    assert [key["kid"] for key in rp.server_metadata["jwks"]["keys"]] == [old_kid]
    out = io.StringIO()
    call_command("rotate_key", "stage", "--use", "jwt", stdout=out)
    call_command("rotate_key", "activate", "--use", "jwt", stdout=out)
    keys.forget_cached_keys()
    token, started, _ = code_flow(rp)
    new_kid = jwt.decode(token["id_token"], rp_key_set(issuer)).header["kid"]
    assert new_kid != old_kid
    assert set(kids(issuer)) == {old_kid, new_kid}  # both published until retire
    # Authlib cached the old JWKS; an unknown kid makes it refetch, and it validates
    assert rp.parse_id_token(token, nonce=started["nonce"])["sub"] == "alice"


def rp_key_set(issuer):
    return KeySet.import_key_set(requests.get(issuer + "/jwks", timeout=5).json())


def kids(issuer) -> list[str]:
    return [key["kid"] for key in requests.get(issuer + "/jwks", timeout=5).json()["keys"]]


# --- client credentials, then AssumeRoleWithWebIdentity at the local STS ---


def machine_token(issuer: str, scope: str = "openid") -> dict:
    metadata = requests.get(issuer + "/.well-known/openid-configuration", timeout=5).json()
    with OAuth2Session("grafana", SECRET, scope=scope) as session:
        return session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")


def aws(idp_url, service):
    return boto3.client(
        service,
        endpoint_url=idp_url + "/aws/",
        region_name="us-east-1",
        aws_access_key_id=ACCOUNT,
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 1}),
    )


@pytest.fixture
def machine_role(idp_url, issuer):
    iam = aws(idp_url, "iam")
    provider = iam.create_open_id_connect_provider(Url=issuer, ClientIDList=["grafana"])[
        "OpenIDConnectProviderArn"
    ]
    name = web_identity.Provider(issuer, ()).key
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {f"{name}:aud": "grafana", f"{name}:sub": "grafana"}},
            }
        ],
    }
    arn = iam.create_role(RoleName="machine", AssumeRolePolicyDocument=json.dumps(trust))
    iam.close()
    return arn["Role"]["Arn"]


def test_a_client_credentials_token_assumes_a_role_at_the_local_sts(idp_url, issuer, machine_role):
    token = machine_token(issuer)
    assert token["token_type"].lower() == "bearer" and "refresh_token" not in token
    sts = aws(idp_url, "sts")
    answer = sts.assume_role_with_web_identity(
        RoleArn=machine_role, RoleSessionName="batch", WebIdentityToken=token["access_token"]
    )
    assert answer["SubjectFromWebIdentityToken"] == "grafana"
    assert answer["Audience"] == "grafana"
    assert answer["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/machine/batch"
    sts.close()


def test_a_user_access_token_is_refused_by_a_trust_policy_for_the_client(rp, idp_url, machine_role):
    token, _, _ = code_flow(rp)  # sub is alice, not the client
    sts = aws(idp_url, "sts")
    with pytest.raises(ClientError) as refused:
        sts.assume_role_with_web_identity(
            RoleArn=machine_role, RoleSessionName="alice", WebIdentityToken=token["access_token"]
        )
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    sts.close()


def test_authlib_sees_a_bad_secret_as_invalid_client(issuer):
    metadata = requests.get(issuer + "/.well-known/openid-configuration", timeout=5).json()
    with OAuth2Session("grafana", "wrong") as session:
        with pytest.raises(OAuthError) as refused:
            session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    assert refused.value.error == "invalid_client"
    assert "secret" in refused.value.description
