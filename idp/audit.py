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


class Buffer:
    """Model instances waiting for one bulk write. The audit's events are one; the SLO
    session records (participants.py) are another, flushed in the same watcher step."""

    def __init__(self, model) -> None:
        self.model = model
        self.lock = threading.Lock()
        self.writing = threading.Lock()  # the exit flush waits for the watcher's write
        self.events: list = []
        self.batching = False
        _buffers.append(self)

    def add(self, instance) -> None:
        """Write at once, or (batching) keep for the next flush; a full buffer flushes."""
        if not self.batching:
            instance.save()
            return
        with self.lock:
            self.events.append(instance)
            full = len(self.events) >= FLUSH_AT
        if full:
            try:
                self.flush()
            except DatabaseError:  # kept for the watcher's next try; the sign-on goes on
                logger.exception("writing %d %s rows failed", len(self.events), self.model)

    def flush(self) -> None:
        """Write what is buffered; on failure the rows go back to be written next time."""
        with self.writing:
            with self.lock:
                events, self.events = self.events, []
            if not events:
                return
            try:
                self.model.objects.bulk_create(events)
            except Exception:
                with self.lock:
                    self.events[:0] = events
                raise


_buffers: list[Buffer] = []
_buffer = Buffer(AuditEvent)


def _storable(value):
    # PostgreSQL refuses a NUL in a text column, and a web-identity token's JSON may spell
    # one (\u0000 in its sub or iss, from an unauthenticated caller): one such event would
    # fail its request, or under gunicorn fail every batched write after it.
    return value.replace("\x00", "\\x00") if isinstance(value, str) else value


def record(**fields) -> None:
    # The IdP's clock, as the response's IssueInstant: an offset moves both alike.
    fields = {name: _storable(value) for name, value in fields.items()}
    _buffer.add(AuditEvent(created_at=clock.now(), **fields))


def flush() -> None:
    """Write every buffer (the audit's first); each is tried even if one before it fails."""
    failure = None
    for buffer in _buffers:
        try:
            buffer.flush()
        except Exception as error:
            failure = failure or error
    if failure is not None:
        raise failure


def batch() -> None:
    for buffer in _buffers:
        buffer.batching = True


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
