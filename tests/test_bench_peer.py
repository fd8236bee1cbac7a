"""Issue 13 part S: the pure logic of `make bench`'s peer run (bench/peer.py) - reading wrk,
the response checks, ratios and verdict, the PHP literals and templates - and, where the
tools are installed, that the rendered configuration is valid PHP and Apache config and
that the wrk script spreads its sessions. No timings are asserted."""

import http.server
import json
import math
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from bench import peer

ROOT = Path(__file__).resolve().parent.parent
ROLE = "https://aws.amazon.com/SAML/Attributes/Role"
NAME = "https://aws.amazon.com/SAML/Attributes/RoleSessionName"
DURATION = "https://aws.amazon.com/SAML/Attributes/SessionDuration"


def wrk_output(
    *,
    p50="10.00ms",
    p99="45.10ms",
    rate="497.31",
    sockets="",
    non_2xx="",
    counts="saml_replies=4970 other_replies=3",
) -> str:
    return "\n".join(
        line
        for line in [
            "Running 10s test @ http://127.0.0.1:8000/saml/init/?sp=urn%3Aamazon%3Awebservices",
            "  2 threads and 16 connections",
            "  Thread Stats   Avg      Stdev     Max   +/- Stdev",
            "    Latency    32.10ms   10.20ms 120.00ms   70.00%",
            "    Req/Sec   250.00     30.00   300.00     70.00%",
            "  Latency Distribution",
            f"     50%   {p50}" if p50 else "",
            "     75%   35.00ms",
            "     90%   40.00ms",
            f"     99%   {p99}" if p99 else "",
            "  4973 requests in 10.00s, 50.00MB read",
            sockets,
            non_2xx,
            f"Requests/sec:    {rate}" if rate else "",
            "Transfer/sec:      5.00MB",
            counts,
        ]
        if line
    )


# --- wrk -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ({"p99": "812.00us"}, {"p99_ms": 0.812}),
        ({"p99": "45.10ms"}, {"p99_ms": 45.1}),
        ({"p99": "1.20s"}, {"p99_ms": 1200.0}),
        ({"p99": "1.50m"}, {"p99_ms": 90_000.0}),
        ({"p50": "3.00ms"}, {"p50_ms": 3.0}),
        ({"rate": "336.08"}, {"requests_per_s": 336.08}),
        (
            {"sockets": "  Socket errors: connect 1, read 2, write 3, timeout 4"},
            {"socket_errors": 10, "errors": 13},
        ),
        ({"non_2xx": "  Non-2xx or 3xx responses: 3"}, {"non_2xx": 3, "errors": 3}),
        ({}, {"non_2xx": 0, "socket_errors": 0, "saml_replies": 4970, "other_replies": 3}),
        ({"counts": "saml_replies=10 other_replies=0"}, {"errors": 0}),
    ],
)
def test_wrk_output_is_read(text, expected):
    run = peer.parse_wrk(wrk_output(**text))
    for field, value in expected.items():
        assert getattr(run, field) == pytest.approx(value), field


@pytest.mark.parametrize(
    "text, complaint",
    [
        ({"p99": ""}, "no 99% latency"),
        ({"p50": ""}, "no 50% latency"),
        ({"p99": "12.0 ms"}, "no 99% latency"),
        ({"rate": ""}, "no Requests/sec"),
        ({"counts": ""}, "saml_replies="),
        ({"counts": "saml_replies=10"}, "saml_replies="),
    ],
)
def test_wrk_output_without_a_number_is_refused_in_one_line(text, complaint):
    with pytest.raises(peer.BenchError, match=complaint) as refused:
        peer.parse_wrk(wrk_output(**text))
    assert "\n" not in str(refused.value)


# --- rounds and verdict ----------------------------------------------------------------


def run(rate: float, p99: float = 50.0, errors: int = 0) -> peer.WrkRun:
    return peer.WrkRun(rate, p99 / 2, p99, 0, 0, int(rate * 10), errors)


def fed(rate: float, p99: float = 40.0, errors: int = 0) -> peer.WrkRun:
    """fedmock's run; its p99 below SimpleSAMLphp's unless a case says otherwise."""
    return run(rate, p99, errors)


def ssp(rate: float, p99: float = 80.0, errors: int = 0) -> peer.WrkRun:
    return run(rate, p99, errors)


def rounds(*pairs) -> list[peer.Round]:
    return [
        peer.Round(number, "fedmock", fedmock, simplesamlphp)
        for number, (fedmock, simplesamlphp) in enumerate(pairs, 1)
    ]


def test_a_round_ratio_divides_fedmock_by_simplesamlphp():
    assert rounds((run(500), run(250)))[0].ratio == 2.0
    assert rounds((run(500), run(0)))[0].ratio == math.inf


