"""Signing keys from the admin: keys in use cannot be deleted, and steps wait for the workers.

Issue 8, item 11; issue 13 made the wait one for the workers' heartbeats. No test sleeps:
the admin's and the command's `sleep` are replaced by one that lets the worker behind
catch up instead.
"""

import datetime
import io

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.db.models import F, ProtectedError

from idp import keys
from idp.admin import SigningKeyAdmin
from idp.management.commands.rotate_key import Command as RotateKey
from idp.models import SigningKey

from .heartbeats import beat

KEY_ADMIN = "/admin/idp/signingkey/"
LONG_AGO = datetime.timedelta(hours=1)


def age(seconds: float) -> None:
    """Every key's last state change happened `seconds` earlier."""
    SigningKey.objects.update(
        state_changed_at=F("state_changed_at") - datetime.timedelta(seconds=seconds)
    )


@pytest.fixture
def slept(monkeypatch) -> list[float]:
    """What the admin and the command slept; during the first sleep, worker 4242 (which the
    test left behind) loads the current keys."""
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        beat(4242)

    monkeypatch.setattr(SigningKeyAdmin, "sleep", staticmethod(sleep))
    monkeypatch.setattr(RotateKey, "sleep", staticmethod(sleep))
    return pauses


def layout(name: str) -> dict[str, SigningKey]:
    """Key layouts by name; the keys by role."""
    signer = SigningKey.objects.get(state="active")
    if name == "one active":
        return {"signer": signer}
    if name == "active and next":
        age(LONG_AGO.total_seconds())
        return {"signer": signer, "next": keys.stage(valid_days=30)}
    if name == "after activation":
        age(LONG_AGO.total_seconds())
        staged = keys.stage(valid_days=30)
        age(LONG_AGO.total_seconds())
        keys.activate(staged.fingerprint)
        age(LONG_AGO.total_seconds())
        return {"signer": staged, "old": signer}
    if name == "after retirement":
        roles = layout("after activation")
        return {"signer": roles["signer"], "retired": keys.retire(roles["old"].fingerprint)}
    raise AssertionError(name)


# (layout, role, refused with) -- the message says why, as `rotate_key retire` does.
DELETIONS = [
    ("one active", "signer", "is the only active key"),
    ("active and next", "signer", "is the only active key"),
    ("active and next", "next", None),
    ("after activation", "signer", "signs"),
    ("after activation", "old", "Retire it first"),
    ("after retirement", "retired", None),
]
IDS = [f"{name}: {role}" for name, role, _ in DELETIONS]


@pytest.fixture
def admin_client(client, demo):
    client.login(username="admin", password="admin")
    return client


@pytest.mark.parametrize(("name", "role", "refusal"), DELETIONS, ids=IDS)
def test_the_delete_view_refuses_keys_in_use(admin_client, name, role, refusal):
    key = layout(name)[role]
    before = SigningKey.objects.count()
    url = f"{KEY_ADMIN}{key.pk}/delete/"
    page = admin_client.get(url, follow=True)
    response = admin_client.post(url, {"post": "yes"}, follow=True)
    assert page.status_code == response.status_code == 200
    exists = SigningKey.objects.filter(pk=key.pk).exists()
    if refusal:
        assert exists and SigningKey.objects.count() == before
        for answer in (page, response):
            assert refusal in answer.content.decode()
            assert answer.redirect_chain[-1][0] == f"{KEY_ADMIN}{key.pk}/change/"
    else:
        assert not exists and SigningKey.objects.count() == before - 1


@pytest.mark.parametrize(("name", "role", "refusal"), DELETIONS, ids=IDS)
def test_the_bulk_delete_refuses_keys_in_use(admin_client, name, role, refusal):
    roles = layout(name)
    before = SigningKey.objects.count()
    selected = {"action": "delete_selected", "_selected_action": [roles[role].pk]}
    confirm = admin_client.post(KEY_ADMIN, selected, follow=True)
    response = admin_client.post(KEY_ADMIN, {**selected, "post": "yes"}, follow=True)
    assert confirm.status_code == response.status_code == 200
    if refusal:
        assert SigningKey.objects.count() == before
        assert refusal in confirm.content.decode() and refusal in response.content.decode()
    else:
        assert "Are you sure" in confirm.content.decode()
        assert SigningKey.objects.count() == before - 1


def test_a_bulk_delete_with_one_key_in_use_deletes_none(admin_client):
    roles = layout("after retirement")
    everything = [key.pk for key in SigningKey.objects.all()]
    admin_client.post(
        KEY_ADMIN, {"action": "delete_selected", "_selected_action": everything, "post": "yes"}
    )
    assert sorted(SigningKey.objects.values_list("pk", flat=True)) == sorted(everything)
    assert roles["signer"].pk in everything


@pytest.mark.parametrize(("name", "role", "refusal"), DELETIONS, ids=IDS)
def test_the_orm_refuses_too(signing_key, name, role, refusal):
    key = layout(name)[role]
    if refusal:
        # Each in its own savepoint: the refusal aborts the delete's transaction.
        with pytest.raises(ProtectedError, match=refusal), transaction.atomic():
            key.delete()
        with pytest.raises(ProtectedError, match=refusal), transaction.atomic():
            SigningKey.objects.filter(pk=key.pk).delete()
        assert SigningKey.objects.filter(pk=key.pk).exists()
    else:
        SigningKey.objects.filter(pk=key.pk).delete()
        assert not SigningKey.objects.filter(pk=key.pk).exists()


