"""fedmock as `make run` serves it: gunicorn with several workers, on its own database
(a SQLite file, or a fresh PostgreSQL database under TEST_DATABASE_URL: tests/databases.py)."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from . import databases

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class GunicornServer:
    """`tree` is the project's working tree the host runs from (another copy makes another
    host: tests/test_issue13_replicas_e2e.py)."""

    def __init__(self, workdir: Path, workers: int = 2, tree: Path = ROOT, database_url: str = ""):
        """`database_url`: another host's database, shared (default: a fresh one)."""
        self.tree = tree
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url or databases.fresh_database_url(workdir),
            "IDP_CERTS_DIR": str(workdir / "certs"),
            "IDP_BASE_URL": self.url,
            "SECRET_KEY": "concurrency-test",
            "PORT": str(self.port),
            "WEB_CONCURRENCY": str(workers),
            "ACCESS_LOG": str(workdir / "access.log"),
            # Its own tree's code, not the one the virtualenv's editable install names.
            "PYTHONPATH": str(tree),
        }
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
        self.env.pop("TEST_DATABASE_URL", None)
        self.log = workdir / "gunicorn.log"
        self.process: subprocess.Popen | None = None

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, str(self.tree / "manage.py"), *args],
            env=self.env,
            cwd=self.tree,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        return result.stdout

    def start(self) -> "GunicornServer":
        self.manage("bootstrap")  # as `make run`: migrate, seed_demo, ensure_signing_key
        gunicorn = Path(sys.executable).with_name("gunicorn")
        self.process = subprocess.Popen(
            [str(gunicorn), "-c", "gunicorn.conf.py", "idp.wsgi:application"],
            env=self.env,
            cwd=self.tree,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )
        # A loaded 2-core machine can take seconds over a worker's first request (imports,
        # key load): a slow answer is waited for, not an error, and a server that never
        # answers is stopped rather than left running.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/saml/metadata/", timeout=15).status_code == 200:
                    return self
            except requests.RequestException:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn did not start:\n{self.log.read_text()}")

    def stop(self, keep_database: bool = False) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=15)
            self.process = None
        if not keep_database:
            databases.drop_database(self.env["DATABASE_URL"])
