"""Review of issue 11, area R3 (the STS's web identity and the explainer): each test failed
before its fix.

- AssumeRoleWithWebIdentity for fedmock's own issuer fetched /oidc/jwks over HTTP from the
  worker serving the call: under `make run`'s sync gunicorn workers that waits on itself
  (one worker: every call timed out after 5 s; two: two concurrent calls did).
- The mint answered 500 for an issue time at the ends of the calendar and a non-string jti.
- The STS took RS256 and ES256 only, where AWS takes RS/ES 256, 384 and 512; the explainer
  took PS256 (AWS does not), and without a JWKS explained an `alg: none` token as allowed.
- A NUL spelt in a token's JSON reached the audit (PostgreSQL refuses it in a text column).
- Retiring the only JWT key said it "would stop all sign-ons"; `rotate_key status` called
  a JWT key "signs"/"published" without saying what or where, and ignored --use.
"""

import base64
import datetime
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from idp import keys
from idp.management.commands import _explain
from idp.models import AuditEvent, SigningKey
from idp.oidc import issue, tokens
from idp.oidc import jwks as oidc_jwks
from idp.sts import jwks, state, web_identity

from .api_support import staff, token_for

JWT = SigningKey.Use.JWT
# Nothing listens on the discard port: any HTTP fetch of the IdP's own URLs fails at once.
UNREACHABLE = "http://127.0.0.1:9"
NOW = datetime.datetime(2026, 5, 1, 12, 0, tzinfo=datetime.UTC)
DEMO_ROLE = "arn:aws:iam::111122223333:role/GitHubDeploy"


@pytest.fixture
def jwt_key(signing_key):
    key, _ = keys.ensure_active_key(JWT)
    keys.forget_cached_keys()
    return key


@pytest.fixture
def own_issuer(settings, jwt_key):
    settings.IDP_BASE_URL = UNREACHABLE
    jwks.forget()
    state.forget()
    yield oidc_jwks.issuer()
    jwks.forget()
    state.forget()


def sts_call(token: str) -> tuple[int, str, str]:
    answer = Client().post(
        "/aws/",
        {
            "Action": "AssumeRoleWithWebIdentity",
            "Version": "2011-06-15",
            "RoleArn": DEMO_ROLE,
            "RoleSessionName": "ci",
            "WebIdentityToken": token,
        },
    )
    return answer.status_code, answer.content.decode(), answer.get("X-Fedmock-Explanation", "")


# --- fedmock's own issuer is read in process, never fetched from itself ------------------


def test_the_sts_reads_our_own_jwks_without_a_request_to_itself(own_issuer):
    assert jwks.keys_for(own_issuer) == oidc_jwks.public_set()
    assert jwks.keys_for(own_issuer + "/") == oidc_jwks.public_set()


@pytest.mark.django_db
def test_the_demo_role_is_assumed_with_no_http_server_at_all(own_issuer):
    call_command("seed_demo", stdout=io.StringIO())  # its provider is fedmock's issuer
    minted = issue.issue(preset="github", options=tokens.Options())
    status, body, explanation = sts_call(minted.token)
    assert status == 200, (body, explanation)
    assert "<SubjectFromWebIdentityToken>repo:acme/app:ref:refs/heads/main<" in body


def test_another_issuer_is_still_fetched_over_http(own_issuer):
    fetched = []

    def fetcher(issuer):
        fetched.append(issuer)
        return {"keys": []}

    jwks.keys_for("https://token.actions.githubusercontent.com", fetcher=fetcher)
    assert fetched == ["https://token.actions.githubusercontent.com"]
    assert jwks.own_key_set("https://token.actions.githubusercontent.com") is None
    assert jwks.own_key_set(UNREACHABLE + "/oidcx") is None


