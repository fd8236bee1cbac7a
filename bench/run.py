"""fedmock's performance table: `make bench` runs this once and prints it.

(a) in process: signed AWS responses built per second on one core, and the raw
    RSA-2048 rate of the same key; (b) over HTTP: gunicorn as `make run` starts
    it, loaded by wrk from a separate process; (c) the baseline: pysaml2 with
    its stock xmlsec1 backend; (d) scale: 10,000 users, one in 500 groups facing
    200 rules; (e) peak RSS per worker; (g) loading a 10,000-user fixture file
    (issue 9); (h) the peer run: fedmock as `make run` serves it against SimpleSAMLphp 1.19
    behind Apache + mod_php, IdP-initiated with both signatures, the load alternating
    between the two round by round (`--only peer` runs it alone). Every loop is bounded in
    count and time, and all traffic stays on 127.0.0.1. The table is also written as JSON.
"""

import argparse
import base64
import datetime
import html
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import peer  # noqa: E402
from bench.simplesamlphp.server import SimpleSAMLphpServer  # noqa: E402
from tests.agents import Browser, pysaml2_idp  # noqa: E402
from tests.live_server import GunicornServer, free_port  # noqa: E402

ROLE = "arn:aws:iam::111122223333:role/Admin"
BENCH_SP = "https://bench-sp.example/metadata"
BENCH_ACS = "https://bench-sp.example/acs"
AWS_SP = "urn:amazon:webservices"
AWS_ACS = "https://signin.aws.amazon.com/saml"


def rate(action, seconds: float, limit: int = 100_000) -> float:
    """Calls per second of `action`, over a bounded time and count."""
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while count < limit and time.perf_counter() < deadline:
        action()
        count += 1
    return count / (time.perf_counter() - start)


# --- (a) and (c): in process --------------------------------------------------------


def in_process(seconds: float) -> dict:
    """Runs inside a Django process set up on the bench server's database."""
    import django

    django.setup()
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    from idp import cache, claims, identity, keys
    from idp.models import ServiceProvider
    from idp.saml import aws, responses, signing
    from users.models import User

    os.sched_setaffinity(0, {0})
    sp = ServiceProvider.objects.get(entity_id=aws.AUDIENCE)
    release = claims.release(User.objects.get(username="alice"), sp)
    key = keys.active_key()

    def build_and_sign(sign_response: bool) -> bytes:
        context = responses.ResponseContext(
            issuer=identity.entity_id(),
            destination=aws.SIGNIN_ACS,
            audience=aws.AUDIENCE,
            in_response_to=None,
            now=datetime.datetime.now(datetime.UTC),
            session_index="_bench",
        )
        return signing.sign(
            responses.build(release, context),
            key,
            sign_assertion=True,
            sign_response=sign_response,
        )

    raw = rate(
        lambda: key.private_key.sign(b"fedmock", padding.PKCS1v15(), hashes.SHA256()), seconds
    )
    assertion_only = rate(lambda: build_and_sign(False), seconds)
    both = rate(lambda: build_and_sign(True), seconds)
    baseline = pysaml2_baseline(release, key, seconds)
    cache.forget()
    return {
        "raw_rsa_signatures_per_s": raw,
        "responses_per_s_assertion_signed": assertion_only,
        "responses_per_s_both_signed": both,
        "ratio_to_rsa_assertion_signed": assertion_only / raw,
        "ratio_to_rsa_both_signed": 2 * both / raw,
        "pysaml2_xmlsec1_responses_per_s_both_signed": baseline,
        "speedup_over_pysaml2_xmlsec1": both / baseline,
        "roles": len(release.values(aws.ROLE)),
    }


def pysaml2_baseline(release, key, seconds: float) -> float:
    """The same response from pysaml2's IdP with its stock xmlsec1 backend (a subprocess)."""
    from cryptography.hazmat.primitives import serialization
    from saml2.saml import NameID
    from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

    from idp.saml import aws
    from idp.saml import constants as c

    sp_metadata = (
        f'<md:EntityDescriptor xmlns:md="{c.MD}" entityID="{aws.AUDIENCE}">'
        f'<md:SPSSODescriptor protocolSupportEnumeration="{c.SAMLP}">'
        f'<md:AssertionConsumerService Binding="{c.BINDING_POST}" Location="{aws.SIGNIN_ACS}" '
        'index="0"/></md:SPSSODescriptor></md:EntityDescriptor>'
    )
    key_pem = key.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    server = pysaml2_idp(
        Path(tempfile.mkdtemp(prefix="fedmock-bench-pysaml2-")),
        key_pem,
        key.cert_pem.encode(),
        sp_metadata,
    )
    identity = {attribute.name: list(attribute.values) for attribute in release.attributes}

    def respond() -> None:
        server.create_authn_response(
            identity=identity,
            in_response_to=None,
            destination=aws.SIGNIN_ACS,
            sp_entity_id=aws.AUDIENCE,
            name_id=NameID(format=release.name_id.format, text=release.name_id.value),
            sign_assertion=True,
            sign_response=True,
            sign_alg=SIG_RSA_SHA256,
            digest_alg=DIGEST_SHA256,
        )

    return rate(respond, seconds, limit=2000)


