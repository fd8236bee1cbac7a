"""pytest plugin for projects that test against fedmock: a live IdP per test session.

Installed with fedmock through the `pytest11` entry point, so pytest loads this module in
every run of every project in the environment, fedmock's own included. It must therefore
import neither Django nor fedmock's settings: the server runs in subprocesses with their
own environment, and the project under test may be a Django project with settings of its
own. `requests` is imported only when a test asks for the fixture.

    def test_alice_reaches_aws(fedmock):
        minted = fedmock.mint("alice", "urn:amazon:webservices",
                              role="arn:aws:iam::111122223333:role/Admin")
        assert minted["acs_url"] == "https://signin.aws.amazon.com/saml"

Options: --fedmock-fixtures FILE (or the ini option fedmock_fixtures; default: the demo
directory), fedmock_clock_offset (seconds, IDP_CLOCK_OFFSET), fedmock_start_timeout
(seconds, default 180), fedmock_workers (gunicorn workers, default 1).
"""

from __future__ import annotations

import base64
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest

ROOT = Path(__file__).resolve().parent.parent  # where manage.py and gunicorn.conf.py live
# idp.fixtures.DEMO, without importing Django to read it
DEMO_FIXTURES = Path(__file__).resolve().parent / "fixture_data" / "demo.yaml"
API_USER = "fedmock-pytest"  # the staff superuser that owns the API token
# Generous: migrate and a fixture load on a busy 2-core CI machine take tens of seconds.
START_TIMEOUT = 180.0
GUNICORN_ARGS = ("-c", "gunicorn.conf.py", "idp.wsgi:application")  # as `make run`


class FedmockError(Exception):
    """fedmock's API refused a call; the message is the API's own title, message and hint."""

    def __init__(self, status: int, title: str, message: str, hint: str = "", body: Any = None):
        self.status = status
        self.title = title
        self.message = message
        self.hint = hint
        self.body = body  # the whole JSON answer, findings and fields included
        text = f"fedmock answered {status} {title}: {message}"
        super().__init__(f"{text} (how to fix it: {hint})" if hint else text)


class FedmockStartError(Exception):
    """fedmock could not be started; the message carries the failing step's output."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fedmock", "a live fedmock IdP (the fedmock fixture)")
    group.addoption(
        "--fedmock-fixtures",
        metavar="FILE",
        help="fixture file (YAML or JSON) the fedmock fixture loads; default: the demo directory",
    )
    parser.addini("fedmock_fixtures", "fixture file for the fedmock fixture, relative to the ini")
    parser.addini("fedmock_clock_offset", "IDP_CLOCK_OFFSET of the fedmock fixture, in seconds")
    parser.addini(
        "fedmock_start_timeout", f"seconds fedmock may take to start (default {START_TIMEOUT:g})"
    )
    parser.addini("fedmock_workers", "gunicorn workers of the fedmock fixture (default 1)")


def _fixture_file(config: pytest.Config) -> Path:
    given = config.getoption("fedmock_fixtures")
    if given:
        return Path(config.invocation_params.dir, given).resolve()
    given = config.getini("fedmock_fixtures")
    if given:
        return Path(config.inipath.parent if config.inipath else config.rootpath, given).resolve()
    return DEMO_FIXTURES


def _number(config: pytest.Config, name: str, default: float, parse=float) -> Any:
    text = str(config.getini(name) or "").strip()
    if not text:
        return default
    try:
        return parse(text)
    except ValueError:
        raise pytest.UsageError(f"ini option {name} = {text!r} is not a number") from None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Fedmock:
    """A running fedmock: its URLs and metadata, an API client, mint() and reset()."""

    def __init__(self, base_url: str, token: str, metadata: bytes):
        self.base_url = base_url
        self.metadata_url = f"{base_url}/saml/metadata/"
        self.entity_id = self.metadata_url
        self.sso_url = f"{base_url}/saml/sso/"
        self.metadata = metadata
        # Relative URLs start at /api/v1/: api.get("users"), or api.get("/api/v1/users").
        self.api = _api_session(f"{base_url}/api/v1/", token)

    def mint(
        self,
        user: str,
        sp: str,
        role: str | None = None,
        scenario: str | None = None,
        **more: Any,
    ) -> dict:
        """POST /api/v1/sign-ons: a signed response for `user` at `sp`, as the browser gets it.

        `more` passes relay_state, in_response_to or now (ISO 8601) through. Returns the
        API's JSON: saml_response, acs_url, relay_state, xml, findings, scenario.
        """
        body = {"user": user, "sp": sp, **more}
        if role is not None:
            body["role"] = role
        if scenario is not None:
            body["scenario"] = scenario
        return self._json(self.api.post("sign-ons", json=body))

    def reset(self) -> dict:
        """POST /api/v1/reset: the directory and SPs as the fixture file loaded them."""
        return self._json(self.api.post("reset"))

    @staticmethod
    def _json(response) -> dict:
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            if not isinstance(body, dict):
                raise FedmockError(response.status_code, response.reason, response.text[:500])
            raise FedmockError(
                response.status_code,
                str(body.get("title", response.reason)),
                str(body.get("message", "")),
                str(body.get("hint", "")),
                body,
            )
        return body if body is not None else {}


def _api_session(root: str, token: str):
    """A requests.Session with the bearer token, whose relative URLs start at the API's root."""
    import requests

    class ApiSession(requests.Session):
        def request(self, method, url, *args, **kwargs):
            kwargs.setdefault("timeout", 60)
            return super().request(method, urljoin(root, url), *args, **kwargs)

    session = ApiSession()
    session.headers["Authorization"] = f"Bearer {token}"
    return session