@pytest.mark.parametrize(
    "measured, median, failures",
    [
        # odd count: the middle one, not the mean (3.0 would pass on the mean of 1.9, 1.9, 5.2)
        ([(fed(380), ssp(200)), (fed(380), ssp(200)), (fed(1040), ssp(200))], 1.9, ["1.90x < 2x"]),
        ([(fed(400), ssp(200)), (fed(420), ssp(200)), (fed(300), ssp(200))], 2.0, []),
        # even count: the mean of the middle two
        (
            [
                (fed(300), ssp(200)),
                (fed(500), ssp(200)),
                (fed(420), ssp(200)),
                (fed(100), ssp(200)),
            ],
            1.8,
            ["1.80x < 2x"],
        ),
        # one error on either side fails it
        (
            [(fed(500, errors=1), ssp(200)), (fed(500), ssp(200)), (fed(500), ssp(200))],
            2.5,
            ["fedmock had 1 errors"],
        ),
        (
            [(fed(500), ssp(200)), (fed(500), ssp(200, errors=2)), (fed(500), ssp(200))],
            2.5,
            ["SimpleSAMLphp had 2 errors"],
        ),
        # p99: the medians; equal is not below
        ([(fed(500, 80), ssp(200, 80))] * 3, 2.5, ["p99 80.0 ms is not below 80.0 ms"]),
        (
            [
                (fed(500, 90), ssp(200, 80)),
                (fed(500, 10), ssp(200, 80)),
                (fed(500, 95), ssp(200, 80)),
            ],
            2.5,
            ["p99 90.0 ms is not below 80.0 ms"],
        ),
        (
            [(fed(100, 90), ssp(200, 30, errors=1))] * 3,
            0.5,
            ["0.50x < 2x", "SimpleSAMLphp had 3 errors", "p99 90.0 ms is not below 30.0 ms"],
        ),
    ],
)
def test_verdict(measured, median, failures):
    result = peer.verdict(rounds(*measured))
    assert result.median_ratio == pytest.approx(median)
    assert len(result.failures) == len(failures)
    for failure, expected in zip(result.failures, failures, strict=True):
        assert expected in failure
    assert result.passed is (not failures)
    assert result.line().startswith("PASS: " if not failures else "FAIL: ")
    assert "\n" not in result.line()


def test_a_verdict_needs_rounds():
    with pytest.raises(peer.BenchError, match="no rounds"):
        peer.verdict([])


def test_the_table_and_the_json_show_every_round_and_the_verdict():
    measured = rounds((run(500, 40), run(250, 90)), (run(480, 45), run(0, 90, errors=9)))
    result = peer.verdict(measured)
    lines = peer.table(measured, result, ["(h) header", "    setup"])
    assert lines[:2] == ["(h) header", "    setup"]
    assert any(line.rstrip().endswith("2.00") for line in lines)
    assert any(line.rstrip().endswith("inf") for line in lines)
    assert lines[-1].strip() == result.line()
    document = json.loads(json.dumps(peer.as_json(measured, result), allow_nan=False))
    assert [r["ratio"] for r in document["rounds"]] == [2.0, None]  # JSON has no Infinity
    assert document["rounds"][1]["simplesamlphp"]["errors"] == 9
    assert document["passed"] is False and document["verdict"] == result.line()


# --- the sample responses --------------------------------------------------------------

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"


def signature(
    reference: str, method: str = peer.SIG_RSA_SHA256, digest: str = peer.DIGEST_SHA256
) -> str:
    return (
        f'<ds:Signature xmlns:ds="{DS}"><ds:SignedInfo>'
        f'<ds:SignatureMethod Algorithm="{method}"/><ds:Reference URI="{reference}">'
        f'<ds:DigestMethod Algorithm="{digest}"/></ds:Reference>'
        "</ds:SignedInfo></ds:Signature>"
    )


def response(
    *,
    response_signature: str | None = None,
    assertion_signature: str | None = None,
    attributes=((ROLE, ("arn:role,arn:provider",)), (NAME, ("alice",)), (DURATION, ("3600",))),
    audience="urn:amazon:webservices",
    assertions=1,
) -> bytes:
    if response_signature is None:
        response_signature = signature("#_r")
    if assertion_signature is None:
        assertion_signature = signature("#_a")
    statement = "".join(
        f'<saml:Attribute Name="{name}">'
        + "".join(f"<saml:AttributeValue>{value}</saml:AttributeValue>" for value in values)
        + "</saml:Attribute>"
        for name, values in attributes
    )
    assertion = (
        f'<saml:Assertion ID="_a"><saml:Issuer>idp</saml:Issuer>{assertion_signature}'
        '<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:'
        'persistent">x</saml:NameID></saml:Subject><saml:Conditions><saml:AudienceRestriction>'
        f"<saml:Audience>{audience}</saml:Audience></saml:AudienceRestriction></saml:Conditions>"
        f"<saml:AttributeStatement>{statement}</saml:AttributeStatement></saml:Assertion>"
    )
    return (
        f'<samlp:Response xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" ID="_r" '
        f'Destination="https://signin.aws.amazon.com/saml"><saml:Issuer>idp</saml:Issuer>'
        f"{response_signature}{assertion * assertions}</samlp:Response>"
    ).encode()