# --- (b) and (e): over HTTP ----------------------------------------------------------


def wrk_command(threads: int, connections: int, seconds: int, script: str) -> list[str]:
    """wrk as every load here runs it: latency percentiles, a 5 s timeout, a bench/ script."""
    return [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "5s",
        "-s",
        str(ROOT / "bench" / script),
    ]


def wrk(url: str, cookie: str, connections: int, seconds: int, paths: Path | None = None) -> dict:
    """One wrk run; with `paths`, each request is the next line of that file."""
    threads = min(connections, 2)
    arguments = ["--", str(paths), str(threads)] if paths else []
    output = subprocess.run(
        [
            *wrk_command(threads, connections, seconds, "count_saml.lua"),
            "-H",
            f"Cookie: {cookie}",
            url,
            *arguments,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout

    def milliseconds(label: str) -> float:
        found = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)$", output, re.M)
        if found is None:  # say what wrk printed, rather than a traceback with nothing in it
            raise SystemExit(
                f"bench: wrk printed no {label} latency for {url} at {connections} "
                f"connections; its output was:\n{output}"
            )
        value, unit = found.groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    socket_errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    non_2xx = int((re.search(r"Non-2xx or 3xx responses: (\d+)", output) or [0, 0])[1])
    saml = int(re.search(r"saml_replies=(\d+)", output)[1])
    other = int(re.search(r"other_replies=(\d+)", output)[1])
    return {
        "connections": connections,
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1]),
        "p50_ms": milliseconds("50%"),
        "p99_ms": milliseconds("99%"),
        "errors": socket_errors + non_2xx + other,
        "replies_with_saml_response": saml,
    }


def peak_rss_per_worker_mb(server: GunicornServer) -> float:
    master = server.process.pid
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    peaks = []
    for pid in children:
        status = Path(f"/proc/{pid}/status").read_text()
        peaks.append(int(re.search(r"VmHWM:\s+(\d+) kB", status)[1]) / 1024)
    return max(peaks)


def register_bench_sp(server: GunicornServer, workdir: Path) -> None:
    from idp.saml import constants as c

    metadata = workdir / "bench-sp.xml"
    metadata.write_text(
        f'<md:EntityDescriptor xmlns:md="{c.MD}" entityID="{BENCH_SP}">'
        f'<md:SPSSODescriptor protocolSupportEnumeration="{c.SAMLP}">'
        f'<md:AssertionConsumerService Binding="{c.BINDING_POST}" Location="{BENCH_ACS}" '
        'index="0" isDefault="true"/></md:SPSSODescriptor></md:EntityDescriptor>'
    )
    server.manage("import_sp_metadata", str(metadata))


