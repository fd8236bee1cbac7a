"""Bearer tokens over real HTTP: who gets in, what a token's scope and its user's permissions
allow, how tokens are stored, and how they are issued (the command and the admin)."""

import datetime
import hashlib
import io
import re

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from idp.api.models import ALL_SCOPES, ApiToken

from .api_support import Api, assert_refusal, staff, token_for

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN_SHAPE = re.compile(r"fm_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")
KEY_PERMISSIONS = ("idp.view_signingkey", "idp.add_signingkey", "idp.change_signingkey")


def create_token(*args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_token", *args, stdout=out, stderr=err)
    assert err.getvalue() == ""
    return out.getvalue()


def test_create_api_token_prints_one_line_that_authenticates(signing_key, idp_url):
    staff("ops", "idp.view_signingkey")
    printed = create_token("ops", "--name", "ci")
    assert printed.endswith("\n") and printed.count("\n") == 1
    token = printed.strip()
    assert TOKEN_SHAPE.fullmatch(token)
    row = ApiToken.objects.get()
    assert (row.name, row.scopes, row.expires_at) == ("ci", list(ALL_SCOPES), None)
    answer = Api(idp_url, token).get("/api/v1/signing-keys")
    assert answer.status_code == 200, answer.text
    assert [key["fingerprint"] for key in answer.json()] == [signing_key.fingerprint]


def test_create_api_token_scopes_and_expiry(db):
    staff("ops")
    create_token("ops", "--scope", "sign-on", "--scope", "read", "--expires-days", "7")
    row = ApiToken.objects.get()
    assert row.scopes == ["read", "sign-on"]  # in the catalogue's order, whatever was typed
    assert datetime.timedelta(days=6, hours=23) < row.expires_at - timezone.now()
    assert row.expires_at - timezone.now() <= datetime.timedelta(days=7)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["nobody"], "There is no user 'nobody'"),
        (["visitor"], "visitor is not staff"),
        (["retired"], "retired is inactive"),
        (["ops", "--scope", "admin"], "invalid choice: 'admin'"),
        (["ops", "--expires-days", "0"], "from 1 to 36500"),
        (["ops", "--expires-days", "soon"], "from 1 to 36500"),
    ],
)
def test_create_api_token_refusals_are_one_line(db, args, words):
    staff("ops")
    from users.models import User

    User.objects.create_user("visitor")
    User.objects.create_user("retired", is_staff=True, is_active=False)
    with pytest.raises(CommandError) as refused:
        create_token(*args)
    assert words in str(refused.value)
    assert "\n" not in str(refused.value)
    assert not ApiToken.objects.exists()


def test_tokens_are_stored_as_digests_only(db):
    user = staff("ops")
    token = token_for(user)
    # The secret is URL-safe base64, which may itself contain "_".
    _, prefix, secret = token.split("_", 2)
    assert len(secret) >= 43
    row = ApiToken.objects.values().get()
    assert row["digest"] == hashlib.sha256(token.encode()).hexdigest()
    assert row["prefix"] == prefix
    for value in row.values():
        assert secret not in str(value) and token not in str(value)
    assert token_for(user) != token and ApiToken.objects.values("digest").distinct().count() == 2


def _revoked(user):
    token = token_for(user)
    ApiToken.objects.get(user=user).revoke()
    return token


def _expired(user):
    token = token_for(user)
    ApiToken.objects.filter(user=user).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    return token


def _inactive(user):
    token = token_for(user)
    type(user).objects.filter(pk=user.pk).update(is_active=False)
    return token


def _no_longer_staff(user):
    token = token_for(user)
    type(user).objects.filter(pk=user.pk).update(is_staff=False)
    return token


REFUSALS = [
    # (name, the Authorization header from the user, status, words in the message)
    ("no header", lambda user: None, 401, "Authentication credentials were not provided"),
    ("basic", lambda user: "Basic b3BzOm9wcw==", 401, "Authentication credentials"),
    ("not a token", lambda user: "Bearer hunter2", 401, "not a fedmock API token"),
    ("two words", lambda user: "Bearer fm_a b", 401, "must read `Bearer <token>`"),
    ("too long", lambda user: "Bearer " + "x" * 5000, 401, "must read `Bearer <token>`"),
    (
        "unknown",
        lambda user: "Bearer fm_0123abcd_" + "A" * 43,
        401,
        "unknown to fedmock",
    ),
    ("revoked", lambda user: f"Bearer {_revoked(user)}", 401, "was revoked on"),
    ("expired", lambda user: f"Bearer {_expired(user)}", 401, "expired on"),
    ("inactive user", lambda user: f"Bearer {_inactive(user)}", 401, "ops is inactive"),
    ("non-staff user", lambda user: f"Bearer {_no_longer_staff(user)}", 403, "ops is not staff"),
]