def test_the_explainer_reads_our_own_jwks_url_in_process(own_issuer):
    minted = issue.issue(preset="github", options=tokens.Options())
    key_set = _explain.jwks_from_url(own_issuer + "/jwks")
    explained = _explain.explain_token(minted.token, ALLOW_ALL, jwks=key_set)
    assert "signature verified" in explained.notes[0]


# --- the mint refuses what it cannot make, in one line, never a 500 ------------------------

MINT_REFUSALS = [
    ({"now": "9999-12-31T23:59:59Z", "lifetime": 86400}, "not between"),
    ({"now": "0001-01-01T00:00:00Z", "fault": "expired"}, "not between"),
    ({"now": "1969-12-31T00:00:00Z"}, "not between"),
    ({"claims": {"jti": 123}}, "jti is 123"),
    ({"claims": {"jti": {"a": 1}}}, "jti is {'a': 1}"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("fields", "words"), MINT_REFUSALS)
def test_the_api_mint_refuses_impossible_times_and_jtis_with_400(jwt_key, fields, words):
    bearer = token_for(staff("root", superuser=True))
    answer = Client().post(
        "/api/v1/web-identity-tokens",
        json.dumps({"preset": "github", **fields}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {bearer}",
    )
    assert answer.status_code == 400, answer.content
    assert words in answer.json()["message"]


@pytest.mark.django_db
def test_the_command_refuses_a_time_at_the_calendars_end_in_one_line(jwt_key):
    with pytest.raises(CommandError, match="not between 1970-01-02 and 9999-12-30"):
        call_command("mint_web_identity_token", "--now", "9999-12-31T23:59:59Z")


def test_the_range_ends_themselves_mint(jwt_key):
    key, kid = oidc_jwks.signing_jwk()
    for moment in (tokens.EARLIEST, tokens.LATEST):
        for fault in (None, tokens.FAULTS["expired"]):
            minted = tokens.mint(
                {"sub": "s"},
                key,
                kid,
                issuer="https://i",
                now=moment,
                lifetime=tokens.MAX_LIFETIME,
                fault=fault,
            )
            assert minted.claims["exp"] > 0


# --- one list of algorithms: AWS's ----------------------------------------------------------

PROVIDER = web_identity.Provider("https://issuer.example", ("sts.amazonaws.com",), "arn")
CLAIMS = {
    "iss": "https://issuer.example",
    "sub": "repo:acme/app:ref:refs/heads/main",
    "aud": "sts.amazonaws.com",
    "iat": int(NOW.timestamp()),
    "exp": int(NOW.timestamp()) + 300,
}
RSA = RSAKey.generate_key(2048, parameters={"kid": "rsa"})
EC = {
    "ES256": ECKey.generate_key("P-256", parameters={"kid": "es256"}),
    "ES384": ECKey.generate_key("P-384", parameters={"kid": "es384"}),
    "ES512": ECKey.generate_key("P-521", parameters={"kid": "es512"}),
}


ALLOW_ALL = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": "arn:aws:iam::1:oidc-provider/issuer.example"},
                "Action": "sts:AssumeRoleWithWebIdentity",
            }
        ],
    }
)


def signed(algorithm: str) -> tuple[str, dict]:
    key = EC.get(algorithm, RSA)
    token = jwt.encode({"alg": algorithm, "kid": key.kid}, CLAIMS, key, algorithms=[algorithm])
    return token, {"keys": [key.as_dict(private=False)]}


def validate(token: str, key_set: dict):
    return web_identity.validate(
        token,
        provider=PROVIDER,
        jwks=key_set,
        now=NOW,
        duration_seconds=None,
        role_max_session_duration=3600,
    )