def sp_initiated_paths(workdir: Path, count: int) -> Path:
    """Fresh AuthnRequests, each with its own ID: fedmock answers a request ID only once."""
    from idp.saml import constants as c
    from idp.saml.bindings import encode_redirect

    instant = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = []
    for _ in range(count):
        request = (
            f'<samlp:AuthnRequest xmlns:samlp="{c.SAMLP}" xmlns:saml="{c.SAML}" '
            f'ID="_bench{os.urandom(12).hex()}" Version="2.0" IssueInstant="{instant}" '
            f'AssertionConsumerServiceURL="{BENCH_ACS}"><saml:Issuer>{BENCH_SP}</saml:Issuer>'
            "</samlp:AuthnRequest>"
        ).encode()
        lines.append(
            f"/saml/sso/?SAMLRequest={quote(encode_redirect(request), safe='')}&RelayState=b"
        )
    path = workdir / f"sp-requests-{os.urandom(4).hex()}.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def hostile_requests(server: GunicornServer, in_flight: int = 8, rounds: int = 5) -> dict:
    """Issue 8, item 1: 62 KB AuthnRequests whose junk signature lists an XPath transform
    over 11,000 elements, several in flight at once, while the metadata is fetched."""
    import threading

    import requests

    from idp.saml import constants as c

    transform = (
        '<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116">'
        "<ds:XPath>count(//. | //@* | //namespace::*)</ds:XPath></ds:Transform>"
    )
    signature = (
        f'<ds:Signature xmlns:ds="{c.DS}"><ds:SignedInfo>'
        '<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
        f'<ds:SignatureMethod Algorithm="{c.SIG_RSA_SHA256}"/><ds:Reference URI="#_evil">'
        f"<ds:Transforms>{transform}</ds:Transforms>"
        f'<ds:DigestMethod Algorithm="{c.DIGEST_SHA256}"/><ds:DigestValue>AA==</ds:DigestValue>'
        "</ds:Reference></ds:SignedInfo><ds:SignatureValue>AA==</ds:SignatureValue>"
        "</ds:Signature>"
    )
    instant = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    xml = (
        f'<samlp:AuthnRequest xmlns:samlp="{c.SAMLP}" xmlns:saml="{c.SAML}" ID="_evil" '
        f'Version="2.0" IssueInstant="{instant}" AssertionConsumerServiceURL="{BENCH_ACS}">'
        f"<saml:Issuer>{BENCH_SP}</saml:Issuer>{signature}<samlp:Extensions><x:f "
        "xmlns:x='urn:filler'>" + "<f/>" * 11_000 + "</x:f></samlp:Extensions></samlp:AuthnRequest>"
    ).encode()
    body = {"SAMLRequest": base64.b64encode(xml).decode()}
    hostile, metadata, statuses = [], [], []
    lock = threading.Lock()

    def attack() -> None:
        for _ in range(rounds):
            start = time.perf_counter()
            reply = requests.post(f"{server.url}/saml/sso/", data=body, timeout=60)
            with lock:
                hostile.append(time.perf_counter() - start)
                statuses.append(reply.status_code)

    attackers = [threading.Thread(target=attack) for _ in range(in_flight)]
    for thread in attackers:
        thread.start()
    while any(thread.is_alive() for thread in attackers):
        start = time.perf_counter()
        assert requests.get(f"{server.url}/saml/metadata/", timeout=60).status_code == 200
        metadata.append(time.perf_counter() - start)
    for thread in attackers:
        thread.join()
    return {
        "request_base64_bytes": len(body["SAMLRequest"]),
        "in_flight": in_flight,
        "hostile_requests": len(hostile),
        "hostile_statuses": sorted(set(statuses)),
        "hostile_max_ms": max(hostile) * 1000,
        "hostile_p50_ms": statistics.median(hostile) * 1000,
        "metadata_fetches": len(metadata),
        "metadata_p50_ms": statistics.median(metadata) * 1000,
        "metadata_max_ms": max(metadata) * 1000,
    }


def over_http(server: GunicornServer, workdir: Path, seconds: int) -> dict:
    from idp.saml import signing

    browser = Browser(server.url)
    browser.sign_in("alice")
    register_bench_sp(server, workdir)
    idp_initiated = f"{server.url}/saml/init/?sp=urn:amazon:webservices&role={quote(ROLE)}"
    sample_sp = server.url + sp_initiated_paths(workdir, 1).read_text().strip()
    results = {}
    for url in (idp_initiated, sample_sp):
        sample = browser.get(url)
        form = re.search(r'name="SAMLResponse" value="([^"]+)"', sample.text)
        root = __import__("lxml.etree").etree.fromstring(base64.b64decode(form[1]))
        certificate = root.findtext(".//{http://www.w3.org/2000/09/xmldsig#}X509Certificate")
        assert signing.signature_valid(root, signing.pem_from_base64(certificate))
    # The cookie as a browser holds it after those sign-ons: it records the SPs signed on to
    # (for single logout), so sending an older one would make every reply re-sign it.
    cookie = cookie_header(browser.session)
    results["idp_initiated"] = [wrk(idp_initiated, cookie, n, seconds) for n in (1, 4, 16)]
    # Each run gets fresh request IDs (more than it can send), generated just before it.
    results["sp_initiated_redirect"] = [
        wrk(server.url + "/", cookie, n, seconds, sp_initiated_paths(workdir, 3000 * seconds))
        for n in (1, 4, 16)
    ]
    results["hostile_signature"] = hostile_requests(server)
    results["peak_rss_per_worker_mb"] = peak_rss_per_worker_mb(server)
    return results


# --- (d): scale ------------------------------------------------------------------


