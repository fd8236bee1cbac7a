"""The `fedmock` command in process: the cache, the AWS config edit, the output formats, the
ECP answer's checks and the one-line refusals. No Django: tests/test_cli_e2e.py runs it
against a live fedmock; here the IdP and STS are stand-ins."""

import base64
import http.server
import io
import json
import os
import shlex
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from idp.cli import awsconfig, cache, main, signon, sts
from idp.cli.errors import CliError
from idp.saml import aws

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
ADMIN = "arn:aws:iam::111122223333:role/Admin"
PROVIDER = "arn:aws:iam::111122223333:saml-provider/fedmock"
READ_ONLY = "arn:aws:iam::111122223333:role/ReadOnly"
BASE = ["credentials", "--idp", "http://idp.test", "--user", "alice"]


def credentials_until(expiration: datetime, key: str = "ASIAFIRST") -> dict:
    return {
        "AccessKeyId": key,
        "SecretAccessKey": "secret/with+chars",
        "SessionToken": "token'with\"quotes",
        "Expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


class Run:
    """main() with a clock, an environment and captured output."""

    def __init__(self, tmp_path: Path):
        self.environ = {
            "HOME": str(tmp_path),
            "XDG_CACHE_HOME": str(tmp_path / "xdg"),
            "AWS_CONFIG_FILE": str(tmp_path / "aws" / "config"),
            "FEDMOCK_PASSWORD": "alice",
        }
        self.now = NOW

    def __call__(self, *argv: str, stdin: str = "") -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main.main(
            list(argv),
            now=lambda: self.now,
            environ=self.environ,
            stdin=io.StringIO(stdin),
            stdout=out,
            stderr=err,
        )
        return code, out.getvalue(), err.getvalue()


@pytest.fixture
def run(tmp_path):
    return Run(tmp_path)


@pytest.fixture
def fetches(monkeypatch):
    """Stand-ins for the sign-on and STS: each fetch issues fresh credentials valid 1 h."""
    calls = []

    def get_assertion(idp, user, *, password, token, role_arn, now):
        calls.append(("sign-on", user, password, token, role_arn))
        roles = (aws.RolePair(ADMIN, PROVIDER), aws.RolePair(READ_ONLY, PROVIDER))
        return signon.Assertion("PHNhbWxwOlJlc3BvbnNlLz4=", roles)

    def assume(saml_response, role_arn, principal_arn, *, endpoint, region, duration):
        calls.append(("sts", role_arn, principal_arn, endpoint, duration))
        issued = credentials_until(NOW + timedelta(hours=1), key=f"ASIA{len(calls):04d}")
        return {"Credentials": issued, "AssumedRoleArn": ""}

    monkeypatch.setattr(signon, "get_assertion", get_assertion)
    monkeypatch.setattr(sts, "assume_role_with_saml", assume)
    return calls


def one_line(err: str) -> str:
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("fedmock: ") and "Traceback" not in err
    return err


# --- the cache ---------------------------------------------------------------------------


def test_a_second_call_is_answered_from_the_cache_without_signing_in(run, fetches):
    code, first, _ = run(*BASE, "--role", ADMIN)
    assert code == 0 and len(fetches) == 2
    del run.environ["FEDMOCK_PASSWORD"]  # the cache needs no password
    run.now = NOW + timedelta(minutes=54)  # 6 minutes left: still served
    code, second, err = run(*BASE, "--role", ADMIN)
    assert (code, err, second) == (0, "", first) and len(fetches) == 2


@pytest.mark.parametrize(
    "minutes_later, fetched_again",
    [(0, False), (54, False), (55, True), (56, True), (61, True)],
)
def test_credentials_within_five_minutes_of_expiry_are_fetched_again(
    run, fetches, minutes_later, fetched_again
):
    run(*BASE, "--role", ADMIN)
    run.now = NOW + timedelta(minutes=minutes_later)
    code, out, _ = run(*BASE, "--role", ADMIN, "--format", "credential-process")
    assert code == 0 and (len(fetches) == 4) is fetched_again
    assert json.loads(out)["AccessKeyId"] == ("ASIA0004" if fetched_again else "ASIA0002")


def the_cache_file(run) -> Path:
    (path,) = (Path(run.environ["XDG_CACHE_HOME"]) / "fedmock").glob("*.json")
    return path


def test_cache_files_are_0600_in_a_0700_directory_under_xdg_cache_home(run, fetches):
    run(*BASE, "--role", ADMIN)
    path = the_cache_file(run)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert json.loads(path.read_text())["AccessKeyId"] == "ASIA0002"


def test_a_relative_xdg_cache_home_is_ignored_for_home_cache(run, fetches, tmp_path):
    run.environ["XDG_CACHE_HOME"] = "relative/dir"
    run(*BASE, "--role", ADMIN)
    assert len(list((tmp_path / ".cache" / "fedmock").glob("*.json"))) == 1


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{not json",
        b"[]",
        b'{"AccessKeyId": "A"}',
        json.dumps({**credentials_until(NOW), "Expiration": "2030-13-01"}).encode(),
        json.dumps({**credentials_until(NOW), "Expiration": "2031-01-01T00:00:00"}).encode(),
        json.dumps({**credentials_until(NOW + timedelta(hours=9)), "SessionToken": 7}).encode(),
        b"\xff\xfe",
    ],
)
def test_a_corrupt_cache_file_is_ignored_and_replaced(run, fetches, content):
    run(*BASE, "--role", ADMIN)
    path = the_cache_file(run)
    path.write_bytes(content)
    code, out, err = run(*BASE, "--role", ADMIN, "--format", "credential-process")
    assert (code, err) == (0, "") and len(fetches) == 4
    assert json.loads(path.read_text())["AccessKeyId"] == json.loads(out)["AccessKeyId"]