def test_a_response_signed_twice_is_read():
    facts = peer.read_response(response())
    assert facts.signed == ("Assertion", "Response")
    assert facts.signature_methods == (peer.SIG_RSA_SHA256, peer.SIG_RSA_SHA256)
    assert facts.digest_methods == (peer.DIGEST_SHA256, peer.DIGEST_SHA256)
    assert dict(facts.attributes)[ROLE] == ("arn:role,arn:provider",)
    assert facts.audience == "urn:amazon:webservices"
    assert facts.destination == "https://signin.aws.amazon.com/saml"
    assert facts.name_id_format.endswith(":persistent")
    assert peer.same_work(facts, facts) == []


@pytest.mark.parametrize(
    "changed, problem",
    [
        ({"response_signature": ""}, "signed ['Assertion'], not both"),
        ({"assertion_signature": ""}, "signed ['Response'], not both"),
        # a signature over something else (say, a wrapped copy) does not count
        ({"assertion_signature": signature("#_r")}, "signed ['Response'], not both"),
        ({"response_signature": signature("")}, "signed ['Assertion'], not both"),
        (
            {"response_signature": signature("#_r", "http://www.w3.org/2000/09/xmldsig#rsa-sha1")},
            "signs with",
        ),
        (
            {
                "assertion_signature": signature(
                    "#_a", digest="http://www.w3.org/2000/09/xmldsig#sha1"
                )
            },
            "digests with",
        ),
        ({"attributes": ((ROLE, ("r",)), (NAME, ("alice",)))}, "sends no SessionDuration"),
        ({"attributes": ()}, "sends no Role, RoleSessionName, SessionDuration"),
        (
            {"attributes": ((ROLE, ("arn:role,arn:provider",)), (NAME, ("alice",)))},
            "SessionDuration differs: fedmock ['3600'], SimpleSAMLphp ['(none)']",
        ),
        ({"audience": "urn:other"}, "audience differs"),
        (
            {
                "attributes": (
                    (ROLE, ("arn:role,arn:provider",)),
                    (NAME, ("bob",)),
                    (DURATION, ("3600",)),
                )
            },
            "attribute https://aws.amazon.com/SAML/Attributes/RoleSessionName differs: "
            "fedmock ['alice'], SimpleSAMLphp ['bob']",
        ),
    ],
)
def test_responses_that_do_not_do_the_same_work(changed, problem):
    fedmock = peer.read_response(response())
    other = peer.read_response(response(**changed))
    problems = peer.same_work(fedmock, other)
    assert any(problem in p for p in problems), problems
    assert any("SimpleSAMLphp" in p or "differs" in p for p in problems)


@pytest.mark.parametrize(
    "xml, complaint",
    [
        (b"<not xml", "not XML"),
        (b'<x:Other xmlns:x="urn:x"/>', "not samlp:Response"),
        (response(assertions=0), "holds 0 plain assertions"),
        (response(assertions=2), "holds 2 plain assertions"),
        (
            b'<!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            + response().replace(b"<saml:Issuer>idp", b"<saml:Issuer>&e;", 1),
            None,  # read, with the entity left unresolved
        ),
    ],
)
def test_hostile_responses(xml, complaint):
    if complaint is None:
        facts = peer.read_response(xml)
        assert "root:" not in repr(facts)
        return
    with pytest.raises(peer.BenchError, match=complaint):
        peer.read_response(xml)


# --- PHP literals and templates --------------------------------------------------------

HOSTILE_STRINGS = [
    *("", "plain", "it's", "back\\slash", "\\'", "'\\", "?> <?php exit(1);"),
    *("a\nb", "$x {$y}", "é ☃"),
]


@pytest.mark.parametrize(
    "value, literal",
    [
        (None, "null"),
        (True, "true"),
        (False, "false"),
        (3600, "3600"),
        (-1, "-1"),
        (1.5, "1.5"),
        ("it's", "'it\\'s'"),
        ("back\\slash", "'back\\\\slash'"),
        ("\\'", "'\\\\\\''"),
        ("$x", "'$x'"),
        (["a", 1], "['a', 1]"),
        (("a",), "['a']"),
        ({"k": ["v"], 2: None}, "['k' => ['v'], 2 => null]"),
        ({}, "[]"),
    ],
)
def test_php_literals(value, literal):
    assert peer.php_literal(value) == literal