def scale(requests: int) -> dict:
    """Sign-on latency and SQL per sign-on: the demo directory against a large one."""
    import django

    django.setup()
    from django.contrib.auth.hashers import make_password
    from django.db import connection
    from django.test import Client

    from idp.models import ClaimRule, ServiceProvider
    from idp.saml import aws
    from users.models import Group, User

    password = make_password("big")
    User.objects.bulk_create(
        User(username=f"user{i:05}", email=f"user{i:05}@example.com", password=password)
        for i in range(10_000)
    )
    big = User.objects.create(username="big", email="big@example.com", password=password)
    projects = Group.objects.bulk_create(Group(name=f"project-{i:03}") for i in range(180))
    teams = Group.objects.bulk_create(Group(name=f"team-{i:03}") for i in range(479))
    aws_admin = Group.objects.get(name="AWS-111122223333-Admin")
    big.directory_groups.add(*projects[:20], *teams, aws_admin)
    sp = ServiceProvider.objects.get(entity_id=aws.AUDIENCE)
    # Like a large ADFS farm: most rules hang on one group each, and a user meets a few.
    rules = [
        ClaimRule(
            service_provider=sp,
            order=100 + i,
            condition="member_of",
            condition_subject=f"project-{i:03}",
            source="literal",
            value=f"project {i}",
            attribute_name="https://fedmock.example/projects",
        )
        for i in range(180)
    ]
    rules += [
        ClaimRule(
            service_provider=sp,
            order=300 + i,
            source="template",
            value=f"{{email}}#{i}",
            attribute_name=f"https://fedmock.example/tag{i}",
        )
        for i in range(10)
    ]
    rules += [
        ClaimRule(
            service_provider=sp,
            order=400 + i,
            source="group_regex",
            group_pattern=rf"^team-{i}0(?P<n>[0-4])$",
            value="{n}",
            attribute_name="https://fedmock.example/teams",
        )
        for i in range(5)
    ]
    rules += [
        ClaimRule(
            service_provider=sp,
            order=450 + i,
            condition="attribute_matches",
            condition_subject="email",
            condition_pattern=rf"^user{i}",
            source="literal",
            value="x",
            attribute_name="https://fedmock.example/never",
        )
        for i in range(5)
    ]
    ClaimRule.objects.bulk_create(rules)
    from idp import cache

    cache.forget()

    def measure(username: str) -> tuple[float, int]:
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(User.objects.get(username=username))
        url = f"/saml/init/?sp={quote(aws.AUDIENCE)}&role={quote(ROLE)}"
        assert client.get(url).status_code == 200  # warms the caches
        queries = []  # counted at execution: the test client's request_started resets the log

        def count(execute, sql, params, many, context):
            queries.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            assert b"SAMLResponse" in client.get(url).content
        times = []
        for _ in range(requests):
            start = time.perf_counter()
            client.get(url)
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1000, len(queries)

    demo_ms, demo_queries = measure("alice")
    big_ms, big_queries = measure("big")
    return {
        "users": User.objects.count(),
        "groups_of_big_user": big.directory_groups.count(),
        "rules": ClaimRule.objects.filter(service_provider=sp).count(),
        "demo_sign_on_ms": demo_ms,
        "scale_sign_on_ms": big_ms,
        "latency_ratio": big_ms / demo_ms,
        "demo_queries_per_sign_on": demo_queries,
        "scale_queries_per_sign_on": big_queries,
    }


# --- (g): fixtures -----------------------------------------------------------------


