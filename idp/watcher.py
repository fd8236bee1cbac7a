"""One thread per worker process: fresh signing keys and caches, heartbeats, batched audit
writes.

gunicorn's post_worker_init starts it (gunicorn.conf.py), so that keys are
parsed and caches refilled off the request path, and every worker follows a
key rotation or a configuration change within a second, and reports the keys it loaded
(workers.py) so that the next rollover step knows it may go ahead.
"""

import logging
import threading
import time

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from . import audit, cache, clock, keys, participants, replay, sessions, slo, workers
from .saml.errors import SamlError
from .sts import state as sts_state

logger = logging.getLogger("fedmock.watcher")


PRUNE_EVERY_SECONDS = 60.0
_last_prune = float("-inf")


def prune_expired() -> None:
    """Drop answered-request claims, session revocations, SLO session records and logout
    rounds, and STS credentials that can no longer matter."""
    global _last_prune
    if time.monotonic() - _last_prune < PRUNE_EVERY_SECONDS:
        return
    _last_prune = time.monotonic()
    now = timezone.now()
    replay.prune(now)
    sessions.prune(now)
    participants.prune(clock.now())  # stamped on the IdP's clock, as the audit is
    slo.prune(clock.now())
    # Their expiry was stamped on the IdP's clock (IDP_CLOCK_OFFSET), so judged by it.
    sts_state.prune_credentials(clock.now())
    workers.prune()


# Each step's last failure, so that a lasting one (a wrong IDP_KEY_ENCRYPTION_KEY) is logged
# once per change, not twice a second.
_failures: dict[str, str] = {}


def report_keys() -> None:
    """The heartbeat: what this worker loaded, and why not when refresh_keys failed."""
    workers.beat(keys.loaded_key_sets(), _failures.get(keys.refresh_keys.__qualname__, ""))


def _refresh() -> None:
    """Each step on its own: a key gone bad must not stop the caches or the audit."""
    steps = (
        keys.refresh_keys,
        report_keys,
        cache.refresh,
        sessions.refresh,
        audit.flush,
        prune_expired,
    )
    for step in steps:
        name = step.__qualname__
        try:
            step()
        except SamlError as error:  # a known problem, whose message says what to do
            _failed(name, f"{error} {error.hint}".strip(), traceback=False)
        except Exception as error:
            _failed(name, f"{type(error).__name__}: {error}", traceback=True)
        else:
            if _failures.pop(name, None) is not None:
                logger.warning("%s works again", name)


def _failed(name: str, message: str, traceback: bool) -> None:
    if _failures.get(name) == message:
        return
    _failures[name] = message
    logger.error("%s failed: %s", name, message, exc_info=traceback)


def start(interval: float | None = None) -> threading.Thread:
    interval = interval or settings.IDP_KEY_REFRESH_SECONDS / 2

    def watch() -> None:
        while True:
            time.sleep(interval)
            _refresh()
            close_old_connections()

    _refresh()
    keys.watched()
    cache.watched()
    sessions.watched()
    audit.batch()
    thread = threading.Thread(target=watch, name="fedmock-watcher", daemon=True)
    thread.start()
    return thread