def test_a_cache_file_others_can_read_is_not_trusted(run, fetches):
    run(*BASE, "--role", ADMIN)
    path = the_cache_file(run)
    path.chmod(0o644)
    run(*BASE, "--role", ADMIN)
    assert len(fetches) == 4 and path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "other",
    [
        ["--user", "bob"],
        ["--idp", "http://other.test"],
        ["--role", READ_ONLY],
        ["--sts-endpoint", "http://127.0.0.1:8000/aws/"],
        ["--duration", "900"],
        ["--region", "eu-west-1"],
    ],
)
def test_no_two_requests_share_a_cache_entry(run, fetches, other):
    run(*BASE, "--role", ADMIN)
    argv = [*BASE, "--role", ADMIN]
    for flag, value in zip(other[::2], other[1::2], strict=True):
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    run(*argv)
    assert len(fetches) == 4


def test_no_cache_neither_reads_nor_writes(run, fetches):
    run(*BASE, "--role", ADMIN, "--no-cache")
    run(*BASE, "--role", ADMIN, "--no-cache")
    assert len(fetches) == 4
    assert not (Path(run.environ["XDG_CACHE_HOME"]) / "fedmock").exists()


def test_a_cached_answer_imports_neither_boto3_requests_lxml_nor_django(tmp_path):
    argv = ["credentials", "--idp", "http://x", "--user", "u", "--role", ADMIN]
    environ = {"XDG_CACHE_HOME": str(tmp_path)}
    path = main._cache_path(main.build_parser().parse_args(argv), "http://x", ADMIN, environ)
    cache.store(path, credentials_until(datetime.now(UTC) + timedelta(hours=1)))
    script = (
        "import json, sys; from idp.cli import main\n"
        "code = main.main(json.loads(sys.argv[1]), environ=json.loads(sys.argv[2]))\n"
        "heavy = ('boto3', 'botocore', 'requests', 'lxml', 'django')\n"
        "print(sorted(m for m in heavy if m in sys.modules), code, file=sys.stderr)"
    )
    answer = subprocess.run(
        [sys.executable, "-c", script, json.dumps(argv), json.dumps(environ)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert answer.stderr.strip() == "[] 0", answer.stderr
    assert json.loads(answer.stdout)["AccessKeyId"] == "ASIAFIRST"


# --- formats -----------------------------------------------------------------------------


def test_credential_process_is_the_json_the_aws_cli_reads(run, fetches):
    code, out, _ = run(*BASE, "--role", ADMIN, "--format", "credential-process")
    assert code == 0
    assert json.loads(out) == {
        "Version": 1,
        **credentials_until(NOW + timedelta(hours=1), key="ASIA0002"),
    }


def test_env_is_export_lines_a_shell_reads_back_exactly(run, fetches):
    code, out, _ = run(*BASE, "--role", ADMIN, "--format", "env")
    assert code == 0
    exported = subprocess.run(
        ["sh", "-c", out + '\nprintf \'%s\\n\' "$AWS_SECRET_ACCESS_KEY" "$AWS_SESSION_TOKEN"'],
        capture_output=True,
        text=True,
        env={},
    ).stdout
    assert exported.splitlines() == ["secret/with+chars", "token'with\"quotes"]
    assert [line.split("=")[0] for line in out.splitlines()] == [
        "export AWS_ACCESS_KEY_ID",
        "export AWS_SECRET_ACCESS_KEY",
        "export AWS_SESSION_TOKEN",
        "export AWS_CREDENTIAL_EXPIRATION",
    ]


def test_json_is_the_default(run, fetches):
    code, out, _ = run(*BASE, "--role", ADMIN)
    assert set(json.loads(out)) == set(cache.FIELDS)


def test_account_and_role_name_pick_the_pair_from_the_assertion(run, fetches):
    code, _, err = run(*BASE, "--account", "111122223333", "--role-name", "ReadOnly")
    assert (code, err) == (0, "")
    assert fetches[0][-1] is None  # the role is not known before the assertion
    assert fetches[1][1:3] == (READ_ONLY, PROVIDER)


# --- one-line refusals -------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, words",
    [
        (["credentials", "--user", "alice", "--role", ADMIN], "no IdP"),
        (["credentials", "--idp", "ftp://x", "--user", "alice", "--role", ADMIN], "http(s)"),
        ([*BASE], "no role given"),
        ([*BASE, "--role", "Admin"], "is not a role ARN"),
        ([*BASE, "--role", ADMIN, "--account", "111122223333"], "name the role twice"),
        ([*BASE, "--account", "1111", "--role-name", "Admin"], "not 12 digits"),
        ([*BASE, "--role", ADMIN, "--duration", "60"], "ValidationError"),
        ([*BASE, "--role", ADMIN, "--format", "yaml"], "invalid choice"),
        (["nonsense"], "invalid choice"),
        ([], "required"),
        (["configure-profile", "a b", "--idp", "http://x", "--user", "a", "--role", ADMIN], "a b"),
    ],
)
def test_usage_errors_are_one_line_with_exit_code_2(run, fetches, argv, words):
    code, out, err = run(*argv)
    assert (code, out, fetches) == (2, "", [])
    assert words in one_line(err)


def test_no_password_and_no_terminal_names_every_way_to_give_one(run):
    del run.environ["FEDMOCK_PASSWORD"]
    code, _, err = run(*BASE, "--role", ADMIN)
    assert code == 2
    for way in ("FEDMOCK_PASSWORD", "--password-stdin", "FEDMOCK_TOKEN"):
        assert way in one_line(err)


def test_password_stdin_wins_over_the_environment_and_a_token(run, fetches):
    run.environ["FEDMOCK_TOKEN"] = "fm_x_y"
    run(*BASE, "--role", ADMIN, "--password-stdin", stdin="from stdin\n")
    assert fetches[0][2:4] == ("from stdin", None)


def test_a_token_is_used_when_no_password_is_given(run, fetches):
    del run.environ["FEDMOCK_PASSWORD"]
    run.environ["FEDMOCK_TOKEN"] = "fm_x_y"
    run(*BASE, "--role", ADMIN)
    assert fetches[0][2:5] == (None, "fm_x_y", ADMIN)


def test_a_role_not_in_the_assertion_is_named_with_the_roles_there_are(run, fetches):
    code, _, err = run(*BASE, "--role", "arn:aws:iam::111122223333:role/Nope")
    assert code == 1 and len(fetches) == 1  # STS is never called
    line = one_line(err)
    assert "Unknown role" in line and ADMIN in line and READ_ONLY in line and "AccessDenied" in line


def response(status: int, body: bytes, content_type: str = "application/json"):
    answer = requests.Response()
    answer.status_code, answer._content = status, body
    answer.headers["Content-Type"] = content_type
    answer.reason = "Unauthorized" if status == 401 else "Error"
    return answer


SOAP_FAULT = (
    b'<soap11:Envelope xmlns:soap11="http://schemas.xmlsoap.org/soap/envelope/"><soap11:Body>'
    b"<soap11:Fault><faultcode>soap11:Client</faultcode><faultstring>Sign-in failed</faultstring>"
    b'<detail><fm:Problem xmlns:fm="urn:fedmock:soap-fault"><fm:title>Sign-in failed</fm:title>'
    b"<fm:detail>The user name or password is wrong.</fm:detail><fm:hint>Check them.</fm:hint>"
    b"</fm:Problem></detail></soap11:Fault></soap11:Body></soap11:Envelope>"
)


@pytest.mark.parametrize(
    "token, answer, words",
    [
        (None, response(401, SOAP_FAULT, "text/xml"), "The user name or password is wrong"),
        (None, response(401, b"", "text/plain"), "FEDMOCK_PASSWORD"),
        (None, response(404, b"<html/>", "text/html"), "no ECP endpoint"),
        (None, response(429, b"", "text/plain"), "wait"),
        ("fm_bad", response(401, b'{"title": "Authentication failed", "message": '
                            b'"Invalid token.", "hint": "", "status": 401}'), "Invalid token"),
        ("fm_ok", response(400, b'{"title": "Unknown role", "message": "alice has no role X", '
                           b'"hint": "Pick one.", "status": 400}'), "alice has no role X"),
    ],
)  # fmt: skip
def test_idp_refusals_are_one_line_with_the_idps_words(run, monkeypatch, token, answer, words):
    if token:
        del run.environ["FEDMOCK_PASSWORD"]
        run.environ["FEDMOCK_TOKEN"] = token
    monkeypatch.setattr(requests, "post", lambda *a, **k: answer)
    code, _, err = run(*BASE, "--role", ADMIN)
    assert code == 1
    line = one_line(err)
    assert words in line and f"HTTP {answer.status_code}" in line


def test_an_unreachable_idp_is_one_line(run):
    code, _, err = run("roles", "--idp", "http://127.0.0.1:9", "--user", "alice")
    assert code == 1 and "IdP unreachable" in one_line(err)


class FakeSts(http.server.BaseHTTPRequestHandler):
    """An STS answering every request with one of AWS's Query-protocol errors."""

    code, message, status = "AccessDenied", "Not authorized to perform sts:AssumeRoleWithSAML", 403

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        body = (
            '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
            f"<Type>Sender</Type><Code>{self.code}</Code><Message>{self.message}</Message>"
            "</Error><RequestId>r-1</RequestId></ErrorResponse>"
        ).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "text/xml")
        self.send_header("X-Fedmock-Explanation", "statement 0: StringEquals SAML:sub")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_sts():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeSts)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    "code, message, status, fix",
    [
        ("AccessDenied", "Not authorized to perform sts:AssumeRoleWithSAML", 403, "trust policy"),
        ("InvalidIdentityToken", "Response signature invalid", 400, "sync_iam_provider"),
        ("ExpiredTokenException", "Token must be redeemed within 5 minutes", 400, "clocks"),
        ("ValidationError", "1 validation error detected", 400, "--duration"),
    ],
)
def test_sts_refusals_name_awss_code_and_the_fix(
    run, fetches, monkeypatch, fake_sts, code, message, status, fix
):
    monkeypatch.setattr(sts, "assume_role_with_saml", TRUE_ASSUME)
    monkeypatch.setattr(FakeSts, "code", code)
    monkeypatch.setattr(FakeSts, "message", message)
    monkeypatch.setattr(FakeSts, "status", status)
    exit_code, out, err = run(*BASE, "--role", ADMIN, "--sts-endpoint", fake_sts)
    assert (exit_code, out) == (1, "")
    line = one_line(err)
    assert f"fedmock: {code} from {fake_sts}: {message}." in line
    assert fix in line and "fedmock explains: statement 0: StringEquals SAML:sub" in line
    assert not list(Path(run.environ["XDG_CACHE_HOME"]).glob("**/*.json"))


