"""Sign-ons never stop while the key rotates, under real gunicorn workers and across hosts.

Layouts: one host with two workers (issue 8), one host with four, and two hosts (issue 13)
that run from two separate working trees with their own IDP_CERTS_DIR, share one
PostgreSQL, SECRET_KEY, IDP_KEY_ENCRYPTION_KEY and IDP_BASE_URL, and start at once on the
empty database. Each rollover step, run on the first host, waits for every worker's
heartbeat (workers.py), not a timer. Every response is checked by signxml, not by
fedmock's own verifier, against the certificates its host's metadata published before it.
"""

import base64
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet
from lxml import etree
from signxml import XMLVerifier

from idp.saml import aws, signing
from idp.saml import constants as c

from . import databases
from .agents import Browser, parse_post_form
from .live_server import ROOT, GunicornServer

NS = {"ds": c.DS}
ROLE = "arn:aws:iam::111122223333:role/Admin"
CLIENTS = 4
PATIENCE = 120  # seconds: a generous deadline for each state to show, even on a loaded machine

LAYOUTS = [
    pytest.param([2], id="one-host-two-workers"),
    pytest.param([4], id="one-host-four-workers"),
    pytest.param(
        [2, 2],
        id="two-hosts",
        marks=pytest.mark.skipif(
            not databases.on_postgres(),
            reason="two hosts share a PostgreSQL (TEST_DATABASE_URL: make test-postgres)",
        ),
    ),
]


def working_tree(destination: Path) -> Path:
    """A second copy of the project, as another host has: code only, no state."""
    return shutil.copytree(
        ROOT,
        destination,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            "__pycache__",
            "*_cache",
            "db.sqlite3*",
            "certs",
            "staticfiles",
            ".secret_key",
            ".key_encryption_key",
        ),
    )


@pytest.fixture(params=LAYOUTS)
def hosts(request, tmp_path):
    layout: list[int] = request.param
    kek = Fernet.generate_key().decode()
    servers: list[GunicornServer] = []
    for name, workers in zip("ab", layout, strict=False):
        tree = ROOT if len(layout) == 1 else working_tree(tmp_path / f"tree-{name}")
        shared = servers[0].env["DATABASE_URL"] if servers else ""
        server = GunicornServer(tmp_path / f"host-{name}", workers, tree, database_url=shared)
        server.env["IDP_KEY_ENCRYPTION_KEY"] = kek
        if servers:  # one IdP behind a load balancer: one base URL
            server.env["IDP_BASE_URL"] = servers[0].env["IDP_BASE_URL"]
        servers.append(server)
    try:
        with ThreadPoolExecutor(len(servers)) as pool:  # at once, on the empty database
            list(pool.map(GunicornServer.start, servers))
        yield servers
    finally:
        for server in reversed(servers):  # the first host drops the shared database
            server.stop(keep_database=server is not servers[0])


def certificates(document: bytes) -> frozenset[str]:
    root = etree.fromstring(document)
    return frozenset(
        "".join(t.split()) for t in root.xpath("//ds:X509Certificate/text()", namespaces=NS)
    )


@dataclass(frozen=True)
class Reply:
    client: int
    host: int
    started: float
    finished: float
    status: int
    saml_response: str


@dataclass(frozen=True)
class Snapshot:
    host: int
    started: float
    finished: float
    published: frozenset[str]


def wait_for(what: str, condition, failures: list[str]) -> None:
    """Poll until `condition()` holds; no fixed sleep, so a slow machine only takes longer."""
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert not failures, failures
        assert time.monotonic() < deadline, f"no {what} within {PATIENCE} s"
        time.sleep(0.05)


def reporting(failures: list[str], body):
    """A thread's body whose exception fails the test at once instead of vanishing."""

    def run(*args) -> None:
        try:
            body(*args)
        except Exception as error:  # reported: the main thread fails the test
            failures.append(f"{body.__name__}: {error!r}")

    return run


def verifies(saml_response: str, published: frozenset[str]) -> str:
    """The certificate (of those published) whose key signed both the Response and its
    Assertion, checked by signxml; fails the test otherwise."""
    root = etree.fromstring(base64.b64decode(saml_response))
    certificate = "".join(root.findtext(".//ds:X509Certificate", namespaces=NS).split())
    assert certificate in published, "signed with a key the metadata did not publish"
    pem = signing.pem_from_base64(certificate)
    XMLVerifier().verify(root, x509_cert=pem)
    assertion = root.find(f"{{{c.SAML}}}Assertion")
    verified = XMLVerifier().verify(etree.tostring(assertion), x509_cert=pem)
    assert verified.signed_xml.tag == f"{{{c.SAML}}}Assertion"
    return certificate


def sign_on(browser: Browser, host: GunicornServer) -> requests.Response:
    return browser.session.get(
        host.url + "/saml/init/", params={"sp": aws.AUDIENCE, "role": ROLE}, timeout=30
    )


def workers_up_to_date(host: GunicornServer) -> int:
    status = host.manage("rotate_key", "status")
    return sum(1 for line in status.splitlines() if line.endswith("up to date"))


