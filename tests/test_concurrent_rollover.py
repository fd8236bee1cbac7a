"""Sign-ons never stop while the key rotates under a real multi-worker server."""

import base64
import threading
import time
from dataclasses import dataclass

import pytest
import requests
from lxml import etree

from idp.saml import aws, signing
from idp.saml import constants as c

from .agents import Browser, parse_post_form
from .live_server import GunicornServer

NS = {"ds": c.DS}
ROLE = "arn:aws:iam::111122223333:role/Admin"


@pytest.fixture
def server(tmp_path):
    running = GunicornServer(tmp_path, workers=2).start()
    yield running
    running.stop()


def certificates(document: bytes) -> frozenset[str]:
    root = etree.fromstring(document)
    return frozenset(
        "".join(t.split()) for t in root.xpath("//ds:X509Certificate/text()", namespaces=NS)
    )


CLIENTS = 4
PATIENCE = 120  # seconds: a generous deadline for each state to show, even on a loaded machine


@dataclass(frozen=True)
class Reply:
    client: int
    started: float
    finished: float
    status: int
    saml_response: str


@dataclass(frozen=True)
class Snapshot:
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


def test_rotation_under_load(server):
    stop = threading.Event()
    replies: list[Reply] = []
    snapshots: list[Snapshot] = []
    failures: list[str] = []

    def sign_on_continuously(client: int) -> None:
        browser = Browser(server.url)
        browser.sign_in("alice")
        while not stop.is_set():
            started = time.monotonic()
            reply = browser.get("/saml/init/", params={"sp": aws.AUDIENCE, "role": ROLE})
            saml_response = ""
            if reply.status_code == 200:
                saml_response = parse_post_form(reply.text)["fields"]["SAMLResponse"]
            replies.append(
                Reply(client, started, time.monotonic(), reply.status_code, saml_response)
            )

    def watch_metadata() -> None:
        while not stop.is_set():
            started = time.monotonic()
            document = requests.get(server.url + "/saml/metadata/", timeout=30)
            if document.status_code != 200:
                failures.append(f"metadata answered {document.status_code}")
            else:
                snapshots.append(
                    Snapshot(started, time.monotonic(), certificates(document.content))
                )
            time.sleep(0.01)

    def metadata_shows(count: int, since: float):
        return lambda: any(s.started > since and len(s.published) == count for s in snapshots)

    def every_client_replied(since: float):
        return lambda: {r.client for r in replies if r.started > since} == set(range(CLIENTS))

    watcher = threading.Thread(target=reporting(failures, watch_metadata))
    watcher.start()
    threads = [
        threading.Thread(target=reporting(failures, sign_on_continuously), args=(i,))
        for i in range(CLIENTS)
    ]
    try:
        # The metadata is watched before the first sign-on, so every reply has a snapshot
        # served before it; each step starts only once the previous state has been seen.
        wait_for("metadata", metadata_shows(1, since=0), failures)
        for thread in threads:
            thread.start()
        wait_for("sign-on from every client", every_client_replied(since=0), failures)
        for step, published in (("stage", 2), ("activate", 2), ("retire", 1)):
            server.manage("rotate_key", step)  # each waits until every worker caught up
            done = time.monotonic()
            wait_for(f"metadata after {step}", metadata_shows(published, since=done), failures)
            wait_for(f"sign-ons after {step}", every_client_replied(since=done), failures)
    finally:
        stop.set()
        for thread in [watcher, *threads]:
            thread.join(timeout=60)

    assert not failures
    assert len({snapshot.published for snapshot in snapshots}) == 3  # {k1}, {k1, k2}, {k2}
    statuses = {reply.status for reply in replies}
    assert statuses == {200}, statuses
    signers = set()
    for reply in replies:
        root = etree.fromstring(base64.b64decode(reply.saml_response))
        certificate = "".join(root.findtext(".//ds:X509Certificate", namespaces=NS).split())
        signers.add(certificate)
        served = [s.published for s in snapshots if s.finished <= reply.finished]
        assert served, "no metadata was served before this response"
        assert certificate in served[-1], "signed with a key the metadata did not publish"
        pem = signing.pem_from_base64(certificate)
        assert signing.signature_valid(root, pem)
        assertion = root.find(f"{{{c.SAML}}}Assertion")
        assert signing.signature_valid(assertion, pem)
    assert len(signers) == 2  # responses were signed by key 1, then by key 2
