"""Signing out for real: a signed-cookie session is revoked on the server, not just dropped.

Logout records the session's index. Every process keeps the revoked indexes in
memory, so checking a cookie costs a set lookup and no SQL. The set has its own
refresh, apart from the configuration cache: a logout must not cool every
worker's caches. The watcher thread (or, without one, the request path at most
once per IDP_KEY_REFRESH_SECONDS) reads the revocations of the last minute, so
rows committed out of id order are not missed; an hourly full reload forgets
the expired ones.
"""

import datetime
import threading
import time

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from .models import RevokedSession
from .signals import SESSION_INDEX

OVERLAP = datetime.timedelta(minutes=1)
FULL_RELOAD_SECONDS = 3600.0


class _RevokedSet:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.watched = False
        self.forget()

    def forget(self) -> None:
        self.indexes: frozenset[str] = frozenset()
        self.since: datetime.datetime | None = None  # None: the next refresh loads everything
        self.checked_at = float("-inf")
        self.loaded_at = float("-inf")

    def add(self, index: str) -> None:
        with self.lock:
            self.indexes = self.indexes | {index}

    def refresh(self) -> None:
        now, tick = timezone.now(), time.monotonic()
        rows = RevokedSession.objects.filter(expires_at__gt=now)
        full = self.since is None or tick - self.loaded_at >= FULL_RELOAD_SECONDS
        if not full:
            rows = rows.filter(revoked_at__gte=self.since)
        found = frozenset(rows.values_list("session_index", flat=True))
        with self.lock:
            self.indexes = found if full else self.indexes | found
            self.since = now - OVERLAP
            self.checked_at = tick
            if full:
                self.loaded_at = tick

    def __contains__(self, index: str) -> bool:
        if not self.watched and (
            time.monotonic() - self.checked_at >= settings.IDP_KEY_REFRESH_SECONDS
        ):
            self.refresh()
        return index in self.indexes


_revoked = _RevokedSet()
refresh = _revoked.refresh
forget = _revoked.forget


def watched() -> None:
    _revoked.watched = True


def revoke(session_index: str, username: str = "", now: datetime.datetime | None = None) -> None:
    """Refuse this session from now until its cookie would have expired anyway."""
    if not session_index:
        return
    now = now or timezone.now()
    RevokedSession.objects.get_or_create(
        session_index=session_index,
        defaults={
            "username": username,
            "revoked_at": now,
            "expires_at": now + datetime.timedelta(seconds=settings.SESSION_COOKIE_AGE),
        },
    )
    _revoked.add(session_index)


def prune(now: datetime.datetime) -> int:
    deleted, _ = RevokedSession.objects.filter(expires_at__lte=now).delete()
    return deleted


class RevokedSessionMiddleware:
    """After AuthenticationMiddleware: a revoked session's cookie signs nobody in.

    A signed-in session always carries its index (signals.py sets it at login); one
    without is from before revocation existed, could never be revoked, and is ended.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = request.session
        if SESSION_KEY in session:
            index = session.get(SESSION_INDEX)
            if not index or index in _revoked:
                session.flush()
                request.user = AnonymousUser()
        return self.get_response(request)
