"""Issue 13 item 3: workers' heartbeats, and rollover steps that wait for their acknowledgements.

The live gunicorn side (every worker of one or two hosts through a whole rotation) is in
tests/test_concurrent_rollover.py. Here: what a worker reports, who is live, what each step
waits for and how the wait is told. No test waits on the clock: live beats are stamped an
hour ahead (tests/heartbeats.py).
"""

import datetime
import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.utils import timezone

from idp import keys, watcher, workers
from idp.models import SigningKey, WorkerHeartbeat

from .heartbeats import beat, current_key_sets

T0 = datetime.datetime(2026, 11, 21, 12, tzinfo=datetime.UTC)
MINUTE = datetime.timedelta(minutes=1)


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=out)
    return out.getvalue()


@pytest.fixture
def fresh_heart(monkeypatch):
    """This process as a new worker: no report sent yet."""
    monkeypatch.setattr(workers, "_heart", workers._Heart())
    return workers._heart


# (rows as (fingerprint, state, minutes after T0), expected signer, expected published)
KEY_SETS = [
    ([], None, ()),
    ([("a", "active", 0)], "a", ("a",)),
    ([("a", "active", 0), ("b", "next", 1)], "a", ("a", "b")),
    ([("a", "active", 0), ("b", "active", 1)], "b", ("a", "b")),  # the newest activation signs
    ([("b", "active", 1), ("a", "active", 0)], "b", ("b", "a")),
    ([("a", "retired", 5), ("b", "active", 1)], "b", ("b",)),
    ([("a", "next", 0)], None, ("a",)),
]


@pytest.mark.parametrize(("rows", "signer", "published"), KEY_SETS)
def test_key_set_of(rows, signer, published):
    key_set = keys.key_set_of([(f, state, T0 + m * MINUTE) for f, state, m in rows])
    assert key_set == workers.KeySet(signer, published)
    assert key_set.as_json() == {"signer": signer, "published": sorted(published)}


def test_only_live_workers_are_listed(db):
    beat(1)
    beat(2, live=False)
    WorkerHeartbeat.objects.create(
        worker="web-2:3:x", host="web-2", pid=3, started_at=timezone.now(), beat_at=timezone.now()
    )
    live = workers.live()
    assert [b.label() for b in live] == ["web-1 pid 1", "web-2 pid 3"]
    assert 0 <= live[1].seconds_ago < workers.live_window().total_seconds()


def test_a_beat_is_written_at_once_on_a_change_and_renewed_slowly(signing_key, fresh_heart):
    keys.refresh_keys()
    assert workers.beat(keys.loaded_key_sets())
    row = WorkerHeartbeat.objects.get()
    assert row.key_sets["saml"] == current_key_sets()["saml"] and row.problem == ""
    assert (row.host, row.pid) == (row.worker.split(":")[0], int(row.worker.split(":")[1]))
    assert not workers.beat(keys.loaded_key_sets())  # unchanged, within the heartbeat
    keys.stage()
    keys.refresh_keys()
    assert workers.beat(keys.loaded_key_sets())  # changed: at once
    assert len(WorkerHeartbeat.objects.get().key_sets["saml"]["published"]) == 2


def test_an_unchanged_beat_is_renewed_after_the_heartbeat(signing_key, fresh_heart, settings):
    settings.IDP_HEARTBEAT_SECONDS = 1e-9
    keys.refresh_keys()
    assert workers.beat(keys.loaded_key_sets())
    assert workers.beat(keys.loaded_key_sets())
    assert WorkerHeartbeat.objects.count() == 1


def test_a_stopping_worker_removes_its_beat_and_a_day_old_beat_is_pruned(db, fresh_heart):
    workers.beat({})
    beat(7, live=False)
    WorkerHeartbeat.objects.filter(pid=7).update(
        beat_at=timezone.now() - datetime.timedelta(days=2)
    )
    workers.stop()
    assert WorkerHeartbeat.objects.count() == 1
    assert workers.prune() == 1 and not WorkerHeartbeat.objects.exists()


