"""Per-process caches of what rarely changes: SPs, rules, groups, users' directory entries.

Every change saved through Django bumps a generation counter in the database and
empties this process's caches at once. Other processes notice the new
generation within half a second (gunicorn's watcher thread polls it, see
watcher.py), or at most once per IDP_KEY_REFRESH_SECONDS on the request path
without a watcher. So the sign-on path reads these from memory, not SQL.
"""

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from typing import TypeVar

from django.conf import settings
from django.contrib.auth.models import Group as AuthGroup
from django.db.models import F, Q
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from users.models import DirectoryEntry, Group, GroupGraph, User, UserAttribute

from .models import (
    AssertionConsumerService,
    ClaimRule,
    ConfigGeneration,
    PersistentNameID,
    ServiceProvider,
)

T = TypeVar("T")


class _ConfigCache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.generation: int | None = None
        self.checked_at = float("-inf")
        self.watched = False
        self.clear()

    def clear(self) -> None:
        # A new object rather than emptied dicts: a request that read the database
        # before the change stores its stale answer in the old tables, not the new.
        self.tables: defaultdict[str, dict] = defaultdict(dict)

    def refresh(self) -> None:
        """Drop everything if another process changed the configuration."""
        current = ConfigGeneration.current()
        with self.lock:
            if current != self.generation:
                self.clear()
                self.generation = current
            self.checked_at = time.monotonic()

    def fresh_tables(self) -> defaultdict[str, dict]:
        if not self.watched and (
            time.monotonic() - self.checked_at >= settings.IDP_KEY_REFRESH_SECONDS
        ):
            self.refresh()
        return self.tables


_cache = _ConfigCache()


def forget() -> None:
    with _cache.lock:
        _cache.clear()


refresh = _cache.refresh


def watched() -> None:
    _cache.watched = True


def _memo(table: str, key, load: Callable[[], T | None]) -> T | None:
    """The cached value, loaded once; "not found" (None) is never stored, since unknown
    keys come from outside (any issuer, any ?sp=) and remembering each would grow
    memory without bound."""
    values = _cache.fresh_tables()[table]
    if key in values:
        return values[key]
    found = load()
    if found is not None:
        values[key] = found
    return found


def service_provider(entity_id: str) -> ServiceProvider | None:
    return _memo(
        "service_providers",
        entity_id,
        lambda: (
            ServiceProvider.objects.prefetch_related("endpoints")
            .filter(entity_id=entity_id)
            .first()
        ),
    )


def rules_for(sp: ServiceProvider) -> list[ClaimRule]:
    """The enabled global SAML rules and the SP's own, in order."""
    return _memo(
        "rules",
        sp.pk,
        lambda: list(
            ClaimRule.objects.filter(Q(service_provider=sp) | Q(service_provider__isnull=True))
            .filter(enabled=True, emits=ClaimRule.Emits.SAML)
            .order_by("order", "id")
        ),
    )


def requested_rules(sp: ServiceProvider, build: Callable[[], list]) -> list:
    """claims.requested_rules for the SP: its metadata is parsed once per change."""
    return _memo("requested_rules", sp.pk, build)


def rules_for_client(client) -> list[ClaimRule]:
    """The enabled global JWT rules and the OIDC client's own, in order."""
    return _memo(
        "client_rules",
        client.pk,
        lambda: list(
            ClaimRule.objects.filter(Q(oidc_client=client) | Q(oidc_client__isnull=True))
            .filter(enabled=True, emits=ClaimRule.Emits.JWT)
            .order_by("order", "id")
        ),
    )


def group_graph() -> GroupGraph:
    return _memo("group_graph", None, GroupGraph.load)


def user(user_id) -> User | None:
    """A user by primary key, as the session names it."""
    return _memo("users", user_id, lambda: User.objects.filter(pk=user_id).first())


def directory_entry(user: User) -> DirectoryEntry:
    """What the rules read about a user; read from the database once per change."""
    return _memo("entries", user.pk, lambda: DirectoryEntry.of(user, group_graph()))


def persistent_name_id(user, sp: ServiceProvider) -> str:
    """The opaque NameID a user keeps at an SP; created once, then read from memory."""
    return _memo(
        "persistent_ids",
        (user.pk, sp.pk),
        lambda: PersistentNameID.objects.get_or_create(user=user, service_provider=sp)[0].value,
    )


_bulk = threading.local()


@contextmanager
def one_bump():
    """Bulk changes (fixture loads): the per-row signals inside count as one change.

    Deleting 10,000 users sends 10,000 post_delete signals; each bump is an UPDATE, so
    inside this block they only note that something changed, and one bump follows at
    the end (inside the caller's transaction, if any). An exception skips it: the
    caller's transaction rolls the changes back anyway.
    """
    outer = getattr(_bulk, "depth", 0)
    _bulk.depth = outer + 1
    if not outer:
        _bulk.pending = False
    try:
        yield
    finally:
        _bulk.depth = outer
    if not outer and _bulk.pending:
        bump()


def bump() -> None:
    """Record a configuration change for every process, and forget it here at once."""
    if getattr(_bulk, "depth", 0):
        _bulk.pending = True
        return
    if not ConfigGeneration.objects.filter(pk=1).update(value=F("value") + 1):
        ConfigGeneration.objects.get_or_create(pk=1, defaults={"value": 1})
    forget()


# A new persistent NameID changes nothing cached; editing or deleting one does.
# Receivers are
# connected per model: a receiver for every sender would stop Django from
# fast-deleting anything, so pruning the audit would load each row first.
_CONFIGURATION = (ServiceProvider, AssertionConsumerService, ClaimRule, Group, UserAttribute)


def configuration_saved(sender, created=False, update_fields=None, **kwargs) -> None:
    if sender is PersistentNameID and created:
        return
    if sender is User and set(update_fields or ()) == {"last_login"}:
        return  # the last_login that every sign-in writes changes nothing cached
    bump()


def configuration_deleted(sender, **kwargs) -> None:
    bump()


for _model in (*_CONFIGURATION, PersistentNameID, User):
    post_save.connect(configuration_saved, sender=_model, dispatch_uid=f"bump-{_model.__name__}")
for _model in (*_CONFIGURATION, PersistentNameID, User):
    post_delete.connect(
        configuration_deleted, sender=_model, dispatch_uid=f"bump-del-{_model.__name__}"
    )


# Staff permissions too: signed-in users come from this cache, with the permissions
# Django memoises on them, so a granted or revoked permission must drop them.
@receiver(m2m_changed, sender=Group.member_of.through)
@receiver(m2m_changed, sender=Group.members.through)
@receiver(m2m_changed, sender=User.user_permissions.through)
@receiver(m2m_changed, sender=User.groups.through)
@receiver(m2m_changed, sender=AuthGroup.permissions.through)
def group_membership_changed(sender, action, **kwargs) -> None:
    if action.startswith("post_"):
        bump()
