"""idp.sts.web_identity: the pure checks of AssumeRoleWithWebIdentity, on tokens signed here."""

import datetime

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from idp.sts import web_identity
from idp.sts.errors import StsError

NOW = datetime.datetime(2026, 11, 21, 12, 0, tzinfo=datetime.UTC)
T = int(NOW.timestamp())
ISSUER = "https://token.actions.githubusercontent.com"
ARN = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
PROVIDER = web_identity.Provider(ISSUER, ("sts.amazonaws.com",), ARN)
RSA = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
EC = ECKey.generate_key("P-256", parameters={"kid": "ec-1"})
OTHER = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})  # same kid, other key
JWKS = {"keys": [RSA.as_dict(private=False), EC.as_dict(private=False)]}
GITHUB = {
    "iss": ISSUER,
    "aud": "sts.amazonaws.com",
    "sub": "repo:acme/app:ref:refs/heads/main",
    "repository": "acme/app",
    "iat": T - 60,
    "nbf": T - 60,
    "exp": T + 300,
}


def sign(claims=None, key=RSA, alg="RS256", **header):
    return jwt.encode({"alg": alg, "kid": key.kid, **header}, {**GITHUB, **(claims or {})}, key)


def check(token, provider=PROVIDER, jwks=JWKS, duration=None, role_max=3600):
    return web_identity.validate(
        token,
        provider=provider,
        jwks=jwks,
        now=NOW,
        duration_seconds=duration,
        role_max_session_duration=role_max,
    )


@pytest.mark.parametrize("key,alg", [(RSA, "RS256"), (EC, "ES256")])
def test_github_token_accepted(key, alg):
    validated = check(sign(key=key, alg=alg))
    assert validated.subject == "repo:acme/app:ref:refs/heads/main"
    assert validated.audience == "sts.amazonaws.com"
    assert validated.duration_seconds == 3600
    context = validated.policy_context()
    assert context["token.actions.githubusercontent.com:sub"] == GITHUB["sub"]
    assert context["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    assert "token.actions.githubusercontent.com:oaud" not in context  # absent, as no azp
    assert context["aws:FederatedProvider"] == ARN


def test_azp_moves_aud_to_oaud_as_for_google():
    token = sign({"aud": ["sts.amazonaws.com", "x"], "azp": "client-1", "amr": ["pwd"]})
    context = check(token).policy_context()
    assert context["token.actions.githubusercontent.com:aud"] == "client-1"
    assert context["token.actions.githubusercontent.com:oaud"] == ["sts.amazonaws.com", "x"]
    assert context["token.actions.githubusercontent.com:amr"] == ["pwd"]


def _none_token():
    import base64
    import json

    def part(value):
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'kid': 'rsa-1'})}.{part(GITHUB)}."


def _hs_token():
    # The confusion attack: HMAC "signed" with a secret the attacker knows (the public
    # modulus; joserfc itself refuses a PEM public key as an HMAC secret).
    secret = OctKey.import_key(RSA.as_dict(private=False)["n"].encode())
    return jwt.encode({"alg": "HS256", "kid": "rsa-1"}, GITHUB, secret)


def _tampered():
    header, payload, signature = sign().split(".")
    other = sign({"sub": "repo:evil/app:ref:refs/heads/main"}).split(".")[1]
    return f"{header}.{other}.{signature}"


@pytest.mark.parametrize(
    ("make", "code", "message"),
    [
        (lambda: "abc", "ValidationError", "greater than or equal to 4"),
        (lambda: "a" * 20_001, "ValidationError", "less than or equal to 20000"),
        (lambda: "not.a.jwt", "InvalidIdentityToken", "not a valid JWT"),
        (_none_token, "InvalidIdentityToken", "algorithm is not supported"),
        (_hs_token, "InvalidIdentityToken", "algorithm is not supported"),
        (
            lambda: sign(key=RSA, alg="RS256", kid="rsa-9"),
            "InvalidIdentityToken",
            "verification key",
        ),
        (lambda: sign(key=OTHER), "InvalidIdentityToken", "signature is invalid"),
        (_tampered, "InvalidIdentityToken", "signature is invalid"),
        (lambda: sign({"iss": "https://evil.example"}), "InvalidIdentityToken", "Issuer"),
        (lambda: sign({"aud": "other"}), "InvalidIdentityToken", "Incorrect token audience"),
        (lambda: sign({"aud": ["a", "b"]}), "InvalidIdentityToken", "Incorrect token audience"),
        (lambda: sign({"sub": ""}), "InvalidIdentityToken", "no sub claim"),
        (lambda: sign({"exp": T}), "ExpiredTokenException", f"current date/time {T} must be"),
        (lambda: sign({"exp": None}), "InvalidIdentityToken", "no exp claim"),
        (lambda: sign({"exp": "soon"}), "InvalidIdentityToken", "not a valid JWT"),
        (lambda: sign({"nbf": T + 1}), "InvalidIdentityToken", "not yet valid"),
        (lambda: sign({"iat": T + 1}), "InvalidIdentityToken", "not yet valid"),
    ],
)
def test_refusals(make, code, message):
    with pytest.raises(StsError) as excinfo:
        check(make())
    assert excinfo.value.code == code
    assert message in excinfo.value.message
    assert excinfo.value.explanation


def test_unparseable_jwks_is_refused_not_raised():
    with pytest.raises(StsError) as excinfo:
        check(sign(), jwks={"keys": [{"kty": "nonsense"}]})
    assert excinfo.value.code == "InvalidIdentityToken"


@pytest.mark.parametrize(
    ("duration", "role_max", "code"),
    [(899, 3600, "ValidationError"), (3601, 3600, "ValidationError"), (7200, 7200, None)],
)
def test_duration(duration, role_max, code):
    if code is None:
        assert check(sign(), duration=duration, role_max=role_max).duration_seconds == duration
        return
    with pytest.raises(StsError) as excinfo:
        check(sign(), duration=duration, role_max=role_max)
    assert excinfo.value.code == code


def test_issuer_of_reads_without_trusting():
    assert web_identity.issuer_of(sign()) == ISSUER
    assert web_identity.issuer_of("garbage") is None