def test_the_watcher_reports_the_loaded_keys(signing_key, fresh_heart):
    watcher._refresh()
    row = WorkerHeartbeat.objects.get()
    assert row.key_sets == current_key_sets()
    assert row.problem == ""


def test_a_worker_that_cannot_decrypt_reports_why(signing_key, fresh_heart, settings):
    settings.IDP_KEY_ENCRYPTION_KEY = Fernet.generate_key().decode()
    keys.forget_cached_keys()
    watcher._refresh()
    row = WorkerHeartbeat.objects.get()
    assert "saml" not in row.key_sets and "IDP_KEY_ENCRYPTION_KEY" in row.problem
    with pytest.raises(keys.KeyLifecycleError, match="has no saml keys loaded .*ENCRYPTION"):
        keys.stage()
    watcher._failures.clear()


def test_each_step_waits_for_a_live_worker_behind_and_no_other(signing_key):
    old = current_key_sets()
    staged = keys.stage()
    beat(1, key_sets=old)  # has not loaded the staged key
    beat(2, key_sets={}, live=False)  # silent: never waited for
    with pytest.raises(keys.KeyLifecycleError) as waiting:
        keys.activate()
    assert waiting.value.behind == ("web-1 pid 1",)
    assert waiting.value.wait_seconds == keys.ACKNOWLEDGEMENT_POLL_SECONDS
    assert "signs with nothing" not in str(waiting.value)
    assert f"publishes {signing_key.fingerprint[:16]}, last beat" in str(waiting.value)
    beat(1)
    keys.activate()
    beat(1, key_sets=old)  # still signs with the old key
    with pytest.raises(keys.KeyLifecycleError, match="web-1 pid 1 signs with"):
        keys.retire()
    beat(1)
    keys.retire()
    beat(1, key_sets=old)  # still publishes the retired key: the next stage waits
    with pytest.raises(keys.KeyLifecycleError, match="web-1 pid 1"):
        keys.stage()
    assert SigningKey.objects.get(fingerprint=staged.fingerprint).state == "active"


def test_a_worker_behind_on_one_use_does_not_hold_the_other(signing_key):
    keys.ensure_active_key(keys.Use.JWT)
    keys.stage(use=keys.Use.JWT)
    beat(1, key_sets={**current_key_sets(), "jwt": {"signer": None, "published": []}})
    keys.stage()  # SAML: worker 1 is up to date there
    with pytest.raises(keys.KeyLifecycleError, match="web-1 pid 1"):
        keys.activate(use=keys.Use.JWT)


def test_status_lists_the_workers_and_who_is_behind(signing_key):
    assert "No worker beat in the last 10 s" in run("rotate_key", "status")
    beat(1)
    beat(2, host="web-2", key_sets={"saml": current_key_sets()["saml"]})
    status = run("rotate_key", "status")
    assert "Workers that beat in the last 10 s:" in status
    assert "  web-1 pid 1  up to date" in status
    assert "  web-2 pid 2  behind on jwt (jwt: has no jwt keys loaded)" in status
    assert "behind" not in run("rotate_key", "status", "--use", "saml")


def test_the_command_times_out_naming_the_laggard(signing_key, monkeypatch):
    from idp.management.commands.rotate_key import Command

    slept = []
    monkeypatch.setattr(Command, "sleep", staticmethod(slept.append))
    run("rotate_key", "stage")
    beat(1, key_sets={})
    with pytest.raises(CommandError, match="web-1 pid 1 has no saml keys loaded") as refused:
        run("rotate_key", "activate", "--timeout", "1")
    assert "\n" not in str(refused.value)
    assert sum(slept) <= 1.0 and len(slept) == 5


@pytest.mark.parametrize("timeout", ["-1", "forever", "3601", "nan"])
def test_a_bad_timeout_is_one_line(signing_key, timeout):
    with pytest.raises(CommandError, match="give a number of seconds from 0 to 3600"):
        run("rotate_key", "activate", "--timeout", timeout)
