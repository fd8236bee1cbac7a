"""The OIDC issuer's protocol in process (Django's test client): the code flow with PKCE,
client credentials, userinfo, revocation, the consent page, and the hostile table: every
bad input is a clear 4xx (RFC 6749 JSON at the token endpoint), never a 500.

End to end with Authlib and boto3 over HTTP: tests/test_oidc_flows_e2e.py.
"""

import base64
import datetime
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from django.utils import timezone
from joserfc import jwt
from joserfc.jwk import KeySet
from oauth2_provider.models import get_access_token_model, get_grant_model
from oauth2_provider.views import ConnectDiscoveryInfoView

from idp import keys
from idp.models import AuditEvent, ClaimRule, SigningKey
from idp.oidc.models import Client
from users.models import User

JWT = SigningKey.Use.JWT
ISSUER_BASE = "https://idp.example.test"
ISSUER = ISSUER_BASE + "/oidc"
CALLBACK = "https://rp.example/callback"
SECRET = "rp-secret-" + "x" * 20
CODE = Client.GRANT_AUTHORIZATION_CODE
MACHINE = Client.GRANT_CLIENT_CREDENTIALS


@pytest.fixture
def issuer(settings, demo):
    settings.IDP_BASE_URL = ISSUER_BASE
    keys.ensure_active_key(JWT)
    keys.forget_cached_keys()


def make_client(client_id="rp", **fields) -> Client:
    values = {
        "name": "Relying party",
        "client_type": Client.CLIENT_CONFIDENTIAL,
        "client_secret": SECRET,
        "redirect_uris": CALLBACK,
        "grant_types": [CODE, MACHINE],
        "allowed_scopes": ["openid", "profile", "email", "groups"],
        "skip_authorization": True,
        **fields,
    }
    client = Client(client_id=client_id, **values)
    client.full_clean()
    client.save()
    return client


@pytest.fixture
def rp(issuer):
    return make_client()


@pytest.fixture
def alice(client, issuer):
    user = User.objects.get(username="alice")
    client.force_login(user)
    return user


def basic(client_id="rp", secret=SECRET) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


class Pkce:
    def __init__(self):
        self.verifier = secrets.token_urlsafe(48)
        self.challenge = create_s256_code_challenge(self.verifier)


def authorize_query(pkce: Pkce, **overrides) -> dict:
    query = {
        "response_type": "code",
        "client_id": "rp",
        "redirect_uri": CALLBACK,
        "scope": "openid profile email groups",
        "state": "st4te",
        "nonce": "n0nce",
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
    }
    query.update(overrides)
    return {name: value for name, value in query.items() if value is not None}


def redirected(response) -> dict:
    assert response.status_code == 302, response.content[:500]
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == CALLBACK
    return {name: values[0] for name, values in parse_qs(location.query).items()}


def get_code(client, pkce: Pkce, **overrides) -> str:
    answer = redirected(client.get("/oidc/authorize/", authorize_query(pkce, **overrides)))
    assert answer["state"] == "st4te"
    return answer["code"]


def exchange(client, code: str, verifier: str, auth: str | None = None, **fields):
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "code_verifier": verifier,
        **fields,
    }
    data = {name: value for name, value in data.items() if value is not None}
    return client.post("/oidc/token/", data, HTTP_AUTHORIZATION=auth or basic())


def verified(client, token: str) -> dict:
    key_set = KeySet.import_key_set(client.get("/oidc/jwks").json())
    return jwt.decode(token, key_set, algorithms=["RS256"]).claims


def active_kid() -> str:
    from idp.oidc import jwks

    return jwks.signing_jwk()[1]


# --- the code flow ---


