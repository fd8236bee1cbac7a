"""Issue 13 part P: hosts that start at once on an empty database (`manage.py bootstrap`).

Each engine the suite can reach: SQLite always, PostgreSQL when TEST_DATABASE_URL is set
(`make test-postgres`). Each host has its own IDP_CERTS_DIR, as real hosts have, and the
same IDP_KEY_ENCRYPTION_KEY: the keys live in the database, so all must end signing with
the one key per use that the first made.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

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


# Shared by every host of one database, as SECRET_KEY is; never the checkout's own file.
KEK = Fernet.generate_key().decode()


def host_env(tmp_path: Path, database_url: str, host: str = "a") -> dict[str, str]:
    environ = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("IDP_", "DJANGO_")) and name != "TEST_DATABASE_URL"
    }
    return {
        **environ,
        "DATABASE_URL": database_url,
        "IDP_CERTS_DIR": str(tmp_path / host / "certs"),  # each host its own, as on real hosts
        "IDP_KEY_ENCRYPTION_KEY": KEK,
        "IDP_BASE_URL": "http://127.0.0.1:8000",
        "SECRET_KEY": "startup-lock-test",
    }


def start(env: dict[str, str], *args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [*MANAGE, *args], env=env, cwd=ROOT, text=True, stderr=subprocess.PIPE, **popen
    )


def shell(env: dict[str, str], code: str):
    """What `code` prints as JSON, run by the host of `env`."""
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


def keys_in(env: dict[str, str]) -> list[dict]:
    return shell(
        env,
        "import json; from idp.models import SigningKey; "
        "print(json.dumps(list(SigningKey.objects.values('use', 'state', 'fingerprint'))))",
    )


def signing_with(env: dict[str, str]) -> dict[str, str]:
    """The fingerprint each use signs with on the host of `env`: its keys, decrypted."""
    return shell(
        env,
        "import json; from idp import keys; "
        "print(json.dumps({use: keys.active_key(use).fingerprint for use in keys.Use.values}))",
    )


@pytest.mark.parametrize("hosts", [2, 3])
def test_hosts_starting_at_once_on_an_empty_database_all_succeed_with_one_key(
    tmp_path, empty_database, hosts
):
    engine, url = empty_database
    envs = [host_env(tmp_path, url, host=f"host{number}") for number in range(hosts)]
    starting = [start(env, "bootstrap", stdout=subprocess.PIPE) for env in envs]
    results = [(process.wait(timeout=PATIENCE), process.communicate()) for process in starting]

    for returncode, (_, stderr) in results:
        assert returncode == 0, f"{engine}: a host failed to start:\n{stderr}"
        assert "Traceback" not in stderr
    generated = [stdout.count("Generated") for _, (stdout, _) in results]
    assert sorted(generated) == [0] * (hosts - 1) + [2], "one host makes keys, the rest use them"
    rows = keys_in(envs[0])
    active = {row["use"]: row["fingerprint"] for row in rows if row["state"] == "active"}
    assert len(rows) == 2 and sorted(active) == ["jwt", "saml"], (
        f"{engine}: one key per use, and it active, got {rows}"
    )
    for env, (_, (stdout, _)) in zip(envs, results, strict=True):
        # Every host reports the one key, signs with it from the database, and wrote no file.
        assert all(fingerprint in stdout for fingerprint in active.values()), stdout
        assert signing_with(env) == active, f"{engine}: {env['IDP_CERTS_DIR']}"
        assert not list(Path(env["IDP_CERTS_DIR"]).glob("*"))


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
