"""Two fedmock checkouts side by side: IdP-initiated sign-on over HTTP, the load alternating.

    .venv/bin/python bench/ab_compare.py OLD_CHECKOUT NEW_CHECKOUT [--rounds 5] [--seconds 5]

Each checkout is served as `make run` serves it (gunicorn.conf.py, its bootstrap, the access
log on, to a file here), on its own SQLite database, certs and port. Then wrk loads one
server, then the other, round by round, at 16 connections; on a small, shared machine only
the ratio within a round means anything, so the median of those ratios is the result.
"""

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.agents import Browser  # noqa: E402
from tests.live_server import free_port  # noqa: E402

ROLE = "arn:aws:iam::111122223333:role/Admin"


class Server:
    """One checkout under gunicorn, its code first on the path (not the editable install's)."""

    def __init__(self, checkout: Path, workdir: Path, workers: int):
        self.checkout = checkout
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True)
        self.env = {
            **os.environ,
            "PYTHONPATH": str(checkout),
            "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
            "IDP_CERTS_DIR": str(workdir / "certs"),
            "IDP_BASE_URL": self.url,
            "SECRET_KEY": "ab-compare",
            "PORT": str(self.port),
            "WEB_CONCURRENCY": str(workers),
            "ACCESS_LOG": str(workdir / "access.log"),
        }
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
        self.log = workdir / "gunicorn.log"
        subprocess.run(
            [sys.executable, "manage.py", "bootstrap"],
            env=self.env,
            cwd=checkout,
            check=True,
            capture_output=True,
            timeout=300,
        )
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("gunicorn")), "-c", "gunicorn.conf.py"]
            + ["idp.wsgi:application"],
            env=self.env,
            cwd=checkout,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/saml/metadata/", timeout=15).ok:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        else:
            self.stop()
            raise SystemExit(f"ab_compare: {checkout} did not start:\n{self.log.read_text()}")
        browser = Browser(self.url)
        browser.sign_in("alice")
        self.cookie = "; ".join(f"{k}={v}" for k, v in browser.session.cookies.items())
        self.sign_on = f"{self.url}/saml/init/?sp=urn:amazon:webservices&role={quote(ROLE)}"
        if 'name="SAMLResponse"' not in browser.get(self.sign_on).text:
            raise SystemExit(f"ab_compare: {checkout} sends no SAMLResponse to alice")

    def cpu_seconds(self) -> float:
        """User and system CPU of the workers so far: per request, steadier than a rate on
        a machine that others load too."""
        master = self.process.pid
        total = 0
        for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split():
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def wrk(server: Server, connections: int, seconds: int) -> tuple[float, float, int]:
    """Requests per second, worker CPU milliseconds per request, and the replies that
    were not a SAML form."""
    cpu_before = server.cpu_seconds()
    output = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s"]
        + ["-s", str(ROOT / "bench" / "count_saml.lua"), "-H", f"Cookie: {server.cookie}"]
        + [server.sign_on],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if found is None:
        raise SystemExit(f"ab_compare: wrk printed no rate; its output was:\n{output}")
    cpu = server.cpu_seconds() - cpu_before
    served = int(re.search(r"saml_replies=(\d+)", output)[1])
    other = int(re.search(r"other_replies=(\d+)", output)[1])
    return float(found[1]), cpu * 1000 / max(1, served + other), other


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=max(2, os.cpu_count() or 2))
    arguments = parser.parse_args()
    # A kill stops the servers too (the finally below), not only this process.
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(1))
    workdir = Path(tempfile.mkdtemp(prefix="fedmock-ab-"))
    servers = []
    try:
        for name, checkout in (("old", arguments.old), ("new", arguments.new)):
            servers.append(Server(checkout.resolve(), workdir / name, arguments.workers))
        old, new = servers
        for server in servers:  # warm both before the first measured round
            wrk(server, arguments.connections, 2)
        ratios, cpu_ratios = [], []
        for round_number in range(arguments.rounds):
            # Alternate which goes first, so neither always runs on a cooler machine.
            order = (old, new) if round_number % 2 == 0 else (new, old)
            rates, cpu = {}, {}
            for server in order:
                rates[server], cpu[server], errors = wrk(
                    server, arguments.connections, arguments.seconds
                )
                if errors:
                    raise SystemExit(f"ab_compare: {errors} non-SAML replies from {server.url}")
            ratios.append(rates[new] / rates[old])
            cpu_ratios.append(cpu[old] / cpu[new])
            print(
                f"round {round_number + 1}: old {rates[old]:7.1f}/s {cpu[old]:.2f} ms CPU  "
                f"new {rates[new]:7.1f}/s {cpu[new]:.2f} ms CPU  new/old {ratios[-1]:.3f} "
                f"(CPU per request old/new {cpu_ratios[-1]:.3f})",
                flush=True,
            )
        print(
            f"median new/old over {len(ratios)} rounds: {statistics.median(ratios):.3f} "
            f"requests/s, {statistics.median(cpu_ratios):.3f} by worker CPU per request"
        )
    finally:
        for server in servers:
            server.stop()


if __name__ == "__main__":
    main()
