"""Heartbeats: each serving worker, on every host, reports the keys it has loaded.

The watcher (watcher.py) beats at once when the worker's keys change and every
IDP_HEARTBEAT_SECONDS otherwise; gunicorn's worker_exit removes the row. A rollover
step (keys.py) reads the live beats and waits until each reports the database's key
set, so no worker signs with a key another does not publish. A worker silent for
LIVE_BEATS heartbeats (killed, frozen, its host gone) is not waited for.

Beats are stamped and judged by the database's clock, which every host shares.
"""

import datetime
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.db.models import DurationField, ExpressionWrapper, F
from django.db.models.functions import Now
from django.utils import timezone

from .models import WorkerHeartbeat

LIVE_BEATS = 5


@dataclass(frozen=True)
class KeySet:
    """The keys of one use as a process sees them: the one that signs, and all published."""

    signer: str | None
    published: tuple[str, ...]

    def as_json(self) -> dict:
        return {"signer": self.signer, "published": sorted(self.published)}

    def describe(self) -> str:
        signer = f"signs with {self.signer[:16]}" if self.signer else "signs with nothing"
        return f"{signer}, publishes {', '.join(f[:16] for f in sorted(self.published)) or 'none'}"


@dataclass(frozen=True)
class Beat:
    worker: str
    host: str
    pid: int
    key_sets: dict
    problem: str
    seconds_ago: float

    def label(self) -> str:
        return f"{self.host} pid {self.pid}"

    def reports(self, use: str, expected: KeySet) -> bool:
        return self.key_sets.get(use) == expected.as_json()

    def loaded(self, use: str) -> str:
        key_set = self.key_sets.get(use)
        if key_set is None:
            return f"has no {use} keys loaded" + (f" ({self.problem})" if self.problem else "")
        return KeySet(key_set["signer"], tuple(key_set["published"])).describe()

    def describe(self, use: str) -> str:
        return f"{self.label()} {self.loaded(use)}, last beat {self.seconds_ago:.1f} s ago"


def live_window() -> datetime.timedelta:
    # A worker beats at most once a watcher round (IDP_KEY_REFRESH_SECONDS / 2): were that
    # longer than the heartbeat, a step would go ahead between two beats of a worker behind.
    period = max(settings.IDP_HEARTBEAT_SECONDS, settings.IDP_KEY_REFRESH_SECONDS / 2)
    return datetime.timedelta(seconds=LIVE_BEATS * period)


def live() -> list[Beat]:
    """Every worker that beat within the live window, by the database's clock."""
    rows = (
        WorkerHeartbeat.objects.filter(beat_at__gte=Now() - live_window())
        .annotate(age=ExpressionWrapper(Now() - F("beat_at"), output_field=DurationField()))
        .order_by("host", "pid")
        .values_list("worker", "host", "pid", "key_sets", "problem", "age")
    )
    return [
        Beat(worker, host, pid, key_sets, problem, max(0.0, age.total_seconds()))
        for worker, host, pid, key_sets, problem, age in rows
    ]


class _Heart:
    """This process's identity and its last report, so an unchanged one is renewed slowly."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid: int | None = None
        self.worker = ""
        self.started_at: datetime.datetime | None = None
        self.last: tuple[dict, str] | None = None
        self.beat_at = float("-inf")

    def identity(self) -> str:
        # Computed in the worker, after the fork: a pid seen again on another host or after a
        # restart is a new worker, told apart by the random part.
        if self.pid != os.getpid():
            self.pid = os.getpid()
            self.worker = f"{socket.gethostname()}:{self.pid}:{secrets.token_hex(4)}"
            self.started_at = timezone.now()
            self.last = None
        return self.worker


_heart = _Heart()


def beat(key_sets: dict[str, KeySet | None], problem: str = "") -> bool:
    """Report this worker's keys; written at once when they changed. True if written."""
    report = (
        {use: key_set.as_json() for use, key_set in key_sets.items() if key_set is not None},
        problem,
    )
    with _heart.lock:
        worker = _heart.identity()
        if (
            report == _heart.last
            and time.monotonic() - _heart.beat_at < settings.IDP_HEARTBEAT_SECONDS
        ):
            return False
        fields = {"beat_at": Now(), "key_sets": report[0], "problem": report[1]}
        if not WorkerHeartbeat.objects.filter(worker=worker).update(**fields):
            WorkerHeartbeat.objects.create(
                worker=worker,
                host=socket.gethostname(),
                pid=_heart.pid,
                started_at=_heart.started_at,
                **fields,
            )
        _heart.last, _heart.beat_at = report, time.monotonic()
        return True


def stop() -> None:
    """The worker exits: no rollover waits for it any more."""
    if _heart.pid == os.getpid():
        WorkerHeartbeat.objects.filter(worker=_heart.worker).delete()


def prune() -> int:
    """Forget workers silent for a day (killed ones never removed their row)."""
    return WorkerHeartbeat.objects.filter(beat_at__lt=Now() - datetime.timedelta(days=1)).delete()[
        0
    ]