class Server:
    """fedmock as `make run` serves it (gunicorn), on a free port and a throw-away database."""

    def __init__(
        self,
        workdir: Path,
        fixtures: Path,
        *,
        clock_offset: int = 0,
        workers: int = 1,
        start_timeout: float = START_TIMEOUT,
    ):
        self.workdir = workdir
        self.fixtures = fixtures
        self.start_timeout = start_timeout
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        # The project's own settings (IDP_*, DJANGO_*, a DATABASE_URL) must not leak in.
        self.env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("IDP_", "DJANGO_", "FEDMOCK_"))
            and name not in ("DATABASE_URL", "DEBUG", "ALLOWED_HOSTS", "SECRET_KEY")
        }
        self.env.update(
            DJANGO_SETTINGS_MODULE="idp.settings",
            DATABASE_URL=f"sqlite:///{workdir / 'db.sqlite3'}",
            IDP_BASE_URL=self.base_url,
            IDP_CERTS_DIR=str(workdir / "certs"),
            SECRET_KEY=secrets.token_urlsafe(50),
            # Given, as SECRET_KEY is, so that settings never write a generated one into the
            # installed package's folder. A Fernet key: 32 random bytes, url-safe base64.
            IDP_KEY_ENCRYPTION_KEY=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            PORT=str(self.port),
            WEB_CONCURRENCY=str(workers),
            ACCESS_LOG=str(workdir / "access.log"),
        )
        if clock_offset:
            self.env["IDP_CLOCK_OFFSET"] = str(clock_offset)
        self.log = workdir / "gunicorn.log"
        self.process: subprocess.Popen | None = None

    def _manage(self, deadline: float, *args: str) -> str:
        command = ["manage.py", *args]
        try:
            done = subprocess.run(  # noqa: S603 (our own interpreter and manage.py)
                [sys.executable, *command],
                env=self.env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=max(deadline - time.monotonic(), 1),
            )
        except subprocess.TimeoutExpired as expired:
            raise FedmockStartError(
                f"`{' '.join(command)}` did not finish within the start-up timeout "
                f"({self.start_timeout:g} s; raise the ini option fedmock_start_timeout).\n"
                f"{expired.stderr or ''}"
            ) from None
        if done.returncode != 0:
            raise FedmockStartError(
                f"`{' '.join(command)}` failed (exit {done.returncode}):\n"
                f"{done.stderr.strip() or done.stdout.strip()}"
            )
        return done.stdout

    def start(self) -> Fedmock:
        import requests

        deadline = time.monotonic() + self.start_timeout
        if not (ROOT / "manage.py").is_file():
            raise FedmockStartError(
                f"No manage.py in {ROOT}: the plugin runs fedmock from its source tree, so "
                "install fedmock with `pip install -e /path/to/fedmock`."
            )
        if not self.fixtures.is_file():
            raise FedmockStartError(
                f"The fixture file {self.fixtures} does not exist "
                "(--fedmock-fixtures or the ini option fedmock_fixtures)."
            )
        self._manage(deadline, "migrate", "--noinput", "-v0")
        self._manage(deadline, "ensure_signing_key")  # first: no "no signing key" warnings
        self._manage(deadline, "load_fixtures", str(self.fixtures))
        # Its own staff superuser, with no usable password, owns the plugin's API token.
        self._manage(
            deadline,
            "createsuperuser",
            "--noinput",
            "--username",
            API_USER,
            "--email",
            f"{API_USER}@localhost",
        )
        token = self._manage(
            deadline, "create_api_token", API_USER, "--name", "pytest plugin"
        ).strip()
        with self.log.open("w") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "gunicorn", *GUNICORN_ARGS],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            return self._wait_for(deadline, token, requests)
        except BaseException:  # a failure, an interrupt: no gunicorn outlives the session
            self.stop()
            raise

    def _wait_for(self, deadline: float, token: str, requests) -> Fedmock:
        metadata_url = f"{self.base_url}/saml/metadata/"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise FedmockStartError(
                    f"gunicorn exited with {self.process.returncode}:\n{self.log.read_text()}"
                )
            try:
                answer = requests.get(metadata_url, timeout=max(deadline - time.monotonic(), 0.1))
            except requests.RequestException:  # refused, or a worker still booting (timeout)
                time.sleep(0.2)
                continue
            if answer.status_code == 200:
                return Fedmock(self.base_url, token, answer.content)
            time.sleep(0.2)
        raise FedmockStartError(
            f"{metadata_url} did not answer 200 within {self.start_timeout:g} s "
            f"(the ini option fedmock_start_timeout):\n{self.log.read_text()}"
        )

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=20)


@pytest.fixture(scope="session")
def fedmock(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A live fedmock for the whole test session, loaded from the fixture file."""
    config = request.config
    server = Server(
        tmp_path_factory.mktemp("fedmock"),
        _fixture_file(config),
        clock_offset=_number(config, "fedmock_clock_offset", 0, int),
        workers=_number(config, "fedmock_workers", 1, int),
        start_timeout=_number(config, "fedmock_start_timeout", START_TIMEOUT),
    )
    try:
        running, problem = server.start(), None
    except FedmockStartError as error:
        running, problem = None, error
    if problem is not None:  # outside the except: one message, not a chain of tracebacks
        pytest.fail(f"fedmock did not start: {problem}", pytrace=False)
    try:
        yield running
    finally:
        running.api.close()
        server.stop()
