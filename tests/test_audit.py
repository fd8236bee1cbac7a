import datetime
import io

import pytest
from django.core.management import CommandError, call_command

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


# --- retention ------------------------------------------------------------------------

NOW = datetime.datetime(2026, 11, 21, 12, 0, tzinfo=datetime.UTC)


def events_aged(*days: float) -> None:
    AuditEvent.objects.bulk_create(
        AuditEvent(
            created_at=NOW - datetime.timedelta(days=age),
            flow="sp-initiated",
            sp_entity_id="urn:x",
            outcome="sent",
            detail=str(age),
        )
        for age in days
    )


def prune(*args, now=NOW) -> str:
    out = io.StringIO()
    call_command("prune_audit", *args, now=now, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("args", "setting", "kept", "said"),
    [
        ((), None, ["0", "89.9"], "Deleted 2 audit events from before 2026-08-23 12:00Z"),
        ((), 30, ["0"], "Deleted 3 audit events"),
        (("--days", "1"), None, ["0"], "(keeping 1 days)"),
        (("--days", "365"), 1, ["0", "89.9", "90.1"], "Deleted 1 audit event from before 2025-"),
        (("--dry-run",), None, ["0", "89.9", "90.1", "400"], "Would delete 2 audit events"),
    ],
    ids=["default 90 days", "IDP_AUDIT_RETENTION_DAYS", "--days", "--days wins", "--dry-run"],
)
def test_prune_audit_keeps_the_retention_period(db, settings, args, setting, kept, said):
    if setting is not None:
        settings.IDP_AUDIT_RETENTION_DAYS = setting
    events_aged(0, 89.9, 90.1, 400)
    output = prune(*args)
    assert said in output
    assert sorted(AuditEvent.objects.values_list("detail", flat=True), key=float) == kept


@pytest.mark.parametrize("days", ["0", "-5", "ninety", "99999999"])
def test_prune_audit_refuses_a_bad_period_in_one_line(db, days):
    events_aged(400)
    with pytest.raises(CommandError) as error:
        prune("--days", days)
    assert "\n" not in str(error.value)
    assert AuditEvent.objects.count() == 1
