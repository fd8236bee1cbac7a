"""One thread per worker process: fresh signing keys and config cache, batched audit writes.

gunicorn's post_worker_init starts it (gunicorn.conf.py), so that keys are
parsed and caches refilled off the request path, and every worker follows a
key rotation or a configuration change within a second.
"""

import logging
import threading
import time

from django.conf import settings
from django.db import close_old_connections

from . import audit, config, keys

logger = logging.getLogger("fedmock.watcher")


def _refresh() -> None:
    keys.refresh_keys()
    config.refresh()
    audit.flush()


def start(interval: float | None = None) -> threading.Thread:
    interval = interval or settings.IDP_KEY_REFRESH_SECONDS / 2

    def watch() -> None:
        while True:
            time.sleep(interval)
            try:
                _refresh()
            except Exception:  # a bad key file must not stop the thread; requests report it
                logger.exception("refreshing keys or configuration failed")
            finally:
                close_old_connections()

    _refresh()
    keys.watched()
    config.watched()
    audit.batch()
    thread = threading.Thread(target=watch, name="fedmock-watcher", daemon=True)
    thread.start()
    return thread
