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
    def __init__(self, workdir: Path, workers: int = 2):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DATABASE_URL": databases.fresh_database_url(workdir),
            "IDP_CERTS_DIR": str(workdir / "certs"),
            "IDP_BASE_URL": self.url,
            "SECRET_KEY": "concurrency-test",
            "PORT": str(self.port),
            "WEB_CONCURRENCY": str(workers),
            "ACCESS_LOG": str(workdir / "access.log"),
        }
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
        self.env.pop("TEST_DATABASE_URL", None)
        self.log = workdir / "gunicorn.log"
        self.process: subprocess.Popen | None = None

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            env=self.env,
            cwd=ROOT,
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
            cwd=ROOT,
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

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=15)
            self.process = None
        databases.drop_database(self.env["DATABASE_URL"])
