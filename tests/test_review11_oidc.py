"""Review of issue 11 (oidc): what the hostile review of the OIDC issuer found, each a test
that failed before its fix.

- prompt=none (silent sign-in, as SPAs renew tokens) was a 500: DOT leaves oauthlib's
  validate_silent_login unimplemented;
- a public client could be given client credentials, and the token endpoint then accepted
  them (RFC 6749 4.4: confidential clients only);
- code_challenge and nonce were stored unchecked (DOT's columns hold 128 and 255
  characters: on PostgreSQL a longer one, or a NUL, was a 500);
- an inactive user kept getting tokens (a code issued before, a refresh token) and userinfo;
- a code exchanged twice at once could be a 500 instead of invalid_grant;
- a refresh kept scopes the client may no longer ask for;
- DOT's redirect-URI check was skipped when client-credentials came first in grant_types.
"""

import base64

import pytest
from django.core.exceptions import ValidationError
from joserfc import jwt
from joserfc.jwk import KeySet
from oauth2_provider.models import get_grant_model
from oauth2_provider.oauth2_validators import OAuth2Validator

from idp import keys
from idp.models import SigningKey
from idp.oidc.models import Client
from tests import test_oidc_flows as flows
from tests.test_oidc_flows import (
    CALLBACK,
    CODE,
    MACHINE,
    SECRET,
    Pkce,
    authorize_query,
    basic,
    exchange,
    get_code,
    make_client,
    redirected,
    verified,
)
from users.models import User

# The flows' fixtures: the issuer at ISSUER_BASE, the client rp, alice signed in.
issuer, rp, alice = flows.issuer, flows.rp, flows.alice


# --- prompt=none ---


@pytest.mark.parametrize(
    ("signed_in", "skip_consent", "answer"),
    [
        (True, True, "code"),
        (True, False, "consent_required"),
        (False, True, "login_required"),
        (False, False, "login_required"),
    ],
)
def test_prompt_none_answers_without_a_page(client, issuer, signed_in, skip_consent, answer):
    make_client(skip_authorization=skip_consent)
    if signed_in:
        client.force_login(User.objects.get(username="alice"))
    response = client.get("/oidc/authorize/", authorize_query(Pkce(), prompt="none"))
    got = redirected(response)
    assert got["state"] == "st4te"
    assert (got.get("error") or "code") == answer and (answer != "code") != ("code" in got)


def test_prompt_none_with_another_prompt_is_refused(client, rp, alice):
    got = redirected(client.get("/oidc/authorize/", authorize_query(Pkce(), prompt="none login")))
    assert got["error"] == "invalid_request"


# --- public clients and client credentials ---


def test_a_public_client_cannot_be_given_client_credentials(issuer):
    with pytest.raises(ValidationError) as refused:
        make_client("pub", client_type=Client.CLIENT_PUBLIC, grant_types=[CODE, MACHINE])
    assert "confidential" in str(refused.value.message_dict["grant_types"])


def test_the_token_endpoint_refuses_client_credentials_to_a_public_client(client, rp):
    # made confidential, then turned public around the model's check: its old secret stays
    Client.objects.filter(client_id="rp").update(client_type=Client.CLIENT_PUBLIC)
    cases = [
        ({"HTTP_AUTHORIZATION": basic()}, 400, "unauthorized_client"),
        ({}, 401, "invalid_client"),
    ]
    for auth, status, error in cases:
        response = client.post(
            "/oidc/token/", {"grant_type": "client_credentials", "client_id": "rp"}, **auth
        )
        assert response.status_code == status, response.content
        assert response.json()["error"] == error
        assert "is public" in response.json()["error_description"]