def fixture_load(users: int = 10_000) -> dict:
    """Loading, reloading, resetting and dumping a fixture of `users` users (issue 9).

    Real PBKDF2 (the default hasher): the users share 4 passwords, so a load hashes 4
    times; each user has 3 attribute values and 1 or 2 of 60 nested groups.
    """
    import django

    django.setup()
    from django.db import connection

    from idp import fixtures
    from users.models import User, UserAttribute

    def directory(department: str) -> dict:
        groups = [{"name": f"team-{i:02}", "member_of": [f"dept-{i % 10}"]} for i in range(50)]
        groups += [{"name": f"dept-{i}"} for i in range(10)]
        return {
            "groups": groups,
            "users": [
                {
                    "username": f"user{i:05}",
                    "password": f"secret-{i % 4}",
                    "email": f"user{i:05}@example.com",
                    "first_name": "Load",
                    "last_name": f"Test {i}",
                    "attributes": {"department": department, "costCenter": [str(i), "all"]},
                    "groups": [f"team-{i % 50:02}"] + (["dept-0"] if i % 3 == 0 else []),
                }
                for i in range(users)
            ],
            "service_providers": [{"preset": "aws"}],
        }

    def timed(action) -> tuple[float, int, object]:
        statements = []

        def count(execute, sql, params, many, context):
            statements.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            start = time.perf_counter()
            result = action()
            elapsed = time.perf_counter() - start
        return elapsed, len(statements), result

    first = directory("Engineering")
    load_s, load_q, summary = timed(lambda: fixtures.load(first, source="bench"))
    assert summary.users.created == users, summary
    reload_s, reload_q, summary = timed(lambda: fixtures.load(first, source="bench"))
    assert not summary.changed, summary
    changed_s, changed_q, summary = timed(
        lambda: fixtures.load(directory("Research"), source="bench")
    )
    assert summary.users.updated == users, summary
    # What a test run leaves behind: every user's department changed, one user more.
    UserAttribute.objects.filter(name="department").update(value="Sales")
    User.objects.create(username="left-over")
    reset_s, reset_q, summary = timed(fixtures.reset)
    assert summary.users.deleted == 1, summary
    assert summary.users.updated == users, summary
    dump_s, dump_q, dumped = timed(fixtures.dump)
    assert len(dumped["users"]) >= users
    return {
        "users": users,
        "load_s": load_s,
        "load_statements": load_q,
        "reload_unchanged_s": reload_s,
        "reload_unchanged_statements": reload_q,
        "reload_every_user_changed_s": changed_s,
        "reload_every_user_changed_statements": changed_q,
        "reset_s": reset_s,
        "reset_statements": reset_q,
        "dump_s": dump_s,
        "dump_statements": dump_q,
    }


# --- (h): the peer run, fedmock against SimpleSAMLphp 1.19 ---------------------------


def make_run_workers() -> int:
    """The Makefile's WORKERS: one gunicorn worker per usable core, at least two."""
    return max(2, len(os.sched_getaffinity(0)))


def cookie_header(session) -> str:
    return "; ".join(f"{name}={value}" for name, value in session.cookies.items())


def saml_response(url: str, cookie: str, who: str) -> bytes:
    """The SAMLResponse of the auto-submit form one signed-in sign-on answers with."""
    import requests

    reply = requests.get(url, headers={"Cookie": cookie}, timeout=30, allow_redirects=False)
    form = re.search(r'name="SAMLResponse" value="([^"]+)"', reply.text)
    if reply.status_code != 200 or form is None:
        raise peer.BenchError(f"{who} answered HTTP {reply.status_code} with no SAMLResponse form")
    return base64.b64decode(html.unescape(form[1]))


def fedmock_signing_certificates(server: GunicornServer) -> list[str]:
    import requests
    from lxml import etree

    metadata = etree.fromstring(
        requests.get(f"{server.url}/saml/metadata/", timeout=30).content,
        etree.XMLParser(resolve_entities=False, no_network=True),
    )
    return [
        element.text.strip()
        for element in metadata.iterfind(
            ".//{*}IDPSSODescriptor/{*}KeyDescriptor//{*}X509Certificate"
        )
        if element.getparent().getparent().getparent().get("use", "signing") == "signing"
    ]


def pem(certificate_base64: str) -> bytes:
    body = "\n".join(certificate_base64[i : i + 64] for i in range(0, len(certificate_base64), 64))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n".encode()


def rsa_key_size(certificate_pem: bytes) -> int:
    from cryptography import x509

    return x509.load_pem_x509_certificate(certificate_pem).public_key().key_size


def xmlsec1_verifies(xml: bytes, certificate_pem: bytes, workdir: Path) -> bool:
    """Both signatures, the Response's and the Assertion's, each checked by xmlsec1 (a
    verifier nobody here wrote) against this IdP's certificate alone."""
    document = workdir / f"response-{os.urandom(4).hex()}.xml"
    certificate = workdir / f"cert-{os.urandom(4).hex()}.pem"
    document.write_bytes(xml)
    certificate.write_bytes(certificate_pem)
    signatures = (
        "/*[local-name()='Response']/*[local-name()='Signature']",
        "/*[local-name()='Response']/*[local-name()='Assertion']/*[local-name()='Signature']",
    )
    return all(
        subprocess.run(
            [
                "xmlsec1",
                "--verify",
                "--pubkey-cert-pem",
                str(certificate),
                "--id-attr:ID",
                "urn:oasis:names:tc:SAML:2.0:protocol:Response",
                "--id-attr:ID",
                "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
                "--node-xpath",
                signature,
                str(document),
            ],
            capture_output=True,
            timeout=60,
        ).returncode
        == 0
        for signature in signatures
    )