def test_the_code_flow_with_pkce_issues_an_id_token_of_ours(client, rp, alice):
    pkce = Pkce()
    response = exchange(client, get_code(client, pkce), pkce.verifier)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token_type"] == "Bearer" and body["refresh_token"]
    header = jwt.decode(body["id_token"], KeySet.import_key_set(client.get("/oidc/jwks").json()))
    assert header.header["kid"] == active_kid()
    claims = verified(client, body["id_token"])
    assert claims["iss"] == ISSUER and claims["aud"] == "rp" and claims["nonce"] == "n0nce"
    assert claims["sub"] == "alice" and claims["preferred_username"] == "alice"
    assert claims["name"] == "Alice Anders" and claims["given_name"] == "Alice"
    assert claims["email"] == "alice@example.com" and claims["email_verified"] is True
    assert "Engineering" in claims["groups"] and "AWS-111122223333-Admin" in claims["groups"]
    assert claims["exp"] - claims["iat"] == 3600
    access = verified(client, body["access_token"])
    assert access["sub"] == "alice" and access["aud"] == "rp" and access["client_id"] == "rp"
    assert access["iss"] == ISSUER and access["scope"] == "openid profile email groups"
    assert {"iat", "nbf", "exp", "jti"} <= set(access)
    event = AuditEvent.objects.filter(flow="oidc", outcome="sent").get()
    assert event.username == "alice" and event.sp_entity_id == "rp"
    assert event.response_id == access["jti"] and "id_token=" in event.detail


def test_scopes_choose_the_standard_claims(client, rp, alice):
    pkce = Pkce()
    body = exchange(client, get_code(client, pkce, scope="openid"), pkce.verifier).json()
    claims = verified(client, body["id_token"])
    assert claims["sub"] == "alice"
    assert not {"name", "email", "groups", "preferred_username"} & set(claims)


def rule(**fields) -> ClaimRule:
    made = ClaimRule(emits="jwt", **fields)
    made.full_clean()
    made.save()
    return made


def test_claim_rules_add_claims_on_top_of_the_standard_ones(client, rp, alice):
    rule(
        oidc_client=rp,
        source="attribute",
        source_attribute="attr.department",
        attribute_name="department",
        claim_type="list",
    )
    rule(source="literal", value="https://rp.example", attribute_name="tenant")
    pkce = Pkce()
    body = exchange(client, get_code(client, pkce, scope="openid"), pkce.verifier).json()
    claims = verified(client, body["id_token"])
    assert claims["department"] == ["Engineering"] and claims["tenant"] == "https://rp.example"
    assert claims["sub"] == "alice" and claims["aud"] == "rp" and claims["nonce"] == "n0nce"
    info = client.get("/oidc/userinfo/", HTTP_AUTHORIZATION="Bearer " + body["access_token"])
    assert info.json()["department"] == ["Engineering"]


def test_claim_rules_for_another_client_do_not_apply(client, rp, alice):
    rule(oidc_client=make_client("other"), source="literal", value="x", attribute_name="only")
    pkce = Pkce()
    body = exchange(client, get_code(client, pkce), pkce.verifier).json()
    assert "only" not in verified(client, body["id_token"])


def test_a_broken_claim_rule_is_a_json_refusal_not_a_500(client, rp, alice):
    # saved around the model's checks, as a bulk change could
    ClaimRule.objects.create(emits="jwt", source="literal", value="x", attribute_name="sub")
    pkce = Pkce()
    response = exchange(client, get_code(client, pkce), pkce.verifier)
    assert response.status_code == 409, response.content
    assert response.json()["error"] == "server_error"
    assert "sub" in response.json()["error_description"]


def test_userinfo_answers_for_the_code_flows_token(client, rp, alice):
    pkce = Pkce()
    body = exchange(client, get_code(client, pkce, scope="openid email"), pkce.verifier).json()
    client.logout()
    info = client.get("/oidc/userinfo/", HTTP_AUTHORIZATION="Bearer " + body["access_token"])
    assert info.status_code == 200, info.content
    assert info.json()["sub"] == "alice" and info.json()["email"] == "alice@example.com"
    assert "groups" not in info.json()
    assert client.get("/oidc/userinfo/", HTTP_AUTHORIZATION="Bearer nope").status_code == 401


