"""POST /api/v1/web-identity-tokens over real HTTP with a token."""

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp import keys
from idp.models import AuditEvent, SigningKey

from .api_support import Api, assert_refusal, staff, token_for

pytestmark = pytest.mark.django_db(transaction=True)
PATH = "/api/v1/web-identity-tokens"


@pytest.fixture
def jwt_key(signing_key):
    key, _ = keys.ensure_active_key(SigningKey.Use.JWT)
    keys.forget_cached_keys()
    return key


def test_the_api_mints_a_token_that_verifies_against_the_jwks(idp_url, jwt_key):
    api = Api(idp_url, token_for(staff("root", superuser=True)))
    answer = api.post(
        PATH,
        {
            "preset": "github",
            "repo": "acme/app",
            "environment": "prod",
            "claims": {"team": "ops"},
            "now": "2026-05-01T12:00:00Z",
            "lifetime": 120,
        },
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    key_set = KeySet.import_key_set(api.get("/oidc/jwks").json())
    decoded = jwt.decode(body["token"], key_set, algorithms=["RS256"])
    assert decoded.claims == body["claims"] and decoded.header["kid"] == body["kid"]
    assert body["claims"]["sub"] == "repo:acme/app:environment:prod"
    assert body["claims"]["team"] == "ops" and body["claims"]["exp"] - body["claims"]["iat"] == 120
    assert body["expires_at"].startswith("2026-05-01T12:02:00")
    assert AuditEvent.objects.get(flow="web-identity").username == "root"


REFUSALS = [
    ({"preset": "github", "repo": "no"}, 400, "is not a GitHub repository"),
    ({"preset": "azure"}, 400, "azure"),
    ({"sub": "x", "claims": {"exp": 1}}, 400, "set by the minting"),
    ({"sub": "x", "lifetime": 0}, 400, "lifetime"),
    ({}, 400, "needs a sub"),
]


@pytest.mark.parametrize(("fields", "status", "words"), REFUSALS)
def test_bad_requests_are_400s_in_the_apis_shape(idp_url, jwt_key, fields, status, words):
    api = Api(idp_url, token_for(staff("root", superuser=True)))
    assert_refusal(api.post(PATH, fields), status, words)


def test_needs_the_preview_permission_and_the_sign_on_scope(idp_url, jwt_key):
    reader = Api(idp_url, token_for(staff("reader", "idp.preview_signed_response"), ["read"]))
    assert reader.post(PATH, {"sub": "x"}).status_code == 403
    plain = Api(idp_url, token_for(staff("plain")))
    assert plain.post(PATH, {"sub": "x"}).status_code == 403
    allowed = Api(idp_url, token_for(staff("minter", "idp.preview_signed_response"), ["sign-on"]))
    assert allowed.post(PATH, {"sub": "x"}).status_code == 201
    assert Api(idp_url).post(PATH, {"sub": "x"}).status_code == 401


def test_without_a_jwt_key_it_is_a_503(idp_url, signing_key):
    keys.forget_cached_keys()
    api = Api(idp_url, token_for(staff("root", superuser=True)))
    body = assert_refusal(api.post(PATH, {"sub": "x"}), 503)
    assert "ensure_signing_key" in body["hint"]
