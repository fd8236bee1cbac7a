"""Review of issue 10 (sts): the local STS's SigV4 check, refusals a request signed with
issued credentials must meet, and the Query door's Version."""

import datetime
import hashlib
from pathlib import Path
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from django.test import Client

from idp import clock
from idp.sts import state
from idp.sts.models import Role
from tests import test_ecp
from tests.test_ecp import sps  # noqa: F401 (a fixture)


def sql_parameters(run) -> list[str]:
    """Every parameter sent to the database while `run()` runs (Django's captured SQL is
    SQLite's QUOTE() of them, which ends a string at its first NUL)."""
    from django.db import connection

    sent: list[str] = []

    def spy(execute, sql, params, many, context):
        rows = params if many else [params]
        sent.extend(str(value) for row in rows or () for value in (row or ()))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy):
        run()
    return sent


pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
BODY = b"Action=GetCallerIdentity&Version=2011-06-15"


@pytest.fixture
def issued(demo, monkeypatch):
    """A role session of the local STS, and the server's clock held at NOW."""
    monkeypatch.setattr(clock, "system_now", lambda: NOW)
    state.forget()
    role = Role.objects.get(account_id="111122223333", name="Admin")
    return state.issue_role_session(role, "alice", 3600, clock.now(), action="AssumeRoleWithSAML")


def signed_headers(issued, body, *, service="sts", region="us-east-1", at=NOW, extra=None):
    """What botocore sends: the request signed at `at` with the issued secret."""
    with mock.patch("botocore.auth.get_current_datetime", lambda: at.replace(tzinfo=None)):
        return _signed_headers(issued, body, service, region, extra)


def _signed_headers(issued, body, service, region, extra):
    request = AWSRequest(
        method="POST",
        url="http://testserver/aws/",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", **(extra or {})},
    )
    SigV4Auth(
        Credentials(issued.access_key_id, issued.secret_access_key, issued.session_token),
        service,
        region,
    ).add_auth(request)
    return dict(request.headers.items())


def post(body, headers):
    meta = {"HTTP_HOST": "testserver"}
    for name, value in headers.items():
        if name.lower() != "content-type":
            meta["HTTP_" + name.upper().replace("-", "_")] = value
    return Client().post(
        "/aws/", data=body, content_type="application/x-www-form-urlencoded", **meta
    )


def code_of(response) -> str:
    text = response.content.decode()
    return text[text.index("<Code>") + 6 : text.index("</Code>")] if "<Code>" in text else ""


def test_a_correctly_signed_request_passes(issued):
    response = post(BODY, signed_headers(issued, BODY))
    assert response.status_code == 200, response.content
    assert b"assumed-role/Admin/alice" in response.content


@pytest.mark.parametrize(
    "case, signing, words",
    [
        ("another service", {"service": "s3"}, "scoped to correct service: 'sts'"),
        ("IAM's scope for STS", {"service": "iam"}, "scoped to correct service: 'sts'"),
        ("replayed an hour later", {"at": NOW - datetime.timedelta(hours=1)}, "expired"),
        ("16 minutes late", {"at": NOW - datetime.timedelta(minutes=16)}, "expired"),
        ("from the future", {"at": NOW + datetime.timedelta(minutes=16)}, "not yet current"),
    ],
)
def test_a_signature_for_another_service_or_time_is_refused(issued, case, signing, words):
    response = post(BODY, signed_headers(issued, BODY, **signing))
    assert response.status_code == 403 and code_of(response) == "SignatureDoesNotMatch"
    assert words in response.content.decode()
    assert response["X-Fedmock-Explanation"]


@pytest.mark.parametrize(
    "signing",
    [
        {"at": NOW - datetime.timedelta(minutes=14)},
        {"at": NOW + datetime.timedelta(minutes=14)},
        {"region": "eu-west-1"},  # a custom endpoint is signed with the client's region
    ],
)
def test_skew_within_15_minutes_and_any_region_pass(issued, signing):
    assert post(BODY, signed_headers(issued, BODY, **signing)).status_code == 200


@pytest.mark.parametrize(
    "declared",
    ["UNSIGNED-PAYLOAD", hashlib.sha256(b"another body").hexdigest()],
)
def test_a_signed_payload_hash_must_be_the_bodys(issued, declared):
    """botocore takes the payload hash from X-Amz-Content-SHA256 when it is signed: without
    a check, a body changed under a signature covering UNSIGNED-PAYLOAD passed."""
    headers = signed_headers(issued, BODY, extra={"X-Amz-Content-SHA256": declared})
    altered = BODY + b"&RoleSessionName=other"
    response = post(altered, headers)
    assert response.status_code == 403 and code_of(response) == "SignatureDoesNotMatch"


def test_a_signed_payload_hash_that_is_the_bodys_passes(issued):
    declared = hashlib.sha256(BODY).hexdigest()
    headers = signed_headers(issued, BODY, extra={"X-Amz-Content-SHA256": declared})
    assert post(BODY, headers).status_code == 200


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"Action": "AssumeRoleWithSAML", "Version": "2010-05-08"}, 400, "InvalidAction"),
        ({"Action": "ListRoles", "Version": "2011-06-15"}, 400, "InvalidAction"),
        ({"Action": "GetCallerIdentity", "Version": "1999-01-01"}, 400, "InvalidAction"),
        ({"Action": "AssumeRoleWithSAML"}, 400, "ValidationError"),  # no Version: parsed
    ],
)
def test_an_action_of_another_api_version_is_unknown(demo, body, status, code):
    response = Client().post("/aws/", body)
    assert response.status_code == status and code_of(response) == code