def test_a_refresh_token_gives_a_new_access_token_for_the_same_user(client, rp, alice):
    pkce = Pkce()
    first = exchange(client, get_code(client, pkce), pkce.verifier).json()
    refreshed = client.post(
        "/oidc/token/",
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        HTTP_AUTHORIZATION=basic(),
    )
    assert refreshed.status_code == 200, refreshed.content
    body = refreshed.json()
    assert body["refresh_token"] != first["refresh_token"]  # rotated
    assert "." not in body["refresh_token"]  # refresh tokens stay opaque, not JWTs
    assert verified(client, body["access_token"])["sub"] == "alice"
    again = client.post(
        "/oidc/token/",
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        HTTP_AUTHORIZATION=basic(),
    )
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_a_token_is_stored_as_its_digest_only(client, rp, alice):
    pkce = Pkce()
    body = exchange(client, get_code(client, pkce), pkce.verifier).json()
    stored = get_access_token_model().objects.get()
    assert stored.token == "" and len(stored.token_checksum) == 64
    assert len(body["access_token"]) > 255  # a JWT: the TextField and the digest cope


def test_revocation_ends_the_access_token(client, rp, alice):
    pkce = Pkce()
    token = exchange(client, get_code(client, pkce), pkce.verifier).json()["access_token"]
    bearer = {"HTTP_AUTHORIZATION": "Bearer " + token}
    assert client.get("/oidc/userinfo/", **bearer).status_code == 200
    revoked = client.post("/oidc/revoke/", {"token": token}, HTTP_AUTHORIZATION=basic())
    assert revoked.status_code == 200
    assert client.get("/oidc/userinfo/", **bearer).status_code == 401


def test_a_jwt_key_rollover_changes_the_kid_of_new_id_tokens(client, rp, alice):
    pkce = Pkce()
    old = exchange(client, get_code(client, pkce), pkce.verifier).json()["id_token"]
    old_kid = active_kid()
    keys.stage(use=JWT)
    keys.activate(use=JWT, now=timezone.now() + datetime.timedelta(days=1))
    keys.forget_cached_keys()
    pkce = Pkce()
    new = exchange(client, get_code(client, pkce), pkce.verifier).json()["id_token"]
    key_set = KeySet.import_key_set(client.get("/oidc/jwks").json())
    new_kid = jwt.decode(new, key_set).header["kid"]
    assert new_kid == active_kid() != old_kid
    assert jwt.decode(old, key_set).header["kid"] == old_kid  # both published till retire


# --- client credentials ---


