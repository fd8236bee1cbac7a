"""The suite's database: SQLite by default, PostgreSQL when TEST_DATABASE_URL is set.

`scripts/with-postgres` (`make test-postgres`) sets TEST_DATABASE_URL to a throw-away
cluster. idp/settings.py reads it under pytest, and pytest-django creates test_<name> on that
server for the in-process tests,
and each server a test starts in a subprocess (gunicorn, `manage.py`) gets a fresh database
of its own on the same server, as it gets a fresh SQLite file by default.
"""

import os
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")


def on_postgres() -> bool:
    return bool(TEST_DATABASE_URL)


def _server_connection():
    import psycopg

    server = dj_database_url.parse(TEST_DATABASE_URL)
    return psycopg.connect(
        dbname="postgres",
        user=server["USER"] or None,
        password=server["PASSWORD"] or None,
        host=server["HOST"] or None,
        port=server["PORT"] or None,
        autocommit=True,
    )


def fresh_database_url(workdir: Path) -> str:
    """An empty database for a server started by a test: a SQLite file in `workdir`, or a new
    database on TEST_DATABASE_URL's server (dropped by `drop_database`)."""
    if not TEST_DATABASE_URL:
        return f"sqlite:///{workdir / 'db.sqlite3'}"
    name = f"fedmock_{uuid.uuid4().hex[:12]}"
    with _server_connection() as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return urlsplit(TEST_DATABASE_URL)._replace(path=f"/{name}").geturl()


def drop_database(url: str) -> None:
    """Drop a database made by `fresh_database_url` (SQLite files go with the tmp_path)."""
    if not url.startswith("postgres"):
        return
    name = dj_database_url.parse(url)["NAME"]
    with _server_connection() as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