TRUE_ASSUME = sts.assume_role_with_saml


def test_an_unreachable_sts_is_one_line(run, fetches, monkeypatch):
    monkeypatch.setattr(sts, "assume_role_with_saml", TRUE_ASSUME)
    code, _, err = run(*BASE, "--role", ADMIN, "--sts-endpoint", "http://127.0.0.1:9/")
    assert code == 1 and "STS unreachable" in one_line(err)


# --- the ECP answer ----------------------------------------------------------------------

SAML_RESPONSE = (
    '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
    'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r" Version="2.0">'
    '<samlp:Status><samlp:StatusCode Value="{status}"/></samlp:Status><saml:Assertion>'
    '<saml:AttributeStatement><saml:Attribute Name="https://aws.amazon.com/SAML/Attributes/Role">'
    f"<saml:AttributeValue>{PROVIDER},{ADMIN}</saml:AttributeValue>"
    f"<saml:AttributeValue>{READ_ONLY},{PROVIDER}</saml:AttributeValue>"
    "<saml:AttributeValue>not,a pair</saml:AttributeValue>"
    "</saml:Attribute></saml:AttributeStatement></saml:Assertion></samlp:Response>"
)
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"


def ecp_answer(acs: str = aws.SIGNIN_ACS, status: str = SUCCESS) -> bytes:
    return (
        '<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Header>'
        '<ecp:Response xmlns:ecp="urn:oasis:names:tc:SAML:2.0:profiles:SSO:ecp" '
        f'S:mustUnderstand="1" AssertionConsumerServiceURL="{acs}"/></S:Header>'
        f"<S:Body>{SAML_RESPONSE.format(status=status)}</S:Body></S:Envelope>"
    ).encode()


