"""Issue 13 review: rollover steps against races, and a worker whose watcher stopped.

Each test here failed before its fix. None waits on the clock: a race is staged by
running the second step while the first stands between its check and its change.
"""

import dataclasses
import datetime
import os
import threading
import time
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from idp import keys, workers
from idp.models import SigningKey, WorkerHeartbeat

from . import databases
from .heartbeats import beat, current_key_sets


def blocked_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        # pg_locks, not pg_stat_activity: the latter is a snapshot per transaction.
        cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
        return cursor.fetchone()[0] > 0


def meanwhile(run, monkeypatch) -> dict:
    """Once the main thread's step has checked the workers and not yet changed a key, run
    `run` in another thread (another connection) until it ends or waits on a lock."""
    outcome: dict = {}
    checked = keys.await_workers
    main = threading.get_ident()

    def other_step() -> None:
        try:
            outcome["key"] = run()
        except keys.KeyLifecycleError as error:
            outcome["refused"] = str(error)
        finally:
            connection.close()

    def await_workers(use: str) -> None:
        checked(use)
        if threading.get_ident() != main or "thread" in outcome:
            return
        outcome["thread"] = thread = threading.Thread(target=other_step)
        thread.start()
        deadline = time.monotonic() + 60  # only a broken test gets here
        while thread.is_alive() and not blocked_on_a_lock():
            assert time.monotonic() < deadline, "the other step neither ended nor waited"
            time.sleep(0.01)

    monkeypatch.setattr(keys, "await_workers", await_workers)
    return outcome


@pytest.mark.skipif(
    not databases.on_postgres(),
    reason="SQLite's BEGIN IMMEDIATE (settings.py) already runs write transactions one by one",
)
@pytest.mark.parametrize("second", ["activate", "stage"])
def test_two_rollover_steps_at_once_take_turns(transactional_db, key_pems, monkeypatch, second):
    """Two rotate_key (or an admin's click and a command) at once: each checked the workers
    against the keys from before the other's change, and both went ahead. Retiring the
    key the other step had just activated left workers signing with an unpublished key;
    two stages made two next keys."""
    keys.store_key(*key_pems, state="active")
    if second == "activate":
        staged = keys.stage()
        outcome = meanwhile(lambda: keys.activate(staged.fingerprint), monkeypatch)
        keys.retire(staged.fingerprint)
        outcome["thread"].join()
        assert "no key in state next" in outcome.get("refused", ""), outcome
        assert SigningKey.objects.get(pk=staged.pk).state == "retired"
    else:
        outcome = meanwhile(keys.stage, monkeypatch)
        keys.stage()
        outcome["thread"].join()
        assert "already staged" in outcome.get("refused", ""), outcome
        assert SigningKey.objects.filter(state="next").count() == 1


def test_a_worker_whose_watcher_stopped_does_not_sign_with_a_retired_key(signing_key):
    """Rollover steps stop waiting for a worker silent for the live window. If its watcher
    thread died (or hangs) while it serves, it must not keep its keys past that: its
    request path reloads them."""
    keys.watched()
    try:
        cache = keys._caches[keys.SAML]
        loaded = cache.ring()
        assert loaded.signer.fingerprint == signing_key.fingerprint
        new = keys.generate_key("active")
        SigningKey.objects.filter(pk=signing_key.pk).update(state="retired")
        # The watcher's last refresh was a live window ago; it has not run since.
        stale = time.monotonic() - workers.live_window().total_seconds()
        cache._ring = dataclasses.replace(loaded, checked_at=stale)
        assert keys.active_key().fingerprint == new.fingerprint
        assert [m.fingerprint for m in keys.published_keys()] == [new.fingerprint]
    finally:
        for use_cache in keys._caches.values():
            use_cache.watched = False


def test_a_worker_is_waited_for_between_beats_however_slow_its_watcher(signing_key, settings):
    """A worker beats once a watcher round, IDP_KEY_REFRESH_SECONDS / 2. Raised to 60 s, it
    beats every 30 s: a live window of five 2-s heartbeats let a step go ahead between two
    of its beats, with the worker behind."""
    settings.IDP_KEY_REFRESH_SECONDS = 60.0
    old = current_key_sets()
    keys.stage()
    beat(1, key_sets=old)
    WorkerHeartbeat.objects.update(beat_at=timezone.now() - datetime.timedelta(seconds=20))
    with pytest.raises(keys.KeyLifecycleError, match="web-1 pid 1"):
        keys.activate()


def test_a_development_secret_is_never_read_half_written(tmp_path, monkeypatch):
    """Two first starts at once: each finds no file or the whole key, never an empty one."""
    from idp import settings as live

    monkeypatch.setattr(live, "BASE_DIR", tmp_path)
    first = live._development_secret(".some_secret", lambda: "first-key")
    assert first == "first-key" and (tmp_path / ".some_secret").stat().st_mode & 0o777 == 0o600
    # Another process linked its key in between this one's read and its write: theirs wins.
    real_link = os.link

    def raced(source, target):
        Path(target).write_text("theirs")
        return real_link(source, target)

    monkeypatch.setattr(os, "link", raced)
    assert live._development_secret(".other_secret", lambda: "mine") == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other_secret", ".some_secret"]