@pytest.mark.parametrize(
    ("client_type", "status"),
    [(Client.CLIENT_PUBLIC, 200), (Client.CLIENT_CONFIDENTIAL, 401)],
)
def test_a_code_for_the_client_id_alone_only_a_public_client(
    client, issuer, alice, client_type, status
):
    # A public client proves itself with PKCE alone; a confidential one needs its secret too.
    make_client(client_type=client_type, grant_types=[CODE])
    pkce = Pkce()
    response = client.post(
        "/oidc/token/",
        {
            "grant_type": "authorization_code",
            "code": get_code(client, pkce),
            "redirect_uri": CALLBACK,
            "code_verifier": pkce.verifier,
            "client_id": "rp",
        },
    )
    assert response.status_code == status, response.content


# --- what a grant would store ---

BAD_PARAMETERS = {
    "challenge of 129 characters": ({"code_challenge": "a" * 129}, "code_challenge"),
    "challenge of 5000 characters": ({"code_challenge": "a" * 5000}, "code_challenge"),
    "empty challenge": ({"code_challenge": ""}, "code_challenge"),
    "NUL in the challenge": ({"code_challenge": "a" * 42 + "\x00"}, "code_challenge"),
    "non-ASCII challenge": ({"code_challenge": "\u00e9" * 43}, "code_challenge"),
    "a plain-style challenge": ({"code_challenge": "v" * 64}, "code_challenge"),
    "nonce of 256 characters": ({"nonce": "n" * 256}, "nonce"),
    "nonce of 100000 characters": ({"nonce": "n" * 100_000}, "nonce"),
    "NUL in the nonce": ({"nonce": "n\x00"}, "nonce"),
    "newline in the nonce": ({"nonce": "n\nset-cookie"}, "nonce"),
}


@pytest.mark.parametrize(("overrides", "names"), BAD_PARAMETERS.values(), ids=BAD_PARAMETERS)
def test_a_challenge_or_nonce_no_grant_can_hold_is_refused(client, rp, alice, overrides, names):
    got = redirected(client.get("/oidc/authorize/", authorize_query(Pkce(), **overrides)))
    assert got["error"] == "invalid_request" and names in got["error_description"], got
    assert not get_grant_model().objects.exists()


def test_the_consent_form_is_checked_as_the_request_was(client, issuer, alice):
    make_client(skip_authorization=False)
    pkce = Pkce()
    assert client.get("/oidc/authorize/", authorize_query(pkce)).status_code == 200
    form = {
        "client_id": "rp",
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "scope": "openid",
        "state": "st4te",
        "code_challenge": "x" * 5000,
        "code_challenge_method": "S256",
        "nonce": "n",
        "allow": "on",
    }
    got = redirected(client.post("/oidc/authorize/", form))
    assert got["error"] == "invalid_request" and "code_challenge" in got["error_description"]
    got = redirected(client.post("/oidc/authorize/", {**form, "code_challenge": pkce.challenge}))
    assert "code" in got and get_grant_model().objects.count() == 1
    assert len(get_grant_model().objects.get().code_challenge) == 43


def test_a_nonce_of_255_characters_is_allowed(client, rp, alice):
    got = redirected(client.get("/oidc/authorize/", authorize_query(Pkce(), nonce="n" * 255)))
    assert "code" in got and "error" not in got


# --- inactive users ---


def _deactivate(username="alice"):
    User.objects.filter(username=username).update(is_active=False)
    user = User.objects.get(username=username)
    user.save()  # through the model, so the directory cache hears of it


def test_an_inactive_user_gets_no_tokens_for_a_code_issued_before(client, rp, alice):
    pkce = Pkce()
    code = get_code(client, pkce)
    _deactivate()
    response = exchange(client, code, pkce.verifier)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert "inactive" in response.json()["error_description"]


def test_an_inactive_user_gets_no_refresh_and_no_userinfo(client, rp, alice):
    pkce = Pkce()
    first = exchange(client, get_code(client, pkce), pkce.verifier).json()
    bearer = {"HTTP_AUTHORIZATION": "Bearer " + first["access_token"]}
    assert client.get("/oidc/userinfo/", **bearer).status_code == 200
    _deactivate()
    refreshed = client.post(
        "/oidc/token/",
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        HTTP_AUTHORIZATION=basic(),
    )
    assert refreshed.status_code == 400 and "inactive" in refreshed.json()["error_description"]
    assert client.get("/oidc/userinfo/", **bearer).status_code == 401


