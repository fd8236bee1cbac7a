"""Issue 13 part P: DATABASE_URL for PostgreSQL, and TEST_DATABASE_URL only under pytest.

Each case is a fresh process, as a host or a command run by hand reads its environment;
Django never connects here, so no server is needed.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PRINT_DEFAULT = (
    "import json, django; django.setup(); from django.conf import settings; "
    "d = settings.DATABASES['default']; "
    "print(json.dumps({k: d.get(k) for k in "
    "('ENGINE', 'NAME', 'HOST', 'PORT', 'USER', 'CONN_MAX_AGE', 'CONN_HEALTH_CHECKS')}))"
)


def default_database(tmp_path: Path, *, under_pytest: bool = False, **environ: str) -> dict:
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "idp.settings",
        "SECRET_KEY": "test",
        "IDP_CERTS_DIR": str(tmp_path / "certs"),
        **environ,
    }
    code = ("import pytest; " if under_pytest else "") + PRINT_DEFAULT
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgres://fedmock:secret@db.example.internal:5433/idp",
            {"HOST": "db.example.internal", "PORT": 5433, "NAME": "idp", "USER": "fedmock"},
        ),
        (
            "postgresql://fedmock@%2Fvar%2Frun%2Fpostgresql:5432/fedmock",
            {"HOST": "/var/run/postgresql", "PORT": 5432, "NAME": "fedmock"},
        ),
    ],
)
def test_a_postgres_url_selects_psycopg_with_persistent_checked_connections(
    tmp_path, url, expected
):
    database = default_database(tmp_path, DATABASE_URL=url)
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert database["CONN_MAX_AGE"] == 600
    assert database["CONN_HEALTH_CHECKS"] is True
    assert {key: database[key] for key in expected} == expected


def test_the_driver_is_installed_with_the_package():
    """The issue's first failure: "Error loading psycopg2 or psycopg module"."""
    import psycopg

    assert psycopg.pq.__impl__ == "binary", "the binary wheel brings its own libpq"


@pytest.mark.parametrize(
    ("under_pytest", "engine"),
    [(False, "django.db.backends.sqlite3"), (True, "django.db.backends.postgresql")],
)
def test_test_database_url_is_read_under_pytest_only(tmp_path, under_pytest, engine):
    """A TEST_DATABASE_URL left in a shell never moves a server or a command off DATABASE_URL."""
    database = default_database(
        tmp_path,
        under_pytest=under_pytest,
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        TEST_DATABASE_URL="postgres://fedmock@%2Ftmp%2Fcluster:5999/fedmock",
    )
    assert database["ENGINE"] == engine


def test_bootstrap_on_an_unreachable_database_fails_in_one_line_without_the_password(tmp_path):
    env = {
        "PATH": os.environ["PATH"],
        "SECRET_KEY": "test",
        "IDP_CERTS_DIR": str(tmp_path / "certs"),
        "DATABASE_URL": "postgres://fedmock:s3cret-pw@127.0.0.1:1/fedmock",  # nothing listens
    }
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "bootstrap"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "s3cret-pw" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "postgresql database fedmock on 127.0.0.1:1" in lines[0]
    assert "DATABASE_URL" in lines[0]