@pytest.mark.parametrize("algorithm", ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"])
def test_the_sts_and_the_explainer_take_every_algorithm_aws_takes(algorithm):
    token, key_set = signed(algorithm)
    assert validate(token, key_set).subject == CLAIMS["sub"]
    explained = _explain.explain_token(token, ALLOW_ALL, jwks=KeySet.import_key_set(key_set))
    assert explained.allowed and "signature verified" in explained.notes[0]


def unsecured(algorithm: str) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': algorithm, 'kid': 'rsa'})}.{part(CLAIMS)}.c2ln"


@pytest.mark.parametrize("algorithm", ["none", "HS256", "PS256", "EdDSA"])
@pytest.mark.parametrize("with_jwks", [True, False], ids=["jwks", "no-jwks"])
def test_no_path_explains_a_token_aws_refuses_for_its_algorithm(algorithm, with_jwks):
    token = unsecured(algorithm)
    with pytest.raises(web_identity.errors.StsError, match="signing algorithm"):
        validate(token, {"keys": [RSA.as_dict(private=False)]})
    key_set = KeySet.import_key_set({"keys": [RSA.as_dict(private=False)]})
    with pytest.raises(_explain.Unexplainable, match=f"STS would refuse.*'{algorithm}'"):
        _explain.explain_token(token, ALLOW_ALL, jwks=key_set if with_jwks else None)


@pytest.mark.django_db
def test_the_alg_none_fault_is_refused_by_the_explainer_without_a_jwks(jwt_key):
    minted = issue.issue(preset="github", options=tokens.Options(), fault="alg-none")
    with pytest.raises(_explain.Unexplainable, match="not supported"):
        _explain.explain_token(minted.token, ALLOW_ALL)


# --- a NUL spelt in a token never reaches the audit -------------------------------------------


@pytest.mark.django_db
def test_a_nul_in_a_tokens_issuer_is_escaped_in_the_audit(own_issuer):
    call_command("seed_demo", stdout=io.StringIO())
    payload = base64.urlsafe_b64encode(b'{"iss": "https://a\\u0000b", "sub": "x"}').rstrip(b"=")
    token = "eyJhbGciOiJSUzI1NiJ9." + payload.decode() + ".c2ln"
    status, body, _ = sts_call(token)
    assert status == 400 and "No OpenIDConnect provider found" in body
    event = AuditEvent.objects.get(flow="sts")
    assert "\x00" not in event.detail and "https://a\\x00b" in event.detail


@pytest.mark.django_db
def test_a_nul_in_a_minted_sub_is_escaped_in_the_audit(jwt_key):
    issue.issue(preset=None, options=tokens.Options(), sub="a\x00b", claims={"jti": "j\x00"})
    event = AuditEvent.objects.get(flow="web-identity")
    assert "\x00" not in event.detail + event.response_id
    assert "sub=a\\x00b" in event.detail


# --- the key lifecycle says what a JWT key does ----------------------------------------------


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_retiring_the_only_jwt_key_says_what_stops(jwt_key):
    with pytest.raises(keys.KeyLifecycleError) as caught:
        keys.retire(jwt_key.fingerprint)
    message = str(caught.value)
    assert "only active key for jwt" in message and "signing tokens" in message
    assert "all sign-ons" not in message and "rotate_key stage --use jwt" in message
    with pytest.raises(keys.KeyLifecycleError, match="every SAML sign-on"):
        keys.retire(keys.signing_row().fingerprint)
    with pytest.raises(
        keys.KeyLifecycleError, match=r"only active key for jwt signs.*stage --use jwt"
    ):
        keys.retire(use=JWT)


@pytest.mark.django_db
def test_rotate_key_status_names_what_each_key_does_and_honours_use(jwt_key):
    keys.stage(use=JWT)
    both, workers = run("rotate_key", "status").splitlines()[:3], "No worker beat"
    assert [line.split()[0] for line in both] == ["jwt", "jwt", "saml"]
    assert both[0].endswith("signs tokens") and both[1].endswith("published in /oidc/jwks")
    assert both[2].endswith("signs assertions")
    only = run("rotate_key", "status", "--use", "jwt").splitlines()
    assert only[:2] == both[:2] and only[2].startswith(workers)