ENDPOINTS = [
    ("GET", "/api/v1/signing-keys"),
    ("POST", "/api/v1/signing-keys"),
    ("POST", "/api/v1/sign-ons"),
    ("POST", "/api/v1/checks"),
    ("POST", "/api/v1/reset"),
    ("GET", "/api/v1/scenarios"),
]


@pytest.mark.parametrize(
    ("name", "header", "status", "words"), REFUSALS, ids=[r[0] for r in REFUSALS]
)
def test_who_is_refused(signing_key, idp_url, name, header, status, words):
    user = staff("ops", *KEY_PERMISSIONS, superuser=True)
    value = header(user)
    api = Api(idp_url, **({"Authorization": value} if value else {}))
    for method, path in ENDPOINTS:
        answer = api.request(method, path, json={})
        body = assert_refusal(answer, status, words)
        if status == 401:
            assert answer.headers["WWW-Authenticate"] == 'Bearer realm="fedmock"'
            assert "create_api_token" in body["hint"]
    assert signing_key.__class__.objects.count() == 1  # nothing was staged


# Writes, each with the permission it needs: a staff user without it gets 403.
WRITES = [
    ("POST", "/api/v1/signing-keys", {}, "idp.add_signingkey"),
    ("POST", "/api/v1/signing-keys/{fp}/activate", None, "idp.change_signingkey"),
    ("POST", "/api/v1/signing-keys/{fp}/retire", None, "idp.change_signingkey"),
    (
        "POST",
        "/api/v1/sign-ons",
        {"user": "alice", "sp": "urn:amazon:webservices"},
        "idp.preview_signed_response",
    ),
    ("POST", "/api/v1/reset", None, "users.add_user"),
    ("GET", "/api/v1/signing-keys", None, "idp.view_signingkey"),
]


@pytest.mark.parametrize(("method", "path", "body", "permission"), WRITES)
def test_staff_without_the_permission_gets_403(
    signing_key, idp_url, method, path, body, permission
):
    api = Api(idp_url, token_for(staff("ops")))
    answer = api.request(method, path.format(fp=signing_key.fingerprint), json=body)
    assert_refusal(answer, 403, permission, "ops lacks")
    signing_key.refresh_from_db()
    assert signing_key.state == "active"
    assert signing_key.__class__.objects.count() == 1


def test_reset_needs_every_directory_permission_not_just_some(signing_key, idp_url):
    from idp.api.operations.views import RESET_PERMISSIONS

    all_but_one = RESET_PERMISSIONS[:-1]
    api = Api(idp_url, token_for(staff("ops", *all_but_one)))
    assert_refusal(api.post("/api/v1/reset"), 403, RESET_PERMISSIONS[-1])


def test_staff_without_permissions_may_check_and_list_scenarios(signing_key, idp_url):
    api = Api(idp_url, token_for(staff("ops")))
    checked = api.post("/api/v1/checks", {"saml_response": "bm90IFNBTUw="})
    assert checked.status_code == 200, checked.text
    assert checked.json()["verdict"] == "reject"
    listed = api.get("/api/v1/scenarios")
    assert listed.status_code == 200, listed.text


# (scopes of the token, request, the scope it lacks or None if it is allowed)
SCOPE_TABLE = [
    (["read"], ("GET", "/api/v1/signing-keys", None), None),
    (["read"], ("POST", "/api/v1/checks", {"saml_response": "eA=="}), None),
    (["read"], ("POST", "/api/v1/signing-keys", {}), "write"),
    (["read"], ("POST", "/api/v1/sign-ons", {"user": "a", "sp": "b"}), "sign-on"),
    (["read"], ("POST", "/api/v1/reset", None), "reset"),
    (["write"], ("GET", "/api/v1/signing-keys", None), "read"),
    (["write"], ("GET", "/api/v1/scenarios", None), "read"),
    (["write"], ("POST", "/api/v1/checks", {"saml_response": "eA=="}), "read"),
    (["write"], ("POST", "/api/v1/sign-ons", {"user": "a", "sp": "b"}), "sign-on"),
    (["sign-on"], ("POST", "/api/v1/signing-keys", {}), "write"),
    (["sign-on"], ("POST", "/api/v1/reset", None), "reset"),
    (["reset"], ("POST", "/api/v1/sign-ons", {"user": "a", "sp": "b"}), "sign-on"),
    (["write"], ("POST", "/api/v1/signing-keys", {}), None),
]