def test_the_delete_link_is_hidden_for_a_key_in_use(admin_client):
    roles = layout("after retirement")
    signer_page = admin_client.get(f"{KEY_ADMIN}{roles['signer'].pk}/change/").content
    retired_page = admin_client.get(f"{KEY_ADMIN}{roles['retired'].pk}/change/").content
    assert b"/delete/" not in signer_page
    assert b"/delete/" in retired_page


def behind() -> None:
    """Worker 4242 is live and still reports the keys from before the next step."""
    beat(4242)
    beat(7, live=False, key_sets={})  # silent for an hour: never waited for


def test_activate_waits_for_the_worker_behind_in_one_click(admin_client, slept):
    staged = keys.stage(valid_days=30)
    behind()
    beat(4242, key_sets={})  # has not loaded the staged key
    response = admin_client.post(
        KEY_ADMIN, {"action": "activate_key", "_selected_action": [staged.pk]}, follow=True
    )
    staged.refresh_from_db()
    assert staged.state == "active"
    assert slept == [keys.ACKNOWLEDGEMENT_POLL_SECONDS]
    page = response.content.decode()
    assert "is now active" in page and "worker" not in page.lower()


def test_retire_waits_for_the_worker_behind_in_one_click(admin_client, slept):
    old = SigningKey.objects.get(state="active")
    staged = keys.stage(valid_days=30)
    behind()
    keys.activate(staged.fingerprint)  # worker 4242 still signs with the old key
    response = admin_client.post(
        KEY_ADMIN, {"action": "retire_key", "_selected_action": [old.pk]}, follow=True
    )
    old.refresh_from_db()
    assert old.state == "retired"
    assert len(slept) == 1
    assert "is now retired" in response.content.decode()


def test_the_admin_names_a_worker_that_never_catches_up(admin_client, monkeypatch):
    sleeps = []
    monkeypatch.setattr(SigningKeyAdmin, "sleep", staticmethod(sleeps.append))
    staged = keys.stage(valid_days=30)
    beat(4242, key_sets={}, problem="IDP_KEY_ENCRYPTION_KEY does not decrypt the keys")
    response = admin_client.post(
        KEY_ADMIN, {"action": "activate_key", "_selected_action": [staged.pk]}, follow=True
    )
    staged.refresh_from_db()
    assert staged.state == "next"
    page = response.content.decode()
    assert "web-1 pid 4242 has no saml keys loaded (IDP_KEY_ENCRYPTION_KEY does not" in page
    assert sum(sleeps) <= keys.HTTP_PATIENCE_SECONDS


def test_the_command_waits_through_the_same_loop(signing_key, slept):
    staged = keys.stage(valid_days=30)
    beat(4242, key_sets={})
    out = io.StringIO()
    call_command("rotate_key", "activate", stdout=out, stderr=out)
    staged.refresh_from_db()
    assert staged.state == "active"
    assert "Waiting for web-1 pid 4242 to load" in out.getvalue() and len(slept) == 1
    beat(4242, key_sets={})
    with pytest.raises(CommandError, match="1 worker.s. have not loaded.*web-1 pid 4242"):
        call_command("rotate_key", "retire", "--no-wait", stdout=out, stderr=out)


class Step:
    """A rollover step that waits for the given workers, one list per call, then succeeds."""

    def __init__(self, *waits: tuple[str, ...], error: str = ""):
        self.waits = list(waits)
        self.error = error
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.waits:
            raise keys.KeyLifecycleError("wait", behind=self.waits.pop(0), wait_seconds=0.5)
        if self.error:
            raise keys.KeyLifecycleError(self.error)
        return "done"


A, B = ("web-1 pid 1",), ("web-1 pid 1", "web-2 pid 2")
# (workers behind at each call, patience, slept, reported, outcome)
LOOPS = [
    ((), 30, [], [], "done"),
    ((A,), 30, [0.5], [A], "done"),
    ((B, B, A), 30, [0.5, 0.5, 0.5], [B, A], "done"),  # each set of laggards told once
    ((A,), 0, [], [], "wait"),
    ((A, A, A), 1.0, [0.5, 0.5], [A], "wait"),
    ((A, A), 1.0, [0.5, 0.5], [A], "done"),
]


@pytest.mark.parametrize(("waits", "patience", "expected_sleeps", "reported", "outcome"), LOOPS)
def test_wait_and_retry(waits, patience, expected_sleeps, reported, outcome):
    pauses, notices = [], []
    step = Step(*waits)
    run = lambda: keys.wait_and_retry(  # noqa: E731
        step,
        sleep=pauses.append,
        on_wait=lambda error: notices.append(error.behind),
        patience=patience,
    )
    if outcome == "done":
        assert run() == "done"
    else:
        with pytest.raises(keys.KeyLifecycleError, match=outcome):
            run()
    assert pauses == expected_sleeps
    assert notices == reported


def test_wait_and_retry_does_not_retry_a_refusal():
    step = Step(error="refused")
    with pytest.raises(keys.KeyLifecycleError, match="refused"):
        keys.wait_and_retry(step, sleep=pytest.fail, patience=30)
    assert step.calls == 1