def test_client_credentials_issue_a_jwt_about_the_client(client, rp):
    response = client.post(
        "/oidc/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic()
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert "refresh_token" not in body and "id_token" not in body
    claims = verified(client, body["access_token"])
    assert claims["sub"] == claims["aud"] == claims["client_id"] == "rp"
    assert claims["iss"] == ISSUER and claims["scope"] == "openid"
    event = AuditEvent.objects.get(flow="oidc")
    assert event.outcome == "sent" and event.username == "" and event.sp_entity_id == "rp"
    # a client's token has no user, so no userinfo: a 403 that says so, not a 500
    info = client.get("/oidc/userinfo/", HTTP_AUTHORIZATION="Bearer " + body["access_token"])
    assert info.status_code == 403 and b"client credentials" in info.content


def test_client_credentials_in_the_form_body_and_with_a_scope(client, rp):
    response = client.post(
        "/oidc/token/",
        {
            "grant_type": "client_credentials",
            "client_id": "rp",
            "client_secret": SECRET,
            "scope": "email",
        },
    )
    assert response.status_code == 200, response.content
    assert verified(client, response.json()["access_token"])["scope"] == "email"


def test_no_active_jwt_key_is_a_503_that_says_so(client, rp):
    # A row from before keys lived in the database, whose files are on no disk here.
    SigningKey.objects.filter(fingerprint=keys.active_key(JWT).fingerprint).update(
        private_key_encrypted="", certificate_pem=""
    )
    keys.forget_cached_keys()
    response = client.post(
        "/oidc/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic()
    )
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert response.json()["error_description"]


# --- the authorize page: login first, consent when asked, errors on our page ---


def test_an_anonymous_request_goes_to_the_login_page_and_back(client, rp, issuer):
    pkce = Pkce()
    response = client.get("/oidc/authorize/", authorize_query(pkce))
    assert response.status_code == 302
    login = urlsplit(response["Location"])
    assert login.path == "/accounts/login/"
    next_url = parse_qs(login.query)["next"][0]
    assert next_url.startswith("/oidc/authorize/?")
    signed_in = client.post(
        "/accounts/login/", {"username": "alice", "password": "alice", "next": next_url}
    )
    assert signed_in.status_code == 302 and signed_in["Location"] == next_url
    code = redirected(client.get(next_url))["code"]
    assert exchange(client, code, pkce.verifier).status_code == 200


def test_the_consent_page_under_the_csp(client, issuer, alice):
    make_client(skip_authorization=False, name="Grafana")
    pkce = Pkce()
    page = client.get("/oidc/authorize/", authorize_query(pkce, scope="openid email"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Allow Grafana?" in html and "the user&#x27;s e-mail address" in html
    assert "<script" not in html and "http://" not in html.replace(CALLBACK, "")
    assert "script-src 'self'" in page["Content-Security-Policy"]
    form = {
        name: value
        for name, value in (
            ("redirect_uri", CALLBACK),
            ("scope", "openid email"),
            ("nonce", "n0nce"),
            ("client_id", "rp"),
            ("state", "st4te"),
            ("response_type", "code"),
            ("code_challenge", pkce.challenge),
            ("code_challenge_method", "S256"),
        )
    }
    url = "/oidc/authorize/?" + urlencode(authorize_query(pkce, scope="openid email"))
    denied = redirected(client.post(url, form))
    assert denied["error"] == "access_denied" and denied["state"] == "st4te"
    code = redirected(client.post(url, {**form, "allow": "on"}))["code"]
    assert exchange(client, code, pkce.verifier).status_code == 200


def test_a_forged_consent_form_is_a_400_not_a_500(client, rp, alice):
    url = "/oidc/authorize/"
    fields = {"redirect_uri": CALLBACK, "scope": "openid", "response_type": "code"}
    unknown = client.post(url, {**fields, "client_id": "nobody", "allow": "on"})
    assert unknown.status_code == 400 and b"No OIDC client" in unknown.content
    incomplete = client.post(url, {"allow": "on"})
    assert incomplete.status_code == 400 and b"client_id" in incomplete.content


# --- discovery agrees with DOT's own view ---


def test_discovery_names_the_endpoints_dot_would(client, rp, settings, rf):
    ours = client.get("/oidc/.well-known/openid-configuration").json()
    assert ours["authorization_endpoint"] == ISSUER + "/authorize/"
    assert ours["token_endpoint"] == ISSUER + "/token/"
    assert ours["userinfo_endpoint"] == ISSUER + "/userinfo/"
    assert ours["revocation_endpoint"] == ISSUER + "/revoke/"
    assert ours["response_types_supported"] == ["code"]
    assert ours["code_challenge_methods_supported"] == ["S256"]
    assert ours["scopes_supported"] == ["openid", "profile", "email", "groups"]
    assert set(ours["grant_types_supported"]) >= {"authorization_code", "client_credentials"}
    assert ours["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
    ]
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": ISSUER}
    request = rf.get("/oidc/.well-known/openid-configuration")
    dots = ConnectDiscoveryInfoView.as_view()(request)
    import json

    theirs = json.loads(dots.content)
    for name in ("issuer", "authorization_endpoint", "token_endpoint", "userinfo_endpoint"):
        assert ours[name] == theirs[name], name
    assert ours["jwks_uri"] == theirs["jwks_uri"]
    assert set(ours["code_challenge_methods_supported"]) == set(
        theirs["code_challenge_methods_supported"]
    )
    assert ours["response_types_supported"] == theirs["response_types_supported"]


# --- the hostile table ---

ERR = "error"


def authorize_cases():
    """(name, query overrides, status, where: 'page' (our error page) or 'redirect'
    (RFC 6749 4.1.2.1: to the registered redirect URI), what the answer must say)."""
    return {
        "unknown client_id": ({"client_id": "nobody"}, 400, "page", "No OIDC client"),
        "missing client_id": ({"client_id": None}, 400, "page", "client_id"),
        "unregistered redirect_uri": (
            {"redirect_uri": "https://evil.example/cb"},
            400,
            "page",
            "is not a redirect URI",
        ),
        "relative redirect_uri": ({"redirect_uri": "/cb"}, 400, "page", "redirect"),
        "NUL in client_id": ({"client_id": "rp\x00"}, 400, "page", "No OIDC client"),
        "huge client_id": ({"client_id": "x" * 100_000}, 400, "page", "No OIDC client"),
        "unicode client_id": ({"client_id": "rp\u202e\U0001f600"}, 400, "page", "No OIDC"),
        "missing PKCE": ({"code_challenge": None}, 302, "redirect", "PKCE is required"),
        "plain PKCE": ({"code_challenge_method": "plain"}, 302, "redirect", "only S256"),
        "PKCE without a method (plain)": (
            {"code_challenge_method": None},
            302,
            "redirect",
            "only S256",
        ),
        "a scope the client may not ask for": (
            {"scope": "openid groups"},
            302,
            "redirect",
            "may not ask for 'groups'",
        ),
        "an unknown scope": ({"scope": "openid admin"}, 302, "redirect", "'admin'"),
        "implicit flow": ({"response_type": "token"}, 302, "redirect", "response_type=code"),
        "hybrid flow": ({"response_type": "code id_token"}, 302, "redirect", "code"),
        "huge state": ({"state": "s" * 50_000}, 302, "redirect", None),
    }


AUTHORIZE_CASES = authorize_cases()


@pytest.mark.parametrize(
    ("overrides", "status", "where", "says"), AUTHORIZE_CASES.values(), ids=AUTHORIZE_CASES
)
def test_hostile_authorization_requests(client, issuer, alice, overrides, status, where, says):
    make_client(allowed_scopes=["openid", "profile"])
    response = client.get("/oidc/authorize/", authorize_query(Pkce(), **overrides))
    assert response.status_code == status, response.content[:300]
    if where == "page":
        text = response.content.decode()
        assert "How to fix it" in text and says in text
        event = AuditEvent.objects.get(flow="oidc")
        assert event.outcome == "refused" and "\x00" not in event.sp_entity_id
    else:
        location = response["Location"]
        assert location.startswith(CALLBACK + "?")
        answer = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        if says is not None:
            assert ERR in answer and says in answer["error_description"], answer
    assert not get_grant_model().objects.exists()


def test_an_anonymous_bad_request_is_refused_before_the_login_page(client, rp):
    response = client.get("/oidc/authorize/", authorize_query(Pkce(), client_id="nobody"))
    assert response.status_code == 400 and b"No OIDC client" in response.content


def test_a_client_without_the_code_grant_may_not_start_the_flow(client, issuer, alice):
    make_client(grant_types=[MACHINE], redirect_uris=CALLBACK)
    answer = redirected(client.get("/oidc/authorize/", authorize_query(Pkce())))
    assert answer["error"] == "unauthorized_client"
    assert "Add authorization-code" in answer["error_description"]


def token_cases():
    """(name, how to break the exchange, status, error, what error_description says)."""
    return {
        "wrong code_verifier": (
            {"code_verifier": "w" * 50},
            400,
            "invalid_grant",
            "code_verifier does not match",
        ),
        "no code_verifier": ({"code_verifier": None}, 400, "invalid_request", "code_verifier"),
        "unknown code": ({"code": "nope"}, 400, "invalid_grant", "unknown, expired or already"),
        "other redirect_uri": (
            {"redirect_uri": "https://rp.example/other"},
            400,
            "invalid_request",
            "same redirect_uri",
        ),
        "bad client secret": (
            {"auth": basic(secret="wrong")},
            401,
            "invalid_client",
            "secret is not that of 'rp'",
        ),
        "unknown client (Basic)": (
            {"auth": basic(client_id="nobody")},
            401,
            "invalid_client",
            "No OIDC client",
        ),
        "undecodable Basic": ({"auth": "Basic %%%"}, 401, "invalid_client", "not base64"),
        "NUL in the code": ({"code": "a\x00b"}, 400, "invalid_grant", "unknown"),
        "huge code": ({"code": "c" * 200_000}, 400, "invalid_grant", "unknown"),
        "unicode verifier": (
            {"code_verifier": "\u00e9" * 50},
            400,
            "invalid_grant",
            "does not match",
        ),
        "unknown grant_type": (
            {"grant_type": "urn:x"},
            400,
            "unsupported_grant_type",
            "authorization_code",
        ),
        "password grant": (
            {"grant_type": "password", "username": "alice", "password": "alice"},
            400,
            "unsupported_grant_type",
            "client_credentials",
        ),
    }


TOKEN_CASES = token_cases()


@pytest.mark.parametrize(
    ("change", "status", "error", "says"), TOKEN_CASES.values(), ids=TOKEN_CASES
)
def test_hostile_token_requests(client, rp, alice, change, status, error, says):
    pkce = Pkce()
    code = get_code(client, pkce)
    change = dict(change)
    auth = change.pop("auth", None)
    fields = {"code": code, "code_verifier": pkce.verifier, **change}
    response = exchange(client, fields.pop("code"), fields.pop("code_verifier"), auth, **fields)
    assert response.status_code == status, response.content[:300]
    body = response.json()
    assert body["error"] == error and says in body["error_description"], body
    refused = AuditEvent.objects.get(flow="oidc", outcome="refused")
    assert error in refused.detail
    assert not AuditEvent.objects.filter(outcome="sent").exists()


def test_a_code_is_good_once(client, rp, alice):
    pkce = Pkce()
    code = get_code(client, pkce)
    assert exchange(client, code, pkce.verifier).status_code == 200
    again = exchange(client, code, pkce.verifier)
    assert again.status_code == 400
    assert "already used" in again.json()["error_description"]


def test_a_code_is_for_its_client_only(client, rp, alice):
    make_client("other")
    pkce = Pkce()
    code = get_code(client, pkce)
    stolen = exchange(client, code, pkce.verifier, basic(client_id="other"))
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"


def test_a_client_without_client_credentials_is_refused_them(client, issuer):
    make_client(grant_types=[CODE])
    response = client.post(
        "/oidc/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic()
    )
    assert response.status_code == 400 and response.json()["error"] == "unauthorized_client"
    assert "Add client-credentials" in response.json()["error_description"]


def test_client_credentials_with_a_disallowed_scope(client, issuer):
    make_client(allowed_scopes=["openid"])
    response = client.post(
        "/oidc/token/",
        {"grant_type": "client_credentials", "scope": "openid email"},
        HTTP_AUTHORIZATION=basic(),
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_scope"
    assert "'email'" in response.json()["error_description"]


def test_a_token_request_with_no_credentials(client, rp):
    response = client.post("/oidc/token/", {"grant_type": "client_credentials"})
    assert response.status_code == 401
    assert "HTTP Basic" in response.json()["error_description"]


def test_the_token_endpoint_is_post_only(client, rp):
    assert client.get("/oidc/token/").status_code == 405