def test_the_response_is_taken_out_of_the_soap_body_with_its_role_pairs():
    xml = signon.response_from_soap(ecp_answer())
    assert xml.startswith(b"<samlp:Response") and b"Envelope" not in xml
    assert signon.roles_in(xml) == (
        aws.RolePair(ADMIN, PROVIDER),
        aws.RolePair(READ_ONLY, PROVIDER),
    )


@pytest.mark.parametrize(
    "answer, words",
    [
        (ecp_answer(acs="https://evil.test/acs"), "ECP consumer mismatch"),
        (ecp_answer(status="urn:oasis:names:tc:SAML:2.0:status:Requester"), "Requester"),
        (SOAP_FAULT, "The user name or password is wrong"),
        (b"<html/>", "Not a SOAP answer"),
        (b"<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>", "Not a SOAP answer"),
    ],
)
def test_an_ecp_answer_that_is_not_a_success_for_aws_is_refused(answer, words):
    with pytest.raises(CliError) as refused:
        signon.response_from_soap(answer)
    assert words in refused.value.line()


def test_the_ecp_request_is_an_authn_request_from_aws_in_a_soap_body():
    from lxml import etree

    envelope = etree.fromstring(signon.ecp_authn_request(NOW, "_abc"))
    (request,) = envelope.find("{http://schemas.xmlsoap.org/soap/envelope/}Body")
    assert request.tag == "{urn:oasis:names:tc:SAML:2.0:protocol}AuthnRequest"
    assert request.get("ID") == "_abc" and request.get("IssueInstant") == "2030-01-01T12:00:00Z"
    assert request.get("AssertionConsumerServiceURL") == aws.SIGNIN_ACS
    assert request.get("ProtocolBinding") == signon.PAOS_BINDING
    assert request.findtext("{urn:oasis:names:tc:SAML:2.0:assertion}Issuer") == aws.AUDIENCE