ROOT_SIGNATURE = (
    "AWS4-HMAC-SHA256 Credential=111122223333/20300102/us-east-1/{service}/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
)


@pytest.mark.parametrize(
    "body",
    [
        {"Action": "GetRole", "Version": "2010-05-08", "RoleName": "Admin\x00"},
        {"Action": "GetSAMLProvider", "SAMLProviderArn": "arn:aws:iam::1:saml-provider/a\x00"},
        {"Action": "DeleteRole", "RoleName": "\x00"},
        {"Action": "Get\x00CallerIdentity"},
        {"Action": "GetCallerIdentity", "Junk\x00": "1"},
        {"Action": "AssumeRoleWithSAML", "RoleArn": "arn:aws:iam::111122223333:role/A\x00"},
    ],
)
def test_a_nul_character_never_reaches_a_lookup_or_the_audit(demo, body):
    """PostgreSQL refuses a NUL in SQL text (a DataError, hence a 500): before, GetRole
    looked the name up and the audit stored it."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from idp.models import AuditEvent

    service = "iam" if "Role" in body["Action"] and "Assume" not in body["Action"] else "sts"
    with CaptureQueriesContext(connection) as queries:
        response = Client().post(
            "/aws/",
            body,
            HTTP_AUTHORIZATION=ROOT_SIGNATURE.format(service=service),
            HTTP_X_AMZ_DATE="20300102T030405Z",
        )
    assert response.status_code == 400 and code_of(response) == "ValidationError"
    assert "NUL" in response["X-Fedmock-Explanation"]
    assert not any("\x00" in str(query["sql"]) for query in queries.captured_queries)
    assert not any("\x00" in str(value) for value in AuditEvent.objects.values_list())


def test_an_access_key_with_a_control_character_is_an_incomplete_signature(demo):
    response = Client().post(
        "/aws/",
        {"Action": "GetCallerIdentity"},
        HTTP_AUTHORIZATION=ROOT_SIGNATURE.replace("111122223333", "ASIA\x00X").format(
            service="sts"
        ),
        HTTP_X_AMZ_DATE="20300102T030405Z",
    )
    assert response.status_code == 400 and code_of(response) == "IncompleteSignature"


# --- the ECP door ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "username, password",
    [
        ("ali\x00ce", "alice"),
        ("alice", "ali\x00ce"),
        ("a" * 151, "alice"),  # the login form's (User.username's) bound
    ],
)
def test_ecp_credentials_the_login_form_would_refuse_reach_no_query(sps, username, password):  # noqa: F811
    """The form's fields refuse a NUL (PostgreSQL cannot hold one: a DataError, a 500) and a
    user name over 150 characters (axes stores it in a varchar(255)); HTTP Basic had no
    field in between, so both reached authenticate(), the failure log and the audit."""
    responses = []
    sent = sql_parameters(
        lambda: responses.append(
            test_ecp.post(Client(), test_ecp.envelope(), test_ecp.basic(username, password))
        )
    )
    assert responses[0].status_code == 401 and "WWW-Authenticate" in responses[0]
    assert not any("\x00" in value or "a" * 151 in value for value in sent)


# --- fedmock configure-profile ---------------------------------------------------------


def test_configure_profile_writes_through_a_symlinked_config(tmp_path):
    """Before, the new file replaced the link: the user's dotfile repository kept the old
    config and ~/.aws/config stopped being a link."""
    from tests.test_cli import EXISTING, Run, configure

    run = Run(tmp_path)
    target = tmp_path / "dotfiles" / "aws-config"
    target.parent.mkdir()
    target.write_bytes(EXISTING)
    link = Path(run.environ["AWS_CONFIG_FILE"])
    link.parent.mkdir()
    link.symlink_to(target)
    configure(run, "work")
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert b"--user alice" in target.read_bytes()
    assert b"# my AWS config: keep this comment" in target.read_bytes()


@pytest.mark.parametrize(
    "argument, value",
    [
        ("--user", "alice\n[profile evil]\ncredential_process = /bin/sh -c id"),
        ("--idp", "http://127.0.0.1:8000/\r\nregion = x"),
    ],
)
def test_configure_profile_refuses_a_line_break_in_a_value(tmp_path, argument, value):
    from tests.test_cli import EXISTING, PROFILE_ARGS, Run

    run = Run(tmp_path)
    path = Path(run.environ["AWS_CONFIG_FILE"])
    path.parent.mkdir()
    path.write_bytes(EXISTING)
    args = list(PROFILE_ARGS)
    args[args.index(argument) + 1] = value
    code, out, err = run("configure-profile", "work", *args, "--command", "/bin/fm")
    assert code == 2 and err.count("\n") == 1 and "control character" in err
    assert path.read_bytes() == EXISTING