# --- one-time codes under concurrency, refresh scopes ---


def test_a_code_exchanged_by_another_request_meanwhile_is_invalid_grant(
    client, rp, alice, monkeypatch
):
    checked = OAuth2Validator.validate_code

    def and_then_the_other_request_wins(self, *args, **kwargs):
        valid = checked(self, *args, **kwargs)
        get_grant_model().objects.all().delete()
        return valid

    monkeypatch.setattr(OAuth2Validator, "validate_code", and_then_the_other_request_wins)
    pkce = Pkce()
    response = exchange(client, get_code(client, pkce), pkce.verifier)
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid_grant"
    assert "good once" in response.json()["error_description"]


def test_a_refresh_drops_the_scopes_the_client_may_no_longer_ask_for(client, rp, alice):
    pkce = Pkce()
    first = exchange(client, get_code(client, pkce), pkce.verifier).json()
    rp.allowed_scopes = ["openid", "profile"]
    rp.save()
    refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    body = client.post("/oidc/token/", refresh, HTTP_AUTHORIZATION=basic()).json()
    assert body["scope"] == "openid profile"
    claims = verified(client, body["id_token"])
    assert "email" not in claims and "groups" not in claims and claims["name"]
    escalate = {**refresh, "refresh_token": body["refresh_token"], "scope": "openid email"}
    refused = client.post("/oidc/token/", escalate, HTTP_AUTHORIZATION=basic()).json()
    assert refused["error"] == "invalid_scope" and "scopes the user allowed" in str(refused)


# --- the client model ---


def test_a_code_client_needs_a_redirect_uri_whatever_the_grants_order(issuer):
    with pytest.raises(ValidationError) as refused:
        make_client("late", grant_types=[MACHINE, CODE], redirect_uris="")
    assert "redirect_uris" in refused.value.message_dict


def test_a_nul_is_quoted_once_in_an_error_description(client, rp):
    auth = "Basic " + base64.b64encode(f"rp\x00:{SECRET}".encode()).decode()
    response = client.post(
        "/oidc/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=auth
    )
    assert "'rp\\x00'" in response.json()["error_description"]


# --- the demo client, as `make run` loads it ---


def test_the_demo_client_runs_the_code_flow_and_its_id_token_verifies(client, demo, settings):
    settings.IDP_BASE_URL = "http://127.0.0.1:8000"
    keys.ensure_active_key(SigningKey.Use.JWT)
    keys.forget_cached_keys()
    client.force_login(User.objects.get(username="alice"))
    pkce = Pkce()
    callback = "http://127.0.0.1:8080/callback"
    query = authorize_query(pkce, client_id="demo-app", redirect_uri=callback)
    consent = client.get("/oidc/authorize/", query)
    assert consent.status_code == 200 and b"Demo app" in consent.content
    form = {**query, "allow": "on"}
    answer = client.post("/oidc/authorize/", form)
    assert answer.status_code == 302 and answer["Location"].startswith(callback + "?code=")
    code = answer["Location"].split("code=")[1].split("&")[0]
    auth = "Basic " + base64.b64encode(b"demo-app:demo-app-secret").decode()
    token = client.post(
        "/oidc/token/",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": callback,
            "code_verifier": pkce.verifier,
        },
        HTTP_AUTHORIZATION=auth,
    )
    assert token.status_code == 200, token.content
    id_token = token.json()["id_token"]
    published = client.get("/oidc/jwks").json()
    # joserfc, not the signer (DOT signs ID tokens with jwcrypto); the kid picks the key.
    decoded = jwt.decode(id_token, KeySet.import_key_set(published), algorithms=["RS256"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": "http://127.0.0.1:8000/oidc"},
        aud={"essential": True, "value": "demo-app"},
        nonce={"essential": True, "value": "n0nce"},
        exp={"essential": True},
    ).validate(decoded.claims)
    assert decoded.header["kid"] in {key["kid"] for key in published["keys"]}