def test_the_password_goes_by_http_basic_to_the_ecp_endpoint(monkeypatch):
    sent = {}

    def post(url, **kwargs):
        sent.update(kwargs, url=url)
        return response(200, ecp_answer(), "text/xml")

    monkeypatch.setattr(requests, "post", post)
    assertion = signon.get_assertion(
        "http://idp.test/", "alice", password="pw", token=None, role_arn=None, now=NOW
    )
    assert sent["url"] == "http://idp.test/saml/ecp/" and sent["auth"] == ("alice", "pw")
    assert sent["headers"]["Content-Type"].startswith("text/xml")
    assert base64.b64decode(assertion.saml_response).startswith(b"<samlp:Response")
    assert [pair.role_arn for pair in assertion.roles] == [ADMIN, READ_ONLY]


# --- configure-profile -------------------------------------------------------------------

EXISTING = (
    b"# my AWS config: keep this comment\n"
    b"[default]\n"
    b"region = eu-central-1   ; inline comment\n"
    b"\n"
    b"[profile  work]\n"
    b"credential_process = old command\n"
    b"output = table\n"
    b"\n"
    b"# the next one is for S3\n"
    b"[profile s3]\n"
    b"s3 =\n"
    b"    max_concurrent_requests = 20\n"
    b"[sso-session corp]\n"
    b"sso_region = us-east-1\n"
)
PROFILE_ARGS = ["--idp", "http://127.0.0.1:8000", "--user", "alice", "--role", ADMIN]


def configure(run, name: str, *extra: str) -> tuple[str, bytes]:
    code, out, err = run("configure-profile", name, *PROFILE_ARGS, "--command", "/bin/fm", *extra)
    assert (code, err) == (0, ""), err
    return out, Path(run.environ["AWS_CONFIG_FILE"]).read_bytes()


