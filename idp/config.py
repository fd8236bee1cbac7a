"""Per-process caches of what rarely changes: SPs, rules, groups, users' directory entries.

Every change saved through Django bumps a generation counter in the database and
empties this process's caches at once. Other processes notice the new
generation within half a second (gunicorn's watcher thread polls it, see
watcher.py), or at most once per IDP_KEY_REFRESH_SECONDS on the request path
without a watcher. So the sign-on path reads these from memory, not SQL.
"""

import threading
import time

from django.conf import settings
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


class _ConfigCache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.generation: int | None = None
        self.checked_at = float("-inf")
        self.watched = False
        self.clear()

    def clear(self) -> None:
        self.service_providers: dict[str, ServiceProvider | None] = {}
        self.rules: dict[int, list[ClaimRule]] = {}
        self.group_graph: GroupGraph | None = None
        self.persistent_ids: dict[tuple[int, int], str] = {}
        self.entries: dict[int, DirectoryEntry] = {}
        self.users: dict[object, User | None] = {}

    def refresh(self) -> None:
        """Drop everything if another process changed the configuration."""
        current = ConfigGeneration.current()
        with self.lock:
            if current != self.generation:
                self.clear()
                self.generation = current
            self.checked_at = time.monotonic()

    def fresh(self) -> "_ConfigCache":
        if not self.watched and (
            time.monotonic() - self.checked_at >= settings.IDP_KEY_REFRESH_SECONDS
        ):
            self.refresh()
        return self


_cache = _ConfigCache()


def forget() -> None:
    with _cache.lock:
        _cache.clear()


refresh = _cache.refresh


def watched() -> None:
    _cache.watched = True


def service_provider(entity_id: str) -> ServiceProvider | None:
    cache = _cache.fresh()
    if entity_id not in cache.service_providers:
        cache.service_providers[entity_id] = (
            ServiceProvider.objects.prefetch_related("endpoints")
            .filter(entity_id=entity_id)
            .first()
        )
    return cache.service_providers[entity_id]


def rules_for(sp: ServiceProvider) -> list[ClaimRule]:
    """The enabled global rules and the SP's own, in order."""
    cache = _cache.fresh()
    if sp.pk not in cache.rules:
        cache.rules[sp.pk] = list(
            ClaimRule.objects.filter(Q(service_provider=sp) | Q(service_provider__isnull=True))
            .filter(enabled=True)
            .order_by("order", "id")
        )
    return cache.rules[sp.pk]


def group_graph() -> GroupGraph:
    cache = _cache.fresh()
    if cache.group_graph is None:
        cache.group_graph = GroupGraph.load()
    return cache.group_graph


def user(user_id) -> User | None:
    """A user by primary key, as the session names it."""
    cache = _cache.fresh()
    if user_id not in cache.users:
        cache.users[user_id] = User.objects.filter(pk=user_id).first()
    return cache.users[user_id]


def directory_entry(user: User) -> DirectoryEntry:
    """What the rules read about a user; read from the database once per change."""
    cache = _cache.fresh()
    if user.pk not in cache.entries:
        cache.entries[user.pk] = DirectoryEntry.of(user, group_graph())
    return cache.entries[user.pk]


def persistent_name_id(user, sp: ServiceProvider) -> str:
    """The opaque NameID a user keeps at an SP; created once, then read from memory."""
    cache = _cache.fresh()
    key = (user.pk, sp.pk)
    if key not in cache.persistent_ids:
        persistent, _ = PersistentNameID.objects.get_or_create(user=user, service_provider=sp)
        cache.persistent_ids[key] = persistent.value
    return cache.persistent_ids[key]


def bump() -> None:
    """Record a configuration change for every process, and forget it here at once."""
    if not ConfigGeneration.objects.filter(pk=1).update(value=F("value") + 1):
        ConfigGeneration.objects.get_or_create(pk=1)
    forget()


# A new persistent NameID changes nothing cached; deleting one does.
_SAVES = (ServiceProvider, AssertionConsumerService, ClaimRule, Group, UserAttribute)
_DELETES = (*_SAVES, PersistentNameID, User)


@receiver(post_save)
def configuration_saved(sender, update_fields=None, **kwargs) -> None:
    if sender in _SAVES:
        bump()
    elif sender is User and set(update_fields or ()) != {"last_login"}:
        bump()  # but not for the last_login that every sign-in writes


@receiver(post_delete)
def configuration_deleted(sender, **kwargs) -> None:
    if sender in _DELETES:
        bump()


@receiver(m2m_changed, sender=Group.member_of.through)
@receiver(m2m_changed, sender=Group.members.through)
def group_membership_changed(sender, action, **kwargs) -> None:
    if action.startswith("post_"):
        bump()
