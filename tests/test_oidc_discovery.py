"""/oidc/.well-known/openid-configuration and /oidc/jwks: next and active JWT keys only."""

import datetime

import pytest
from django.utils import timezone
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet, RSAKey

from idp import keys
from idp.models import SigningKey

JWT = SigningKey.Use.JWT
LATER = datetime.timedelta(days=1)


@pytest.fixture
def jwt_key(signing_key):
    key, _ = keys.ensure_active_key(JWT)
    keys.forget_cached_keys()
    return key


def kids(client) -> list[str]:
    keys.forget_cached_keys()
    return [k["kid"] for k in client.get("/oidc/jwks").json()["keys"]]


def test_discovery_names_the_issuer_and_the_jwks(client, settings, db):
    settings.IDP_BASE_URL = "https://idp.example.test"
    response = client.get("/oidc/.well-known/openid-configuration")
    assert response.status_code == 200 and "max-age=300" in response["Cache-Control"]
    body = response.json()
    assert body["issuer"] == "https://idp.example.test/oidc"
    assert body["jwks_uri"] == "https://idp.example.test/oidc/jwks"
    assert body["id_token_signing_alg_values_supported"] == ["RS256"]
    # "code" since the issuer runs the authorization-code flow (part O); "id_token" would
    # announce the implicit flow, which it refuses.
    assert body["response_types_supported"] == ["code"]
    assert body["subject_types_supported"] == ["public"]
    for claim in ("sub", "aud", "repository", "job_workflow_ref", "kubernetes.io", "project_path"):
        assert claim in body["claims_supported"]


def test_jwks_publishes_next_and_active_jwt_keys_not_retired_nor_saml(client, jwt_key):
    first = kids(client)
    assert len(first) == 1
    staged = keys.stage(use=JWT)
    both = kids(client)
    assert both[0] == first[0] and len(both) == 2
    now = timezone.now() + LATER
    keys.activate(staged.fingerprint, now=now)
    keys.retire(jwt_key.fingerprint, now=now + LATER)
    assert kids(client) == [both[1]]
    # The SAML key never appears, nor do SAML rotations change the set.
    keys.stage()
    assert kids(client) == [both[1]]


def test_jwks_is_public_only_and_cached(client, jwt_key):
    response = client.get("/oidc/jwks")
    assert "max-age=300" in response["Cache-Control"]
    (jwk,) = response.json()["keys"]
    assert jwk["kty"] == "RSA" and jwk["alg"] == "RS256" and jwk["use"] == "sig"
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(jwk)


def test_kid_is_stable_and_is_the_rfc7638_thumbprint(client, jwt_key):
    first = kids(client)
    assert kids(client) == first
    (jwk,) = client.get("/oidc/jwks").json()["keys"]
    assert RSAKey.import_key(jwk).thumbprint() == jwk["kid"] == first[0]


def test_the_published_jwk_verifies_a_token_signed_with_the_key(client, jwt_key):
    material = keys.active_key(JWT)
    private = RSAKey.import_key(material.private_key)
    token = jwt.encode({"alg": "RS256", "kid": private.thumbprint()}, {"sub": "x"}, private)
    key_set = KeySet.import_key_set(client.get("/oidc/jwks").json())
    assert jwt.decode(token, key_set, algorithms=["RS256"]).claims == {"sub": "x"}
    other = RSAKey.generate_key(2048)
    forged = jwt.encode({"alg": "RS256", "kid": private.thumbprint()}, {"sub": "x"}, other)
    with pytest.raises(BadSignatureError):
        jwt.decode(forged, key_set, algorithms=["RS256"])


def test_a_missing_key_file_is_a_503_with_a_hint_not_a_500(client, jwt_key):
    # A row from before keys lived in the database, whose files are on no disk here.
    SigningKey.objects.filter(fingerprint=jwt_key.fingerprint).update(
        private_key_encrypted="", certificate_pem=""
    )
    keys.forget_cached_keys()
    response = client.get("/oidc/jwks")
    assert response.status_code == 503 and "retire" in response.json()["hint"]
    assert set(response.json()) >= {"title", "message", "hint", "status"}  # the API's shape
    assert response["Cache-Control"] == "no-store"


def test_only_get(client, db):
    assert client.post("/oidc/jwks").status_code == 405