@pytest.mark.parametrize(
    "value, error",
    [
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        ({True: "x"}, TypeError),
        ({("a",): "x"}, TypeError),
        (object(), TypeError),
        (b"bytes", TypeError),
    ],
)
def test_values_without_a_php_literal_are_refused(value, error):
    with pytest.raises(error):
        peer.php_literal(value)


@pytest.mark.skipif(shutil.which("php") is None, reason="PHP is not installed")
def test_php_reads_the_literals_back_as_written():
    value = {
        "strings": HOSTILE_STRINGS,
        "nested": {"https://aws.amazon.com/SAML/Attributes/Role": ["a,b"], "n": [1, 2.5, True]},
    }
    script = f"echo json_encode({peer.php_literal(value)});"
    printed = subprocess.run(["php", "-r", script], capture_output=True, text=True, check=True)
    assert json.loads(printed.stdout) == value


@pytest.mark.parametrize(
    "template, values, complaint",
    [
        ("a @@X@@ b", {}, "without values ['X']"),
        ("a b", {"X": "1"}, "without placeholders ['X']"),
        ("@@X@@ @@Y@@", {"X": "1"}, "without values ['Y']"),
    ],
)
def test_render_refuses_a_placeholder_or_value_left_over(template, values, complaint):
    with pytest.raises(KeyError, match=complaint.replace("[", r"\[").replace("]", r"\]")):
        peer.render(template, values)


def test_render_fills_every_placeholder_once_and_not_values_that_look_like_one():
    assert peer.render("@@X@@-@@X@@ @@Y@@", {"X": "@@Y@@", "Y": "y"}) == "@@Y@@-@@Y@@ y"


@pytest.mark.skipif(
    shutil.which("php") is None
    or not Path("/usr/sbin/apache2").exists()
    or not Path("/usr/share/simplesamlphp/www").is_dir(),
    reason="`./scripts/install-system-deps bench` has not run",
)
def test_the_written_configuration_is_valid_php_and_apache_config(tmp_path):
    from bench.simplesamlphp.server import SimpleSAMLphpServer

    root = tmp_path / "simplesamlphp"
    server = SimpleSAMLphpServer(
        root,
        8,
        username="alice",
        attributes={ROLE: ["arn:x,arn:y"], NAME: ["o'brien\\"], DURATION: ["3600"]},
        sp_entity_id="urn:amazon:webservices",
        sp_acs="https://signin.aws.amazon.com/saml",
    )
    server.write()
    for php in sorted(root.glob("*/*.php")):
        lint = subprocess.run(["php", "-l", str(php)], capture_output=True, text=True)
        assert lint.returncode == 0, lint.stdout + lint.stderr
    # What SimpleSAMLphp will see: the user with every attribute, exactly as given.
    shown = subprocess.run(
        ["php", "-r", f"include '{root}/config/authsources.php'; echo json_encode($config);"],
        capture_output=True,
        text=True,
        check=True,
    )
    users = json.loads(shown.stdout)["bench-userpass"]
    assert users["alice:alice"][NAME] == ["o'brien\\"]
    assert users["alice:alice"]["uid"] == ["alice"]
    check = subprocess.run(
        ["/usr/sbin/apache2", "-f", str(root / "apache2.conf"), "-t"],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
    assert "Listen 127.0.0.1:8\n" in (root / "apache2.conf").read_text()


# --- the wrk script --------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_the_wrk_script_sends_every_session_and_counts_saml_replies(tmp_path):
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802 (http.server's name)
            seen.append(self.headers.get("Cookie"))
            body = (
                b'<form><input name="SAMLResponse" value="x"/></form>'
                if self.headers.get("Cookie") != "s=3"
                else b"signed out"
            )
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    cookies = tmp_path / "cookies.txt"
    cookies.write_text("s=0\ns=1\ns=2\ns=3\ns=4\n")
    try:
        output = subprocess.run(
            [
                "wrk",
                "-t2",
                "-c4",
                "-d1s",
                "--latency",
                "-s",
                str(ROOT / "bench" / "peer_sessions.lua"),
                f"http://127.0.0.1:{server.server_address[1]}/",
                "--",
                str(cookies),
                "2",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
    finally:
        server.shutdown()
    result = peer.parse_wrk(output)
    assert set(seen) == {"s=0", "s=1", "s=2", "s=3", "s=4"}
    # wrk does not count the replies still in flight when it stops; the server saw them.
    assert 0 < result.other_replies <= seen.count("s=3")
    assert 0 < result.saml_replies <= len(seen) - seen.count("s=3")
    assert result.errors == result.other_replies
