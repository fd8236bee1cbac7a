"""gunicorn settings for `make run`: a worker per core (at least two), each watching the keys."""

import multiprocessing
import os

bind = f"127.0.0.1:{os.environ.get('PORT', '8000')}"
# At least two: fedmock calls itself (the broker's AssumeRole goes to its own /aws/, and
# getSigninToken to /aws/federation), and a lone sync worker would wait for itself.
workers = int(os.environ.get("WEB_CONCURRENCY") or max(2, multiprocessing.cpu_count()))
accesslog = os.environ.get("ACCESS_LOG", "-")
# The access log's line without gunicorn's per-request dict of every header and environ
# variable, and with the duration (idp/access_log.py); ACCESS_LOG= (empty) turns it off.
logger_class = "idp.access_log.AccessLogger"
loglevel = "warning"
# Sync workers by default: `make bench` measured gthread (4 threads) slower on the SQLite
# writes of SP-initiated sign-on (260 against 445 req/s at 16 connections, one run each).
# GUNICORN_THREADS > 1 lets many brokered sign-ins run at once (gunicorn then uses gthread).
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
threads = int(os.environ.get("GUNICORN_THREADS") or 1)


def post_worker_init(worker):
    # Each worker parses keys and refills its caches in a background thread, never
    # on the request path, and sees a rotation or a change within a second.
    from idp import watcher

    watcher.start()


def worker_exit(server, worker):
    from idp import audit, workers

    audit.flush()
    # A rollover step no longer waits for this worker's acknowledgement.
    workers.stop()
