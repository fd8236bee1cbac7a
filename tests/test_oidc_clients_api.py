"""/api/v1/oidc-clients: OIDC clients by client ID, with the admin's permissions and scopes;
a confidential client's secret is answered once and stored hashed (DOT's field)."""

import pytest
from django.contrib.auth.hashers import check_password
from django.contrib.auth.models import Permission
from joserfc import jwt
from joserfc.jwk import KeySet
from rest_framework.test import APIClient

from idp import keys
from idp.api.models import ApiToken
from idp.models import ClaimRule, SigningKey
from idp.oidc import jwks
from idp.oidc.models import Client
from users.models import User

CLIENT_PERMISSIONS = [f"oidc.{action}_client" for action in ("view", "add", "change", "delete")]
URL = "/api/v1/oidc-clients"
APP = {
    "client_id": "my-app",
    "name": "My app",
    "client_type": "confidential",
    "redirect_uris": ["http://127.0.0.1:8080/callback", "https://app.example/cb?x=1"],
    "grant_types": ["authorization-code", "client-credentials"],
    "allowed_scopes": ["openid", "email", "groups"],
}


def client_for(user: User, scopes: list[str] | None = None) -> APIClient:
    _, text = ApiToken.issue(user, name="test", scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {text}")
    return client


def staff(username: str, *permissions: str) -> User:
    user = User.objects.create_user(username, is_staff=True)
    for name in permissions:
        app, codename = name.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app, codename=codename)
        )
    return User.objects.get(pk=user.pk)


@pytest.fixture
def api(db) -> APIClient:
    return client_for(staff("operator", *CLIENT_PERMISSIONS))


