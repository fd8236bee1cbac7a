import pytest

from idp import audit
from idp.models import AuditEvent


def test_batched_events_reach_the_database_on_flush(db, monkeypatch):
    monkeypatch.setattr(audit._buffer, "batching", True)
    audit.record(flow="idp-initiated", sp_entity_id="urn:x", outcome="sent", username="alice")
    assert not AuditEvent.objects.exists()
    audit.flush()
    event = AuditEvent.objects.get()
    assert event.username == "alice" and event.created_at is not None


def test_a_full_buffer_flushes_by_itself(db, monkeypatch):
    monkeypatch.setattr(audit._buffer, "batching", True)
    for _ in range(audit.FLUSH_AT):
        audit.record(flow="sp-initiated", sp_entity_id="urn:x", outcome="sent")
    assert AuditEvent.objects.count() == audit.FLUSH_AT


def test_without_batching_each_event_is_written_at_once(db):
    audit.record(flow="sp-initiated", sp_entity_id="urn:x", outcome="refused")
    assert AuditEvent.objects.count() == 1


def test_a_failed_write_keeps_the_events(db, monkeypatch):
    from django.db import DatabaseError

    monkeypatch.setattr(audit._buffer, "batching", True)
    audit.record(flow="sp-initiated", sp_entity_id="urn:x", outcome="sent")

    def locked(*args, **kwargs):
        raise DatabaseError("database is locked")

    monkeypatch.setattr(AuditEvent.objects, "bulk_create", locked)
    with pytest.raises(DatabaseError):
        audit.flush()
    monkeypatch.undo()
    monkeypatch.setattr(audit._buffer, "batching", True)
    audit.flush()
    assert AuditEvent.objects.count() == 1
