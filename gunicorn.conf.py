"""gunicorn settings for `make run`: one worker per core, each watching the signing keys."""

import multiprocessing
import os

bind = f"127.0.0.1:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY") or multiprocessing.cpu_count())
accesslog = os.environ.get("ACCESS_LOG", "-")
loglevel = "warning"
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
# Threads, because fedmock calls itself: the broker's AssumeRole goes to its own /aws/ and
# getSigninToken to its own /aws/federation, and a worker of one thread waits for itself
# (with one worker per core, a one-core machine could never broker). The code shared
# between threads is already locked for the watcher thread (caches, keys, audit, IAM state).
threads = int(os.environ.get("GUNICORN_THREADS") or 4)


def post_worker_init(worker):
    # Each worker parses keys and refills its caches in a background thread, never
    # on the request path, and sees a rotation or a change within a second.
    from idp import watcher

    watcher.start()


def worker_exit(server, worker):
    from idp import audit

    audit.flush()