@pytest.mark.parametrize(("scopes", "call", "lacking"), SCOPE_TABLE)
def test_a_tokens_scope_limits_it(signing_key, idp_url, scopes, call, lacking):
    user = staff("root", superuser=True)
    method, path, body = call
    answer = Api(idp_url, token_for(user, scopes)).request(method, path, json=body)
    if lacking:
        assert_refusal(answer, 403, f"lacks the `{lacking}` scope")
    else:
        assert answer.status_code in (200, 201), answer.text


# --- the admin -------------------------------------------------------------------------


def admin_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_admin_issues_a_token_once_and_revokes_it(signing_key, idp_url):
    root = staff("root", superuser=True)
    ops = staff("ops", "idp.view_signingkey")
    client = admin_client(root)
    page = client.post(
        "/admin/api/apitoken/add/",
        {"user": ops.pk, "name": "pipeline", "scopes": ["read"], "description": ""},
    )
    assert page.status_code == 200
    shown = page.content.decode()
    tokens = TOKEN_SHAPE.findall(shown)
    assert len(set(tokens)) == 1, shown
    assert not page.cookies.get("messages"), "the token must not travel in the messages cookie"
    token = tokens[0]
    row = ApiToken.objects.get()
    assert (row.user, row.scopes, row.name) == (ops, ["read"], "pipeline")
    assert row.digest == hashlib.sha256(token.encode()).hexdigest()

    listing = client.get("/admin/api/apitoken/").content.decode()
    assert f"fm_{row.prefix}_" in listing and token not in listing
    assert token not in client.get(f"/admin/api/apitoken/{row.pk}/change/").content.decode()

    api = Api(idp_url, token)
    assert api.get("/api/v1/signing-keys").status_code == 200
    client.post(
        "/admin/api/apitoken/",
        {"action": "revoke", "_selected_action": [row.pk]},
    )
    row.refresh_from_db()
    assert row.revoked_at is not None
    assert_refusal(api.get("/api/v1/signing-keys"), 401, "was revoked")


def test_admin_refuses_a_token_for_a_non_staff_user(db):
    from users.models import User

    visitor = User.objects.create_user("visitor")
    page = admin_client(staff("root", superuser=True)).post(
        "/admin/api/apitoken/add/", {"user": visitor.pk, "scopes": ["read"]}
    )
    assert page.status_code == 200  # the form again, with the error
    assert not ApiToken.objects.exists()


def test_only_a_superuser_issues_tokens_for_others(db):
    """A token carries its user's powers: issuing one for a superuser would borrow them."""
    root = staff("root", superuser=True)
    clerk = staff("clerk", "api.add_apitoken", "api.view_apitoken")
    client = admin_client(clerk)
    form = client.get("/admin/api/apitoken/add/")
    assert form.status_code == 200
    field = form.context["adminform"].form.fields["user"]
    choices = [value.value for value, _ in field.choices if value]
    assert choices == [clerk.pk]
    client.post("/admin/api/apitoken/add/", {"user": root.pk, "scopes": ["read"]})
    assert not ApiToken.objects.exists()
    client.post("/admin/api/apitoken/add/", {"user": clerk.pk, "scopes": ["read"]})
    assert ApiToken.objects.get().user == clerk


@pytest.mark.parametrize(
    ("permissions", "page", "status"),
    [
        ((), "/admin/api/apitoken/", 403),
        (("api.view_apitoken",), "/admin/api/apitoken/", 200),
        (("api.view_apitoken",), "/admin/api/apitoken/add/", 403),
        (("api.add_apitoken",), "/admin/api/apitoken/add/", 200),
    ],
)
def test_the_token_admin_checks_model_permissions(db, permissions, page, status):
    assert admin_client(staff("clerk", *permissions)).get(page).status_code == status


def test_revoking_needs_the_change_permission(db):
    clerk = staff("clerk", "api.view_apitoken")
    ApiToken.issue(clerk)
    row = ApiToken.objects.get()
    admin_client(clerk).post(
        "/admin/api/apitoken/", {"action": "revoke", "_selected_action": [row.pk]}
    )
    row.refresh_from_db()
    assert row.revoked_at is None
