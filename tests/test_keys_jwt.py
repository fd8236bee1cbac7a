"""JWT signing keys on the SAML key lifecycle: each use rotates on its own."""

import datetime
import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from idp import keys
from idp.models import SigningKey

JWT = SigningKey.Use.JWT
LATER = datetime.timedelta(days=1)


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=out)
    return out.getvalue()


def states(use: str) -> list[str]:
    return list(
        SigningKey.objects.filter(use=use).order_by("created_at").values_list("state", flat=True)
    )


def test_a_full_jwt_rollover_leaves_the_saml_keys_alone(signing_key):
    saml_before = list(SigningKey.objects.values_list("fingerprint", "state", "state_changed_at"))
    first, created = keys.ensure_active_key(JWT)
    assert created and first.use == JWT and keys.ensure_active_key(JWT) == (first, False)
    staged = keys.stage(use=JWT)
    assert staged.use == JWT and states(JWT) == ["active", "next"]
    now = timezone.now() + LATER
    keys.activate(use=JWT, now=now)
    keys.retire(use=JWT, now=now + LATER)
    assert states(JWT) == ["retired", "active"]
    assert keys.signing_row(JWT).pk == staged.pk
    assert keys.signing_row().pk == signing_key.pk
    saml_rows = SigningKey.objects.filter(use="saml")
    assert list(saml_rows.values_list("fingerprint", "state", "state_changed_at")) == saml_before


def test_each_use_has_its_own_next_key(signing_key):
    keys.ensure_active_key(JWT)
    keys.stage()  # a SAML next key does not block a JWT one
    keys.stage(use=JWT)
    with pytest.raises(keys.KeyLifecycleError, match="rotate_key activate --use jwt"):
        keys.stage(use=JWT)
    with pytest.raises(keys.KeyLifecycleError, match=r"rotate_key activate`"):
        keys.stage()


def test_activating_saml_does_not_take_the_jwt_next_key(signing_key):
    keys.ensure_active_key(JWT)
    keys.stage(use=JWT)
    with pytest.raises(keys.KeyLifecycleError, match="no next key"):
        keys.activate(now=timezone.now() + LATER)
    assert states("saml") == ["active"]


def test_retiring_the_only_active_jwt_key_is_refused_though_saml_has_one(signing_key):
    jwt, _ = keys.ensure_active_key(JWT)
    with pytest.raises(keys.KeyLifecycleError, match="only active key"):
        keys.retire(jwt.fingerprint)
    with pytest.raises(keys.KeyLifecycleError, match="no old key"):
        keys.retire(use=JWT)


def test_the_caches_keep_the_uses_apart(signing_key):
    jwt, _ = keys.ensure_active_key(JWT)
    keys.forget_cached_keys()
    assert keys.active_key().fingerprint == signing_key.fingerprint
    assert keys.active_key(JWT).fingerprint == jwt.fingerprint
    assert [k.fingerprint for k in keys.published_keys()] == [signing_key.fingerprint]
    assert [k.fingerprint for k in keys.published_keys(JWT)] == [jwt.fingerprint]


def test_no_active_jwt_key_is_a_503_naming_the_command(signing_key):
    keys.forget_cached_keys()
    with pytest.raises(Exception, match="no active JWT signing key") as caught:
        keys.active_key(JWT)
    assert caught.value.status == 503 and "ensure_signing_key" in caught.value.hint


def test_rotate_key_use_jwt_and_status_shows_both(signing_key):
    run("ensure_signing_key")
    output = run("rotate_key", "stage", "--use", "jwt")
    assert "jwt key" in output and "/oidc/jwks" in output and "update-saml-provider" not in output
    assert states("saml") == ["active"] and states(JWT) == ["active", "next"]
    output = run("rotate_key", "activate", "--use", "jwt")
    assert "is now active" in output and "retire --use jwt" in output
    assert "is now retired" in run("rotate_key", "retire", "--use", "jwt")
    status = run("rotate_key", "status").splitlines()
    assert status[3].startswith("No worker beat")
    assert [line.split()[:3] for line in status[:3]] == [
        ["jwt", status[0].split()[1], "retired"],
        ["jwt", status[1].split()[1], "active"],
        ["saml", signing_key.fingerprint[:16], "active"],
    ]
    assert "signs" in status[1] and "signs" in status[2]
    with pytest.raises(
        CommandError, match="no next key to activate. Run `rotate_key stage --use jwt`"
    ):
        run("rotate_key", "activate", "--use", "jwt")


def test_rotate_key_refuses_a_bad_use_and_sync_for_jwt(signing_key):
    with pytest.raises(CommandError, match="invalid choice"):
        run("rotate_key", "stage", "--use", "oidc")
    with pytest.raises(CommandError, match="Drop --sync-iam"):
        run("rotate_key", "stage", "--use", "jwt", "--sync-iam", "fedmock")
    assert states(JWT) == []


def test_ensure_signing_key_ensures_both(db):
    first = run("ensure_signing_key")
    assert first.count("Generated") == 2 and "JWT signing key" in first
    assert run("ensure_signing_key").count("Using") == 2
    assert states("saml") == ["active"] and states(JWT) == ["active"]
