"""One process at a time through a start's database work: migrate, seeding, the first key.

Hosts that start at once on an empty database otherwise race: two migrates both plan every
migration and the second fails on a table or row the first made (an IntegrityError on
PostgreSQL, "table already exists" on SQLite), and two `ensure_signing_key` both see no
active key and make one each. Whoever holds the lock does the work; the others wait, then
find it done.

- PostgreSQL: a session advisory lock on a fixed key, held on a connection of its own, so
  that nothing migrate does with the default connection (its transactions, a close) can
  drop it. It is released on leaving, and by PostgreSQL if the process dies.
- SQLite: an exclusive `flock` on a file beside the database. SQLite's own lock serialises
  each transaction, not a whole migrate (tests/test_startup_lock.py shows the failure).
  The kernel releases it if the process dies.
"""

import contextlib
import fcntl
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from django.db import DEFAULT_DB_ALIAS, connections

# Any fixed 64-bit number that no other application on the same PostgreSQL uses as an
# advisory key: the first eight bytes of sha256(b"fedmock startup"), as a signed bigint.
ADVISORY_KEY = 0x38F27466F85CD358


class StartupLockError(Exception):
    """The lock cannot be taken: the message says why and what to do, in one line."""


def _say_waiting(what: str) -> None:
    print(f"Waiting for {what} (another fedmock is starting on this database)...", file=sys.stderr)


@contextlib.contextmanager
def _advisory_lock(alias: str) -> Iterator[None]:
    connection = connections.create_connection(alias)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_KEY])
            if not cursor.fetchone()[0]:
                _say_waiting(f"PostgreSQL advisory lock {ADVISORY_KEY}")
                cursor.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_KEY])
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_KEY])
    finally:
        connection.close()


def lock_file(database: str) -> Path:
    return Path(f"{database}.startup-lock")


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        raise StartupLockError(
            f"Cannot open the start-up lock {path}: {error.strerror}. "
            "The database's folder must be writable (DATABASE_URL)."
        ) from error
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _say_waiting(f"the start-up lock {path}")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the flock


@contextlib.contextmanager
def held(alias: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Hold the database's start-up lock for the duration of the block."""
    vendor = connections[alias].vendor
    name = str(connections[alias].settings_dict["NAME"] or "")
    if vendor == "postgresql":
        with _advisory_lock(alias):
            yield
    elif vendor == "sqlite" and name and name != ":memory:" and not name.startswith("file:"):
        with _file_lock(lock_file(name)):
            yield
    else:
        # An in-memory SQLite belongs to one process; another engine has no lock of ours.
        yield
