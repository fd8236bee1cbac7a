"""The audit trail of sign-ons: written at once, or in batches under gunicorn.

Under gunicorn (watcher.py) events are buffered and written in one short
transaction every half second, so workers do not queue for SQLite's single
writer on every sign-on; the buffer is flushed when a worker exits. Elsewhere
(tests, runserver, commands) each event is written at once.
"""

import threading

from django.utils import timezone

from .models import AuditEvent

FLUSH_AT = 200


class _Buffer:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[AuditEvent] = []
        self.batching = False


_buffer = _Buffer()


def record(**fields) -> None:
    event = AuditEvent(created_at=timezone.now(), **fields)
    if not _buffer.batching:
        event.save()
        return
    with _buffer.lock:
        _buffer.events.append(event)
        full = len(_buffer.events) >= FLUSH_AT
    if full:
        flush()


def flush() -> None:
    with _buffer.lock:
        events, _buffer.events = _buffer.events, []
    if events:
        AuditEvent.objects.bulk_create(events)


def batch() -> None:
    _buffer.batching = True