def peer_wrk(url: str, cookies: Path, connections: int, seconds: int) -> peer.WrkRun:
    threads = min(connections, 2)
    result = subprocess.run(
        [
            *wrk_command(threads, connections, seconds, "peer_sessions.lua"),
            url,
            "--",
            str(cookies),
            str(threads),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    if result.returncode != 0:
        raise peer.BenchError(f"wrk failed on {url}: {result.stderr.strip() or result.stdout}")
    try:
        return peer.parse_wrk(result.stdout)
    except peer.BenchError as error:
        raise peer.BenchError(f"{error} for {url}; wrk said: {result.stdout!r}") from None


def peer_run(seconds: int, rounds: int, sessions: int, connections: int = 16) -> dict:
    """fedmock (gunicorn exactly as `make run` starts it: a worker per core, the access log
    on, to a file) against SimpleSAMLphp 1.19 behind Apache prefork + mod_php, both
    IdP-initiated to the AWS SP from signed-in sessions, both signing Response and Assertion
    with RSA-SHA256. Each IdP gets `sessions` signed-in sessions: SimpleSAMLphp's PHP
    sessions lock per session, and fedmock's (signed cookies) do not lock at all."""
    workdir = Path(tempfile.mkdtemp(prefix="fedmock-bench-peer-"))
    fedmock = GunicornServer(workdir, workers=make_run_workers())  # access log: workdir
    simplesamlphp = None
    try:
        try:
            fedmock.start()
        except RuntimeError as error:  # its message holds gunicorn's whole log
            last = str(error).strip().splitlines()[-1]
            raise peer.BenchError(f"fedmock did not start: {last}") from None
        fedmock.manage(
            "shell",
            "-c",
            "from idp.models import ServiceProvider; "
            f"sp = ServiceProvider.objects.get(entity_id={AWS_SP!r}); "
            "sp.sign_response = sp.sign_assertion = True; sp.save()",
        )
        fedmock_url = f"{fedmock.url}/saml/init/?sp={quote(AWS_SP)}&role={quote(ROLE)}"
        fedmock_cookies = []
        for _ in range(sessions):
            browser = Browser(fedmock.url)
            browser.sign_in("alice")
            browser.get(fedmock_url)  # as a browser would, it keeps the cookie this updates
            fedmock_cookies.append(cookie_header(browser.session))
        fedmock_xml = saml_response(fedmock_url, fedmock_cookies[0], "fedmock")
        fedmock_facts = peer.read_response(fedmock_xml)
        fedmock_certificate = next(
            (
                pem(certificate)
                for certificate in fedmock_signing_certificates(fedmock)
                if xmlsec1_verifies(fedmock_xml, pem(certificate), workdir)
            ),
            None,
        )
        if fedmock_certificate is None:
            raise peer.BenchError(
                "fedmock's sample response does not verify with xmlsec1 against its metadata"
            )

        simplesamlphp = SimpleSAMLphpServer(
            Path(tempfile.mkdtemp(prefix="fedmock-bench-simplesamlphp-")),
            free_port(),
            username="alice",
            attributes=dict(fedmock_facts.attributes),
            sp_entity_id=AWS_SP,
            sp_acs=AWS_ACS,
        ).start()
        opcache = simplesamlphp.opcache()
        if not opcache["enabled"]:
            raise peer.BenchError(f"PHP's opcache is off in the bench's Apache: {opcache}")
        simplesamlphp_cookies = [cookie_header(simplesamlphp.sign_in()) for _ in range(sessions)]
        simplesamlphp_xml = saml_response(
            simplesamlphp.idp_initiated_url, simplesamlphp_cookies[0], "SimpleSAMLphp"
        )
        if not xmlsec1_verifies(simplesamlphp_xml, simplesamlphp.certificate_pem, workdir):
            raise peer.BenchError(
                "SimpleSAMLphp's sample response does not verify with xmlsec1 against its "
                "certificate"
            )
        problems = peer.same_work(fedmock_facts, peer.read_response(simplesamlphp_xml))
        key_sizes = [rsa_key_size(fedmock_certificate), rsa_key_size(simplesamlphp.certificate_pem)]
        if key_sizes[0] != key_sizes[1]:
            problems.append(
                f"fedmock signs with RSA-{key_sizes[0]}, SimpleSAMLphp RSA-{key_sizes[1]}"
            )
        if problems:
            raise peer.BenchError("the two IdPs do not do the same work: " + "; ".join(problems))

        targets = {
            "fedmock": (fedmock_url, workdir / "fedmock-cookies.txt", fedmock_cookies),
            "SimpleSAMLphp": (
                simplesamlphp.idp_initiated_url,
                workdir / "simplesamlphp-cookies.txt",
                simplesamlphp_cookies,
            ),
        }
        for _, path, cookies in targets.values():
            path.write_text("\n".join(cookies) + "\n")

        def load(name: str, duration: int) -> peer.WrkRun:
            url, path, _ = targets[name]
            return peer_wrk(url, path, connections, duration)

        for name in targets:  # warm-up, not counted: caches, opcache, Apache's children
            load(name, 3)
        measured = []
        for number in range(1, rounds + 1):
            # Alternate which goes first too, so that neither always runs after the other.
            order = ("fedmock", "SimpleSAMLphp") if number % 2 else ("SimpleSAMLphp", "fedmock")
            runs = {name: load(name, seconds) for name in order}
            measured.append(peer.Round(number, order[0], runs["fedmock"], runs["SimpleSAMLphp"]))
        result = peer.verdict(measured)
        return {
            **peer.as_json(measured, result),
            "connections": connections,
            "seconds_per_run": seconds,
            "sessions_per_server": sessions,
            "rsa_key_bits": key_sizes[0],
            "fedmock_workers": make_run_workers(),
            "fedmock_access_log": "on, to a file",
            "simplesamlphp_processes": simplesamlphp.processes,
            "simplesamlphp_session_store": "phpsession (PHP files), a session per wrk slot",
            "opcache_after_load": simplesamlphp.opcache(),
            "table": peer.table(
                measured,
                result,
                peer_header(connections, rounds, seconds, sessions, simplesamlphp.processes),
            ),
        }
    finally:
        if simplesamlphp is not None:
            simplesamlphp.stop()
        fedmock.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def peer_header(
    connections: int, rounds: int, seconds: int, sessions: int, processes: int
) -> list[str]:
    return [
        f"(h) peer: IdP-initiated sign-on to AWS, Response + Assertion signed (RSA-SHA256), "
        f"{connections} connections, {rounds} rounds x {seconds} s, alternating",
        f"    fedmock as `make run` (gunicorn, {make_run_workers()} sync workers, access log "
        f"to a file) against SimpleSAMLphp 1.19 (Apache prefork, {processes} processes, "
        f"mod_php, opcache on, PHP file sessions); {sessions} signed-in sessions each",
    ]


# --- the table ---------------------------------------------------------------------


def table(results: dict) -> str:
    a, s, g = results["in_process"], results["scale"], results["fixtures"]
    h = results["http"]["hostile_signature"]
    lines = [
        f"fedmock benchmark, {results['machine']}",
        "",
        "(a) in process, one core                          per second   ratio",
        f"    raw RSA-2048 signatures                      {a['raw_rsa_signatures_per_s']:10.0f}",
        "    responses, assertion signed                  "
        f"{a['responses_per_s_assertion_signed']:10.0f}"
        f"   {a['ratio_to_rsa_assertion_signed']:.2f} of RSA",
        "    responses, assertion + response signed       "
        f"{a['responses_per_s_both_signed']:10.0f}"
        f"   {a['ratio_to_rsa_both_signed']:.2f} of RSA (2 signatures each)",
        "(c) pysaml2 + xmlsec1, both signed (baseline)   "
        f"{a['pysaml2_xmlsec1_responses_per_s_both_signed']:10.1f}"
        f"   fedmock is {a['speedup_over_pysaml2_xmlsec1']:.0f}x",
        "",
        "(b) over HTTP, gunicorn, assertion + response signed",
        "    flow                     conns      req/s     p50 ms     p99 ms  errors  SAML replies",
    ]
    for flow in ("idp_initiated", "sp_initiated_redirect"):
        for row in results["http"][flow]:
            lines.append(
                f"    {flow:24} {row['connections']:5} {row['requests_per_s']:10.0f} "
                f"{row['p50_ms']:10.2f} {row['p99_ms']:10.2f} {row['errors']:7} "
                f"{row['replies_with_saml_response']:13}"
            )
    c16 = results["http"]["idp_initiated"][2]["requests_per_s"]
    lines += [
        f"    IdP-initiated at 16 connections over the in-process pysaml2/xmlsec1 rate: "
        f"{c16 / a['pysaml2_xmlsec1_responses_per_s_both_signed']:.0f}x",
        "",
        f"(d) scale: {s['users']} users; one in {s['groups_of_big_user']} groups facing "
        f"{s['rules']} rules",
        f"    sign-on, demo directory      {s['demo_sign_on_ms']:6.2f} ms   "
        f"{s['demo_queries_per_sign_on']} SQL queries",
        f"    sign-on, 500 groups x 200    {s['scale_sign_on_ms']:6.2f} ms   "
        f"{s['scale_queries_per_sign_on']} SQL queries   ratio {s['latency_ratio']:.2f}",
        "",
        f"(e) peak RSS per worker during (b): {results['http']['peak_rss_per_worker_mb']:.0f} MB",
        "",
        f"(f) hostile AuthnRequests: {h['in_flight']} in flight, {h['hostile_requests']} in all, "
        f"{h['request_base64_bytes'] // 1024} KB each, XPath transform over 11,000 elements",
        f"    answered {h['hostile_statuses']}  p50 {h['hostile_p50_ms']:7.1f} ms   "
        f"max {h['hostile_max_ms']:7.1f} ms",
        f"    metadata meanwhile ({h['metadata_fetches']} fetches)  p50 "
        f"{h['metadata_p50_ms']:7.1f} ms   max {h['metadata_max_ms']:7.1f} ms",
        "",
        *fixture_rows(g),
    ]
    if "peer" in results:
        lines += ["", *results["peer"]["table"]]
    return "\n".join(lines)


def fixture_rows(g: dict) -> list[str]:
    rows = [
        ("load into an empty database", "load"),
        ("reload, nothing changed", "reload_unchanged"),
        ("reload, every user changed", "reload_every_user_changed"),
        ("reset, every user changed", "reset"),
        ("dump", "dump"),
    ]
    return [
        f"(g) fixture file with {g['users']} users (4 passwords, PBKDF2), one transaction",
        *(
            f"    {label:32} {g[key + '_s']:6.2f} s   {g[key + '_statements']} SQL statements"
            for label, key in rows
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="each wrk run of (b)")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results"))
    parser.add_argument(
        "--only",
        choices=["peer"],
        help="run only this part (peer: (h), fedmock against SimpleSAMLphp)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="peer run: rounds (at least 3)")
    parser.add_argument(
        "--peer-seconds", type=int, default=10, help="peer run: each server's wrk run a round"
    )
    parser.add_argument(
        "--sessions", type=int, default=32, help="peer run: signed-in sessions per server"
    )
    parser.add_argument(
        "--part", choices=["in-process", "scale", "fixtures"], help=argparse.SUPPRESS
    )
    args = parser.parse_args()

    if args.part:  # a child process with its own Django setup and database
        part = {
            "in-process": lambda: in_process(2.0),
            "scale": lambda: scale(200),
            "fixtures": fixture_load,
        }[args.part]()
        print(json.dumps(part))
        return
    if args.rounds < 3 or args.peer_seconds < 1 or args.sessions < 1:
        parser.error("--rounds must be at least 3, --peer-seconds and --sessions at least 1")

    results = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    try:
        if args.only != "peer":
            everything_but_the_peer(results, args.seconds)
        results["peer"] = peer_run(args.peer_seconds, args.rounds, args.sessions)
    except peer.BenchError as error:
        raise SystemExit(f"bench: {error}") from None

    if args.only == "peer":
        print(f"fedmock benchmark, {results['machine']}\n")
        print("\n".join(results["peer"]["table"]))
    else:
        print(table(results))
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    path = output / f"bench-{results['when'].replace(':', '')}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"\nwritten to {path}")


def everything_but_the_peer(results: dict, seconds: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="fedmock-bench-"))
    server = GunicornServer(workdir, workers=os.cpu_count() or 2)
    server.env["ACCESS_LOG"] = "/dev/null"
    server.start()
    try:
        results["http"] = over_http(server, workdir, seconds)
    finally:
        server.stop()
    results["in_process"] = child(server, "in-process")
    scale_dir = Path(tempfile.mkdtemp(prefix="fedmock-bench-scale-"))
    scale_server = GunicornServer(scale_dir)
    for command in (["migrate", "-v0"], ["seed_demo"], ["ensure_signing_key"]):
        scale_server.manage(*command)
    results["scale"] = child(scale_server, "scale")
    fixture_server = GunicornServer(Path(tempfile.mkdtemp(prefix="fedmock-bench-fixtures-")))
    fixture_server.manage("migrate", "-v0")
    results["fixtures"] = child(fixture_server, "fixtures")


def child(server: GunicornServer, part: str) -> dict:
    env = {**server.env, "DJANGO_SETTINGS_MODULE": "idp.settings"}
    output = subprocess.run(
        [sys.executable, __file__, "--part", part],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