def refusal(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert {"title", "message", "hint", "status"} <= set(body) and body["status"] == status
    return body


def stored(client_id: str) -> Client:
    return Client.objects.get(client_id=client_id)


def test_a_confidential_client_round_trip(api):
    created = api.post(URL, APP, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    secret = body.pop("client_secret")
    assert {k: body[k] for k in APP} == APP
    row = stored("my-app")
    # DOT's field stored a hash; the clear secret was answered once and is never read back.
    assert row.client_secret != secret and check_password(secret, row.client_secret)
    assert row.redirect_uris == "http://127.0.0.1:8080/callback https://app.example/cb?x=1"
    assert row.algorithm == "RS256" and row.authorization_grant_type == "authorization-code"
    read = api.get(f"{URL}/my-app")
    assert read.json() == body and secret not in read.content.decode()
    assert row.client_secret not in read.content.decode()
    assert [c["client_id"] for c in api.get(URL).json()["results"]] == ["my-app"]

    patched = api.patch(f"{URL}/my-app", {"skip_authorization": True}, format="json")
    assert patched.status_code == 200, patched.content
    assert (
        patched.json()["skip_authorization"] and patched.json()["grant_types"] == APP["grant_types"]
    )
    replaced = api.put(
        f"{URL}/my-app",
        {"client_type": "confidential", "redirect_uris": ["http://127.0.0.1:9/cb"]},
        format="json",
    )
    assert replaced.status_code == 200, replaced.content
    # PUT replaces: what it omits takes its default; the secret stays.
    assert replaced.json()["grant_types"] == ["authorization-code"]
    assert replaced.json()["allowed_scopes"] == ["openid", "profile", "email"]
    assert (replaced.json()["name"], replaced.json()["skip_authorization"]) == ("", False)
    assert check_password(secret, stored("my-app").client_secret)

    assert api.delete(f"{URL}/my-app").status_code == 204
    assert not Client.objects.filter(client_id="my-app").exists()
    refusal(api.get(f"{URL}/my-app"), 404)


def test_a_public_client_gets_no_secret_and_an_id_is_generated(api):
    created = api.post(
        URL,
        {"client_type": "public", "redirect_uris": ["http://localhost:3000/cb"]},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert "client_secret" not in created.json()
    client_id = created.json()["client_id"]
    assert len(client_id) == 40 and stored(client_id).client_type == "public"
    body = refusal(api.post(f"{URL}/{client_id}/secret"), 409)
    assert "public client" in body["title"] and "PATCH client_type" in body["hint"]


def test_a_new_secret_replaces_the_old_one(api):
    first = api.post(URL, APP, format="json").json()["client_secret"]
    rotated = api.post(f"{URL}/my-app/secret")
    assert rotated.status_code == 200, rotated.content
    second = rotated.json()["client_secret"]
    assert second != first and rotated.json()["client_id"] == "my-app"
    row = stored("my-app")
    assert check_password(second, row.client_secret)
    assert not check_password(first, row.client_secret)
    refusal(api.post(f"{URL}/nobody/secret"), 404)


BAD = {
    "unknown grant": ({"grant_types": ["implicit"]}, "grant_types", "Unknown grant implicit"),
    "no grant": ({"grant_types": []}, "grant_types", "cannot be blank"),
    "grants not a list": ({"grant_types": "client-credentials"}, "grant_types", "list"),
    "unknown scope": ({"allowed_scopes": ["admin"]}, "allowed_scopes", "Unknown scope admin"),
    "no scope": ({"allowed_scopes": []}, "allowed_scopes", "cannot be blank"),
    "a blank in a redirect URI": (
        {"redirect_uris": ["http://a.example/cb http://b.example/cb"]},
        "redirect_uris",
        "blank",
    ),
    "a redirect URI of another scheme": (
        {"redirect_uris": ["ftp://a.example/cb"]},
        "redirect_uris",
        "scheme",
    ),
    "the code flow without a redirect URI": (
        {"redirect_uris": []},
        "redirect_uris",
        "redirect_uris cannot be empty",
    ),
    "an unknown client type": ({"client_type": "secret"}, "client_type", "not a valid choice"),
    "a slash in the client ID": ({"client_id": "a/b"}, "client_id", "'/'"),
    "a blank in the client ID": ({"client_id": "a b"}, "client_id", "blanks"),
    "a NUL in the client ID": ({"client_id": "a\x00b"}, "client_id", ""),
}


@pytest.mark.parametrize(("change", "field", "words"), BAD.values(), ids=BAD)
def test_a_bad_client_is_refused_in_the_admins_words(api, change, field, words):
    body = refusal(api.post(URL, {**APP, **change}, format="json"), 400)
    assert words in str(body["fields"][field]), body
    assert not Client.objects.exists()


def test_a_client_id_is_unique_and_fixed(api):
    assert api.post(URL, APP, format="json").status_code == 201
    body = refusal(api.post(URL, APP, format="json"), 400)
    assert "already exists" in str(body["fields"]["client_id"])
    body = refusal(api.patch(f"{URL}/my-app", {"client_id": "other"}, format="json"), 400)
    assert "cannot change" in str(body["fields"]["client_id"])
    assert api.patch(f"{URL}/my-app", {"client_id": "my-app"}, format="json").status_code == 200


PERMISSION_CASES = {
    "read without view": ([], None, "get", "", "oidc.view_client"),
    "create without add": (["oidc.view_client"], None, "post", "", "oidc.add_client"),
    "secret without change": (
        ["oidc.view_client", "oidc.add_client"],
        None,
        "post",
        "/my-app/secret",
        "oidc.change_client",
    ),
    "delete without delete": (CLIENT_PERMISSIONS[:3], None, "delete", "/my-app", "delete_client"),
    "a read-only token writes": (CLIENT_PERMISSIONS, ["read"], "post", "", "`write` scope"),
    "a read-only token rotates": (
        CLIENT_PERMISSIONS,
        ["read"],
        "post",
        "/my-app/secret",
        "`write` scope",
    ),
}


@pytest.mark.parametrize(
    ("permissions", "scopes", "method", "path", "words"),
    PERMISSION_CASES.values(),
    ids=PERMISSION_CASES,
)
def test_the_admins_permissions_and_the_tokens_scope(api, permissions, scopes, method, path, words):
    assert api.post(URL, APP, format="json").status_code == 201
    before = stored("my-app").client_secret
    caller = client_for(staff("limited", *permissions), scopes)
    body = refusal(getattr(caller, method)(URL + path, APP, format="json"), 403)
    assert words in body["message"]
    assert stored("my-app").client_secret == before


def test_no_token_no_answer(db):
    refusal(APIClient().get(URL), 401)


# --- the ID-token preview (idp.oidc.preview) ---

PREVIEWER = [*CLIENT_PERMISSIONS, "idp.preview_signed_response"]


@pytest.fixture
def previewer(db):
    keys.ensure_active_key(SigningKey.Use.JWT)
    User.objects.create_user("dana", email="dana@example.com", first_name="Dana")
    return client_for(staff("previewer", *PREVIEWER))


def test_the_preview_is_a_token_our_jwks_verifies(previewer):
    assert previewer.post(URL, APP, format="json").status_code == 201
    rule = ClaimRule.objects.create(
        emits=ClaimRule.Emits.JWT,
        order=10,
        source="literal",
        value="platform",
        attribute_name="team",
    )
    answer = previewer.post(f"{URL}/my-app/preview", {"username": "dana"}, format="json")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    published = KeySet.import_key_set(jwks.public_set())
    token = jwt.decode(body["token"], published)  # signed by a key /oidc/jwks publishes
    assert token.claims == body["claims"] and token.header["kid"] == body["header"]["kid"]
    assert body["claims"]["aud"] == "my-app" and body["claims"]["iss"] == jwks.issuer()
    assert body["claims"]["email"] == "dana@example.com"
    assert body["scopes"] == APP["allowed_scopes"] and body["claims"]["team"] == "platform"
    assert body["trace"] == [
        {"rule": rule.id, "claim": "team", "applied": True, "values": ["platform"], "note": ""}
    ]


PREVIEW_REFUSALS = {
    "an unknown user": (PREVIEWER, None, "/my-app/preview", {"username": "nobody"}, 400),
    "no username": (PREVIEWER, None, "/my-app/preview", {}, 400),
    "an unknown client": (PREVIEWER, None, "/other/preview", {"username": "dana"}, 404),
    "without the preview permission": (
        CLIENT_PERMISSIONS,
        None,
        "/my-app/preview",
        {"username": "dana"},
        403,
    ),
    "without the sign-on scope": (
        PREVIEWER,
        ["read", "write"],
        "/my-app/preview",
        {"username": "dana"},
        403,
    ),
}


@pytest.mark.parametrize(
    ("permissions", "scopes", "path", "body", "status"),
    PREVIEW_REFUSALS.values(),
    ids=PREVIEW_REFUSALS,
)
def test_the_preview_refuses(previewer, permissions, scopes, path, body, status):
    assert previewer.post(URL, APP, format="json").status_code == 201
    caller = client_for(staff("limited", *permissions), scopes)
    refusal(caller.post(URL + path, body, format="json"), status)