WORK = (
    b"[profile work]\n"
    b"credential_process = /bin/fm credentials --idp http://127.0.0.1:8000 --user alice "
    b"--role arn:aws:iam::111122223333:role/Admin --format credential-process\n"
)


def test_configure_profile_replaces_its_own_section_and_keeps_every_other_byte(run):
    path = Path(run.environ["AWS_CONFIG_FILE"])
    path.parent.mkdir()
    path.write_bytes(EXISTING)
    path.chmod(0o640)
    out, written = configure(run, "work")
    assert out.startswith("Replaced profile work")
    before, after = EXISTING.split(b"[profile  work]\n")[0], EXISTING.split(b"output = table\n")[1]
    assert written == before + WORK + after
    assert path.stat().st_mode & 0o777 == 0o640
    assert not list(path.parent.glob(".config-*"))  # no temporary file left behind


def test_configure_profile_appends_a_new_section_after_a_blank_line(run):
    path = Path(run.environ["AWS_CONFIG_FILE"])
    path.parent.mkdir()
    path.write_bytes(EXISTING.rstrip(b"\n"))  # no final newline
    out, written = configure(
        run, "fedmock-admin", "--sts-endpoint", "http://h/aws/", "--region", "eu-west-1"
    )
    assert out.startswith("Added profile fedmock-admin")
    assert written.startswith(EXISTING.rstrip(b"\n") + b"\n\n[profile fedmock-admin]\n")
    assert written.endswith(b"--sts-endpoint http://h/aws/ --region eu-west-1 "
                            b"--format credential-process\nregion = eu-west-1\n")  # fmt: skip


def test_configure_profile_creates_the_file_and_its_directory(run):
    out, written = configure(run, "work")
    assert written == WORK
    assert Path(run.environ["AWS_CONFIG_FILE"]).stat().st_mode & 0o777 == 0o600


def test_configure_profile_keeps_crlf_line_endings(run):
    path = Path(run.environ["AWS_CONFIG_FILE"])
    path.parent.mkdir()
    path.write_bytes(EXISTING.replace(b"\n", b"\r\n"))
    _, written = configure(run, "work")
    assert (
        written
        == EXISTING.replace(b"\n", b"\r\n").split(b"[profile  work]")[0]
        + WORK.replace(b"\n", b"\r\n")
        + EXISTING.replace(b"\n", b"\r\n").split(b"output = table\r\n")[1]
    )


@pytest.mark.parametrize("header", [b"[default]", b"[profile default]"])
def test_the_default_profile_is_found_under_either_spelling(header):
    original = b"# c\n" + header + b"\nregion = x\n\n[profile b]\nk = v\n"
    updated, replaced = awsconfig.with_profile(original, "default", [("region", "y")])
    assert replaced and updated == b"# c\n[default]\nregion = y\n\n[profile b]\nk = v\n"


def test_a_profile_whose_name_is_a_prefix_of_another_is_not_confused():
    original = b"[profile work-extra]\nk = v\n"
    updated, replaced = awsconfig.with_profile(original, "work", [("k", "w")])
    assert not replaced and updated == original + b"\n[profile work]\nk = w\n"


def test_the_credential_process_line_splits_back_into_the_same_arguments(run):
    idp = "http://127.0.0.1:8000/with space"
    code, _, err = run(
        "configure-profile", "p", "--idp", idp, "--user", "o'brien", "--account", "111122223333",
        "--role-name", "Admin", "--command", "/opt/my tools/fedmock",
    )  # fmt: skip
    assert code == 0, err
    config = Path(run.environ["AWS_CONFIG_FILE"]).read_text()
    line = next(x for x in config.splitlines() if x.startswith("credential_process = "))
    assert shlex.split(line.split(" = ", 1)[1]) == [
        "/opt/my tools/fedmock", "credentials", "--idp", idp, "--user", "o'brien",
        "--account", "111122223333", "--role-name", "Admin", "--format", "credential-process",
    ]  # fmt: skip


def test_the_help_is_quick_to_reach_and_exits_0(run):
    assert run("--help")[0] == 0
    assert os.access(Path(sys.executable).parent / "fedmock", os.X_OK)


def test_without_aws_config_file_the_profile_goes_to_home_dot_aws_config(run, tmp_path):
    del run.environ["AWS_CONFIG_FILE"]
    configure_out = run("configure-profile", "work", *PROFILE_ARGS, "--command", "/bin/fm")
    assert configure_out[0] == 0
    assert (tmp_path / ".aws" / "config").read_bytes() == WORK
