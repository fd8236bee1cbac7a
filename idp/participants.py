"""Who got an assertion in which IdP session: the participants single logout must reach.

`_issue` (sso.py) records one per assertion sent in a browser or ECP sign-on. The
record goes through a buffer like the audit's (audit.Buffer): under gunicorn it is
written in the watcher's batch, so the warm sign-on path does no synchronous SQL.
Because another worker's buffer may not be written yet when a LogoutRequest
arrives, the browser views also keep a compact copy in the signed-cookie session
(`keep_in_session`); a logout plans over both (`for_session`).
"""

import datetime
import json
import threading
from dataclasses import dataclass

from django.conf import settings

from . import audit, clock
from .models import SpSession
from .signals import SESSION_INDEX

SESSION_KEY = "fedmock_participants"
MAX_IN_COOKIE = 20  # a cookie holds about 4 kB: the oldest give way (the DB keeps them all)
# Entity IDs and NameIDs may be 1024 characters each, so a count alone does not bound the
# cookie. The copy only covers records another worker has not written yet (the newest), so
# it keeps the newest that fit in this many characters of JSON (about 1 kB once compressed).
MAX_IN_COOKIE_CHARS = 1500


@dataclass(frozen=True)
class Participant:
    session_index: str
    username: str
    sp_entity_id: str
    name_id: str
    name_id_format: str = ""
    sp_name_qualifier: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.sp_entity_id, self.name_id)

    def compact(self) -> list[str]:
        return [self.sp_entity_id, self.name_id, self.name_id_format, self.sp_name_qualifier]


_buffer = audit.Buffer(SpSession)
# Always batched, not only under gunicorn as the audit is: nothing reads these rows but
# single logout and the admin, which write this process's buffer first (`flush`), so no
# sign-on, even under runserver or in tests, pays for a synchronous write.
_buffer.batching = True
# What this thread recorded since the view last took it: the view that sent the assertion
# copies it into the cookie (sso.py's steps return forms, not the participant).
_recorded = threading.local()


def record(participant: Participant, now: datetime.datetime | None = None) -> None:
    _buffer.add(
        SpSession(
            session_index=participant.session_index,
            username=participant.username,
            sp_entity_id=participant.sp_entity_id,
            name_id=participant.name_id,
            name_id_format=participant.name_id_format,
            sp_name_qualifier=participant.sp_name_qualifier,
            created_at=now or clock.now(),
        )
    )
    pending = getattr(_recorded, "participants", [])
    _recorded.participants = [*pending[-MAX_IN_COOKIE:], participant]


def flush() -> None:
    _buffer.flush()


def forget() -> None:
    """Drop what is buffered unwritten (tests: rows meant for a database that is gone)."""
    with _buffer.lock:
        _buffer.events = []
    _recorded.participants = []


def keep_in_session(session) -> None:
    """Copy what this thread just recorded for this cookie's IdP session into the cookie.

    Records of another session (an ECP sign-on earlier on this thread) are dropped: the
    session index, random per login, ties a record to its cookie.
    """
    taken, _recorded.participants = getattr(_recorded, "participants", []), []
    index = session.get(SESSION_INDEX)
    mine = [p.compact() for p in taken if index and p.session_index == index]
    if not mine:
        return
    held = session.get(SESSION_KEY, [])
    kept = [entry for entry in held if entry not in mine]
    updated = _newest_that_fit([*kept, *mine][-MAX_IN_COOKIE:])
    # Unchanged (a sign-on again to the last SP): no write, so no cookie is signed and sent.
    if updated != held:
        session[SESSION_KEY] = updated


def _newest_that_fit(entries: list[list[str]]) -> list[list[str]]:
    fitting, used = [], 0
    for entry in reversed(entries):
        used += len(json.dumps(entry))
        if used > MAX_IN_COOKIE_CHARS:
            break
        fitting.append(entry)
    return fitting[::-1]


def from_cookie(session, username: str = "") -> list[Participant]:
    index = session.get(SESSION_INDEX, "")
    found = []
    for entry in session.get(SESSION_KEY, []):
        if isinstance(entry, list) and len(entry) == 4 and all(isinstance(v, str) for v in entry):
            found.append(Participant(index, username, *entry))
    return found


def for_session(session_index: str, cookie: list[Participant] = ()) -> list[Participant]:
    """Every participant of one IdP session still open: the cookie's and the database's,
    once each (this worker's buffer written first)."""
    flush()
    rows = SpSession.objects.filter(session_index=session_index, ended_at__isnull=True)
    found: dict[tuple[str, str], Participant] = {}
    for row in rows.order_by("created_at"):
        participant = Participant(
            row.session_index,
            row.username,
            row.sp_entity_id,
            row.name_id,
            row.name_id_format,
            row.sp_name_qualifier,
        )
        found.setdefault(participant.key, participant)
    for participant in cookie:
        if participant.session_index == session_index:
            found.setdefault(participant.key, participant)
    return list(found.values())


def sessions_of(sp_entity_id: str, name_id: str) -> list[str]:
    """The open IdP sessions in which this SP got this NameID, newest first."""
    flush()
    indexes = SpSession.objects.filter(
        sp_entity_id=sp_entity_id, name_id=name_id, ended_at__isnull=True
    ).order_by("-created_at")
    return list(dict.fromkeys(indexes.values_list("session_index", flat=True)))


def end(session_index: str, now: datetime.datetime, sp_entity_id: str = "") -> None:
    rows = SpSession.objects.filter(session_index=session_index, ended_at__isnull=True)
    if sp_entity_id:
        rows = rows.filter(sp_entity_id=sp_entity_id)
    rows.update(ended_at=now)


def prune(now: datetime.datetime) -> int:
    """Records that ended, or whose IdP session's cookie has expired anyway."""
    cutoff = now - datetime.timedelta(seconds=settings.SESSION_COOKIE_AGE)
    deleted, _ = SpSession.objects.filter(created_at__lt=cutoff).delete()
    ended, _ = SpSession.objects.filter(ended_at__lt=now - datetime.timedelta(hours=1)).delete()
    return deleted + ended
