"""Workers' heartbeats written as a test needs them: live or silent, up to date or behind.

A live beat is stamped an hour ahead, so it stays live however slow the machine is; a
silent one an hour back. No test waits on the clock."""

import datetime

from django.utils import timezone

from idp import keys
from idp.models import SigningKey, WorkerHeartbeat

HOUR = datetime.timedelta(hours=1)


def current_key_sets() -> dict:
    """What an up-to-date worker reports now, for every use."""
    return {use: keys.key_set_of(keys.state_rows(use)).as_json() for use in SigningKey.Use.values}


def beat(
    pid: int, key_sets: dict | None = None, live: bool = True, host: str = "web-1", problem=""
) -> WorkerHeartbeat:
    """A worker's heartbeat (by default reporting the current keys), created or renewed."""
    now = timezone.now()
    row, _ = WorkerHeartbeat.objects.update_or_create(
        worker=f"{host}:{pid}:test",
        defaults={
            "host": host,
            "pid": pid,
            "started_at": now - HOUR,
            "beat_at": now + HOUR if live else now - HOUR,
            "key_sets": current_key_sets() if key_sets is None else key_sets,
            "problem": problem,
        },
    )
    return row
