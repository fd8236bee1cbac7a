"""Issue 13 part P: hosts that start at once on an empty database (`manage.py bootstrap`).

Each engine the suite can reach: SQLite always, PostgreSQL when TEST_DATABASE_URL is set
(`make test-postgres`). Keys on disk are still per host in this part, so the hosts here
share IDP_CERTS_DIR; what is checked is the database's state.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from . import databases

ROOT = Path(__file__).resolve().parent.parent
MANAGE = [sys.executable, str(ROOT / "manage.py")]
PATIENCE = 180  # seconds: migrate on a loaded 2-core machine, several processes at once

ENGINES = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(
            not databases.on_postgres(), reason="TEST_DATABASE_URL is not set (make test-postgres)"
        ),
    ),
]


@pytest.fixture(params=ENGINES)
def empty_database(request, tmp_path):
    """(engine, the URL of an empty database of that engine)."""
    if request.param == "sqlite":
        yield request.param, f"sqlite:///{tmp_path / 'db.sqlite3'}"
        return
    url = databases.fresh_database_url(tmp_path)
    yield request.param, url
    databases.drop_database(url)


def host_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    environ = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("IDP_", "DJANGO_")) and name != "TEST_DATABASE_URL"
    }
    return {
        **environ,
        "DATABASE_URL": database_url,
        # Shared on purpose: key material is per host until keys move into the database.
        "IDP_CERTS_DIR": str(tmp_path / "certs"),
        "IDP_BASE_URL": "http://127.0.0.1:8000",
        "SECRET_KEY": "startup-lock-test",
    }


def start(env: dict[str, str], *args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [*MANAGE, *args], env=env, cwd=ROOT, text=True, stderr=subprocess.PIPE, **popen
    )


def keys_in(env: dict[str, str]) -> list[dict]:
    code = (
        "import json; from idp.models import SigningKey; "
        "print(json.dumps(list(SigningKey.objects.values('use', 'state'))))"
    )
    printed = subprocess.run(
        [*MANAGE, "shell", "-v0", "-c", code],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=PATIENCE,
    ).stdout
    return json.loads(printed)


@pytest.mark.parametrize("hosts", [2, 3])
def test_hosts_starting_at_once_on_an_empty_database_all_succeed_with_one_key(
    tmp_path, empty_database, hosts
):
    engine, url = empty_database
    env = host_env(tmp_path, url)
    starting = [start(env, "bootstrap", stdout=subprocess.PIPE) for _ in range(hosts)]
    results = [(process.wait(timeout=PATIENCE), process.communicate()) for process in starting]

    for returncode, (_, stderr) in results:
        assert returncode == 0, f"{engine}: a host failed to start:\n{stderr}"
        assert "Traceback" not in stderr
    generated = [stdout.count("Generated") for _, (stdout, _) in results]
    assert sorted(generated) == [0] * (hosts - 1) + [2], "one host makes keys, the rest use them"
    active = sorted(row["use"] for row in keys_in(env) if row["state"] == "active")
    assert active == ["jwt", "saml"], f"{engine}: one active key per use, got {active}"


def test_a_start_waits_while_another_holds_the_lock_then_finds_the_work_done(
    tmp_path, empty_database
):
    """Deterministic exclusion: a holder that lets go only when told to."""
    engine, url = empty_database
    env = host_env(tmp_path, url)
    holder = start(
        env,
        "shell",
        "-v0",
        "-c",
        "import sys\n"
        "from idp import startup_lock\n"
        "with startup_lock.held():\n"
        "    print('held', flush=True)\n"
        "    sys.stdin.read()\n",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    waiting = None
    try:
        assert holder.stdout.readline().strip() == "held", holder.stderr.read()
        waiting = start(env, "bootstrap", stdout=subprocess.PIPE)
        line = waiting.stderr.readline()
        assert line.startswith("Waiting for"), f"{engine}: {line!r}"
        assert "another fedmock is starting on this database" in line
        # It said it waits, and only the holder's exit lets it go on: still running.
        assert waiting.poll() is None, f"{engine}: bootstrap ended while the lock was held"
        holder.stdin.close()
        assert holder.wait(timeout=PATIENCE) == 0
        stdout, stderr = waiting.communicate(timeout=PATIENCE)
        assert waiting.returncode == 0, stderr
        assert "Generated signing key" in stdout
    finally:
        for process in (holder, waiting):
            if process is not None and process.poll() is None:
                process.kill()
