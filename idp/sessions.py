"""Signing out for real: a signed-cookie session is revoked on the server, not just dropped.

Logout records the session's index; every worker keeps the revoked indexes in its
per-process cache (refreshed like the rest of it, see cache.py), so checking a
cookie costs a set lookup and no SQL.
"""

import datetime

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from . import cache
from .models import RevokedSession
from .signals import SESSION_INDEX


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


def prune(now: datetime.datetime) -> int:
    deleted, _ = RevokedSession.objects.filter(expires_at__lte=now).delete()
    return deleted


class RevokedSessionMiddleware:
    """After AuthenticationMiddleware: a revoked session's cookie signs nobody in."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        index = request.session.get(SESSION_INDEX)
        if index and index in cache.revoked_sessions():
            request.session.flush()
            request.user = AnonymousUser()
        return self.get_response(request)
