"""Sign-ons never stop while the key rotates under a real multi-worker server."""

import base64
import threading
import time

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


def test_rotation_under_load(server):
    stop = threading.Event()
    replies: list[tuple[float, int, str]] = []  # (finished at, status, SAMLResponse)
    snapshots: list[tuple[float, frozenset[str]]] = []  # (fetched at, published certificates)
    failures: list[str] = []

    def sign_on_continuously() -> None:
        browser = Browser(server.url)
        browser.sign_in("alice")
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            reply = browser.get("/saml/init/", params={"sp": aws.AUDIENCE, "role": ROLE})
            saml_response = ""
            if reply.status_code == 200:
                saml_response = parse_post_form(reply.text)["fields"]["SAMLResponse"]
            replies.append((time.monotonic(), reply.status_code, saml_response))

    def watch_metadata() -> None:
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            document = requests.get(server.url + "/saml/metadata/", timeout=10)
            if document.status_code != 200:
                failures.append(f"metadata answered {document.status_code}")
            else:
                snapshots.append((time.monotonic(), certificates(document.content)))
            time.sleep(0.01)

    threads = [threading.Thread(target=sign_on_continuously) for _ in range(4)]
    threads.append(threading.Thread(target=watch_metadata))
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)
        for step in ("stage", "activate", "retire"):
            server.manage("rotate_key", step)  # each waits until every worker caught up
            time.sleep(0.5)
        time.sleep(1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

    assert not failures
    assert len({snapshot for _, snapshot in snapshots}) == 3  # {k1}, {k1, k2}, {k2}
    statuses = [status for _, status, _ in replies]
    assert statuses.count(200) == len(statuses) > 50, set(statuses)
    signers = set()
    for finished, _, saml_response in replies:
        root = etree.fromstring(base64.b64decode(saml_response))
        certificate = "".join(root.findtext(".//ds:X509Certificate", namespaces=NS).split())
        signers.add(certificate)
        served = [published for at, published in snapshots if at <= finished]
        assert served, "no metadata was served before this response"
        assert certificate in served[-1], "signed with a key the metadata did not publish"
        pem = signing.pem_from_base64(certificate)
        assert signing.signature_valid(root, pem)
        assertion = root.find(f"{{{c.SAML}}}Assertion")
        assert signing.signature_valid(assertion, pem)
    assert len(signers) == 2  # responses were signed by key 1, then by key 2
