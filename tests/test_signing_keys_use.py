"""Signing keys by use (saml, jwt) in the admin's list and the API: each use's signer is named
for what it signs, staging takes a use, and the fingerprint alone decides which key (and so
which rollover) activate and retire act on."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from idp import keys
from idp.api.models import ApiToken
from idp.models import SigningKey
from idp.oidc import jwks
from users.models import User

SAML, JWT = SigningKey.Use.SAML, SigningKey.Use.JWT
KEY_ADMIN = "/admin/idp/signingkey/"
KEYS_API = "/api/v1/signing-keys"


@pytest.fixture
def both(signing_key):
    """An active SAML key (the signer), an active JWT key, a next JWT key."""
    jwt_signer, _ = keys.ensure_active_key(JWT)
    staged = keys.stage(use=JWT, valid_days=30)
    return {"saml": signing_key, "jwt": jwt_signer, "jwt next": staged}


@pytest.fixture
def root(client, db):
    client.force_login(User.objects.create_superuser("root", password="x"))
    return client


@pytest.fixture
def api(db) -> APIClient:
    user = User.objects.create_superuser("api-root", password="x")
    _, text = ApiToken.issue(user, name="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {text}")
    return client


def by_fingerprint(listed: list[dict]) -> dict[str, dict]:
    return {row["fingerprint"]: row for row in listed}


# --- what each key does, as the API and the admin's list say ------------------------------

# (key, use, signs, published, role)
ROLES = [
    ("saml", "saml", True, True, "signs assertions"),
    ("jwt", "jwt", True, True, "signs tokens"),  # not "published": it signs
    ("jwt next", "jwt", False, True, "published in /oidc/jwks"),
]


def test_the_api_lists_use_and_each_uses_signer(api, both):
    listed = by_fingerprint(api.get(KEYS_API).json())
    assert len(listed) == 3
    for name, use, signs, published, role in ROLES:
        row = listed[both[name].fingerprint]
        assert (row["use"], row["signs"], row["published"], row["role"]) == (
            use,
            signs,
            published,
            role,
        ), name


def test_the_admin_list_shows_use_and_role(root, both):
    page = root.get(KEY_ADMIN).content.decode()
    for name, use, _, _, role in ROLES:
        row = page.split(both[name].fingerprint, 1)[1].split("</tr>", 1)[0]
        assert f'<td class="field-use">{SigningKey.Use(use).label}</td>' in row, name
        assert f'<td class="field-role">{role}</td>' in row, (name, row)


@pytest.mark.parametrize(("use", "count"), [("jwt", 2), ("saml", 1)])
def test_the_admin_list_filters_by_use(root, both, use, count):
    page = root.get(KEY_ADMIN, {"use__exact": use}).content.decode()
    shown = [k for k in both.values() if k.fingerprint in page]
    assert len(shown) == count and all(k.use == use for k in shown)


def test_the_role_column_costs_no_query_per_row(root, both, settings):
    settings.IDP_KEY_REFRESH_SECONDS = 3600  # no cache refresh lands in one page's count
    root.get(KEY_ADMIN)  # the session's first page does its own queries
    with CaptureQueriesContext(connection) as three:
        root.get(KEY_ADMIN)
    keys.activate(both["jwt next"].fingerprint)
    keys.stage(valid_days=30)  # a SAML next key: four rows now
    with CaptureQueriesContext(connection) as four:
        root.get(KEY_ADMIN)
    assert len(four.captured_queries) == len(three.captured_queries)


def test_a_retired_key_is_published_nowhere(api, both):
    keys.activate(both["jwt next"].fingerprint)
    keys.retire(both["jwt"].fingerprint)
    listed = by_fingerprint(api.get(KEYS_API).json())
    old = listed[both["jwt"].fingerprint]
    assert (old["signs"], old["published"], old["role"]) == (
        False,
        False,
        "retired: published nowhere",
    )
    assert listed[both["jwt next"].fingerprint]["role"] == "signs tokens"
    assert listed[both["saml"].fingerprint]["role"] == "signs assertions"


# --- staging by use, over the API and in the admin ----------------------------------------


@pytest.mark.parametrize(
    ("body", "use", "next_step"),
    [
        ({}, "saml", "rotate_key activate`"),
        ({"use": "saml", "days": 30}, "saml", "Push it to IAM"),
        ({"use": "jwt"}, "jwt", "/oidc/jwks now publishes"),
    ],
)
def test_the_api_stages_a_key_of_a_use(api, signing_key, body, use, next_step):
    keys.ensure_active_key(JWT)
    answer = api.post(KEYS_API, body, format="json")
    assert answer.status_code == 201, answer.content
    key = answer.json()["key"]
    assert (key["use"], key["state"], key["signs"], key["published"]) == (use, "next", False, True)
    assert next_step in answer.json()["next_step"]
    assert SigningKey.objects.get(fingerprint=key["fingerprint"]).use == use


@pytest.mark.parametrize("use", ["JWT", "x509", "", None, 5, ["jwt"]])
def test_the_api_refuses_an_unknown_use(api, signing_key, use):
    answer = api.post(KEYS_API, {"use": use}, format="json")
    assert answer.status_code == 400, answer.content
    body = answer.json()
    assert "use" in body["fields"] and body["title"] and body["hint"]
    assert SigningKey.objects.count() == 1


def test_a_jwt_rollover_over_the_api_by_fingerprint(api, both):
    """Activate and retire find the key, and its use, by the fingerprint alone."""
    before = {kid for kid in (k["kid"] for k in jwks.public_set()["keys"])}
    assert len(before) == 2  # the JWT signer and the next JWT key
    staged = both["jwt next"].fingerprint
    activated = api.post(f"{KEYS_API}/{staged[:12]}/activate")
    assert activated.status_code == 200, activated.content
    key = activated.json()["key"]
    assert (key["use"], key["state"], key["signs"], key["role"]) == (
        "jwt",
        "active",
        True,
        "signs tokens",
    )
    assert "rotate_key retire --use jwt" in activated.json()["next_step"]
    assert keys.signing_row(SAML).pk == both["saml"].pk  # the SAML signer is untouched

    refused = api.post(f"{KEYS_API}/{staged}/retire")
    assert refused.status_code == 409 and "signs" in refused.json()["message"]
    retired = api.post(f"{KEYS_API}/{both['jwt'].fingerprint.upper()}/retire")
    assert retired.status_code == 200, retired.content
    assert retired.json()["key"]["use"] == "jwt" and retired.json()["key"]["published"] is False
    assert retired.json()["next_step"] == "The old key is no longer in /oidc/jwks."
    keys.forget_cached_keys()
    assert len(jwks.public_set()["keys"]) == 1
    # The SAML signer can be named too, and is refused for what it is: the only SAML key.
    saml = api.post(f"{KEYS_API}/{both['saml'].fingerprint}/retire")
    assert saml.status_code == 409 and "only active key" in saml.json()["message"]


@pytest.mark.parametrize(("use", "label"), [("saml", "SAML"), ("jwt", "JWT")])
def test_the_admin_stages_a_key_of_a_use(root, both, use, label):
    if use == "jwt":
        keys.activate(both["jwt next"].fingerprint)  # frees the JWT rollover's next slot
    page = root.get(KEY_ADMIN).content.decode()
    assert f'name="use" value="{use}"' in page and f"Stage a new key ({label})" in page
    answer = root.post(f"{KEY_ADMIN}stage/", {"use": use}, follow=True)
    staged = SigningKey.objects.get(state="next", use=use)
    text = answer.content.decode()
    assert f"key {staged.fingerprint[:16]} is now next" in text
    push = "Push the metadata to IAM" in text
    assert push == (use == "saml")  # JWT keys reach verifiers through /oidc/jwks


@pytest.mark.parametrize("use", ["", "JWT", "rsa", "saml\x00"])
def test_the_admin_refuses_an_unknown_use(root, both, use):
    count = SigningKey.objects.count()
    answer = root.post(f"{KEY_ADMIN}stage/", {"use": use}, follow=True)
    assert answer.status_code == 200 and "is no key use" in answer.content.decode()
    assert SigningKey.objects.count() == count


def test_the_admin_activates_a_jwt_key_with_the_right_next_step(root, both):
    staged = both["jwt next"]
    answer = root.post(
        KEY_ADMIN, {"action": "activate_key", "_selected_action": [staged.pk]}, follow=True
    )
    text = answer.content.decode()
    assert (
        f"JWT (OIDC JWKS, web-identity tokens) key {staged.fingerprint[:16]} is now active" in text
    )
    assert "nothing to push" in text and "sync_iam_provider" not in text
    assert keys.signing_row(JWT).pk == staged.pk


# --- deleting: each use's keys are judged within their use -------------------------------

# (key, refused with) -- with one active SAML key and one active JWT key, each is its
# use's only active key, whatever the other use holds.
DELETIONS = [
    ("saml", "only active key for saml; deleting it would stop all sign-ons"),
    ("jwt", "only active key for jwt; deleting it would stop signing tokens"),
    ("jwt next", ""),
]


@pytest.mark.parametrize(("name", "refusal"), DELETIONS, ids=[d[0] for d in DELETIONS])
def test_deletion_is_judged_within_the_keys_use(both, name, refusal):
    assert both[name].deletion_refusal().partition("is the ")[2].startswith(refusal)
    assert bool(both[name].deletion_refusal()) == bool(refusal)


def test_an_old_jwt_key_is_still_active_not_the_only_one(both):
    keys.activate(both["jwt next"].fingerprint)
    assert "signs" in SigningKey.objects.get(pk=both["jwt next"].pk).deletion_refusal()
    assert "Retire it first" in both["jwt"].deletion_refusal()
    assert "only active key" in both["saml"].deletion_refusal()