def test_rotation_under_load(hosts):
    if len(hosts) > 1:
        # Both came up on the empty database with one active key, and serve one metadata.
        status = hosts[0].manage("rotate_key", "status", "--use", "saml")
        assert sum(" active " in line for line in status.splitlines()) == 1, status
        documents = {requests.get(h.url + "/saml/metadata/", timeout=30).content for h in hosts}
        assert len(documents) == 1
        for host in hosts:  # each from its own tree
            code = "import idp; print(idp.__file__)"
            assert host.manage("shell", "-v0", "-c", code).startswith(str(host.tree))

    # Every worker of every host beats, so each step below has someone to wait for.
    every_worker = sum(int(host.env["WEB_CONCURRENCY"]) for host in hosts)
    wait_for("every worker's heartbeat", lambda: workers_up_to_date(hosts[0]) == every_worker, [])

    stop = threading.Event()
    replies: list[Reply] = []
    snapshots: list[Snapshot] = []
    failures: list[str] = []

    def sign_on_continuously(client: int) -> None:
        host = client % len(hosts)
        browser = Browser(hosts[host].url)
        browser.sign_in("alice")
        while not stop.is_set():
            started = time.monotonic()
            reply = sign_on(browser, hosts[host])
            saml_response = ""
            if reply.status_code == 200:
                saml_response = parse_post_form(reply.text)["fields"]["SAMLResponse"]
            replies.append(
                Reply(client, host, started, time.monotonic(), reply.status_code, saml_response)
            )

    def watch_metadata(host: int) -> None:
        while not stop.is_set():
            started = time.monotonic()
            document = requests.get(hosts[host].url + "/saml/metadata/", timeout=30)
            if document.status_code != 200:
                failures.append(f"host {host}: metadata answered {document.status_code}")
            else:
                snapshots.append(
                    Snapshot(host, started, time.monotonic(), certificates(document.content))
                )
            time.sleep(0.01)

    def metadata_shows(count: int, since: float):
        return lambda: all(
            any(s.host == h and s.started > since and len(s.published) == count for s in snapshots)
            for h in range(len(hosts))
        )

    def every_client_replied(since: float):
        return lambda: {r.client for r in replies if r.started > since} == set(range(CLIENTS))

    watchers = [
        threading.Thread(target=reporting(failures, watch_metadata), args=(h,))
        for h in range(len(hosts))
    ]
    clients = [
        threading.Thread(target=reporting(failures, sign_on_continuously), args=(i,))
        for i in range(CLIENTS)
    ]
    for thread in watchers:
        thread.start()
    try:
        # The metadata is watched before the first sign-on, so every reply has a snapshot
        # served before it; each step starts only once the previous state has been seen.
        wait_for("metadata", metadata_shows(1, since=0), failures)
        for thread in clients:
            thread.start()
        wait_for("sign-on from every client", every_client_replied(since=0), failures)
        # The three steps back to back in one process: only the heartbeats hold each step
        # until every worker has the previous one. (A process per step, or a wait for the
        # metadata between steps, would give every worker time enough with no wait at all.)
        steps = "; ".join(
            f"call_command('rotate_key', '{step}')" for step in ("stage", "activate", "retire")
        )
        hosts[0].manage("shell", "-c", "from django.core.management import call_command; " + steps)
        done = time.monotonic()
        wait_for("metadata after the rotation", metadata_shows(1, since=done), failures)
        wait_for("sign-ons after the rotation", every_client_replied(since=done), failures)
    finally:
        stop.set()
        for thread in [*watchers, *clients]:
            thread.join(timeout=60)

    assert not failures
    for host in range(len(hosts)):  # {k1}, {k1, k2}, {k2}
        assert len({s.published for s in snapshots if s.host == host}) == 3
    statuses = {reply.status for reply in replies}
    assert statuses == {200}, statuses
    signers = set()
    for reply in replies:  # behind a load balancer an SP may fetch any host's metadata
        for host in range(len(hosts)):
            served = [s for s in snapshots if s.host == host and s.finished <= reply.finished]
            assert served, "no metadata was served before this response"
            signers.add(verifies(reply.saml_response, served[-1].published))
    assert len(signers) == 2  # responses were signed by key 1, then by key 2
    # Every worker of every host reported the final keys.
    wait_for(
        "every worker's heartbeat with the final keys",
        lambda: workers_up_to_date(hosts[0]) == every_worker,
        failures,
    )


@pytest.mark.skipif(not databases.on_postgres(), reason="two hosts share a PostgreSQL")
@pytest.mark.parametrize("hosts", [[2, 2]], indirect=True, ids=["two-hosts"])
def test_restarting_one_host_signs_nobody_out_on_the_other(hosts):
    first, second = hosts
    browser = Browser(first.url)
    browser.sign_in("alice")  # one signed session cookie, good at both hosts
    assert sign_on(browser, second).status_code == 200
    second.stop(keep_database=True)
    restarted = threading.Thread(target=second.start)
    restarted.start()
    replies = []
    while restarted.is_alive():  # the other host serves the same session all along
        replies.append(sign_on(browser, first))
        time.sleep(0.2)
    restarted.join()
    replies.append(sign_on(browser, second))  # and the restarted host still knows it
    for reply in replies:
        assert reply.status_code == 200 and "SAMLResponse" in reply.text, reply.url
