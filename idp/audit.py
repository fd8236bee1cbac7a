"""The audit trail of sign-ons: written at once, or in batches under gunicorn.

Under gunicorn (watcher.py) events are buffered and written in one short
transaction every half second, so workers do not queue for SQLite's single
writer on every sign-on; the buffer is flushed when a worker exits. Elsewhere
(tests, runserver, commands) each event is written at once.
"""

import datetime
import logging
import threading

from django.db import DatabaseError

from . import clock
from .models import AuditEvent

FLUSH_AT = 200
logger = logging.getLogger("fedmock.audit")


class _Buffer:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.writing = threading.Lock()  # the exit flush waits for the watcher's write
        self.events: list[AuditEvent] = []
        self.batching = False


_buffer = _Buffer()


def _storable(value):
    # PostgreSQL refuses a NUL in a text column, and a web-identity token's JSON may spell
    # one (\u0000 in its sub or iss, from an unauthenticated caller): one such event would
    # fail its request, or under gunicorn fail every batched write after it.
    return value.replace("\x00", "\\x00") if isinstance(value, str) else value


def record(**fields) -> None:
    # The IdP's clock, as the response's IssueInstant: an offset moves both alike.
    fields = {name: _storable(value) for name, value in fields.items()}
    event = AuditEvent(created_at=clock.now(), **fields)
    if not _buffer.batching:
        event.save()
        return
    with _buffer.lock:
        _buffer.events.append(event)
        full = len(_buffer.events) >= FLUSH_AT
    if full:
        try:
            flush()
        except DatabaseError:  # kept for the watcher's next try; the sign-on goes on
            logger.exception("writing %d audit events failed", len(_buffer.events))


def flush() -> None:
    """Write what is buffered; on failure the events go back to be written next time."""
    with _buffer.writing:
        with _buffer.lock:
            events, _buffer.events = _buffer.events, []
        if not events:
            return
        try:
            AuditEvent.objects.bulk_create(events)
        except Exception:
            with _buffer.lock:
                _buffer.events[:0] = events
            raise


def batch() -> None:
    _buffer.batching = True


def prune(
    days: int, now: datetime.datetime, dry_run: bool = False
) -> tuple[int, datetime.datetime]:
    """Delete (or only count) the events older than `days` before `now`; and the cut-off."""
    cutoff = now - datetime.timedelta(days=days)
    old = AuditEvent.objects.filter(created_at__lt=cutoff)
    if dry_run:
        return old.count(), cutoff
    deleted, _ = old.delete()
    return deleted, cutoff
