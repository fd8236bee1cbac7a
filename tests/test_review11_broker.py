"""Review of issue 11's broker: what tests/test_broker*.py let through.

getSigninToken as a form POST (so the secret stays out of URLs and access logs), control
characters that PostgreSQL would refuse in the audit, the one-time token when two workers
race, the demo root's fallback only against the local STS, and `fedmock console-url`'s
refusals for URLs and options it used to crash on or ignore."""

import datetime
import http.server
import io
import json
import os
import threading
from urllib.parse import parse_qs, urlsplit

import pytest

from idp.broker import signin
from idp.broker import sts as broker_sts
from idp.broker import views as broker_views
from idp.cli import main as cli
from idp.models import AuditEvent
from idp.sts import federation, state
from idp.sts.models import SigninToken
from users.models import User

from .live_server import free_port

ADMIN = "arn:aws:iam::111122223333:role/Admin"


@pytest.fixture
def issued(demo):
    state.forget()
    return state.issue_role_session(
        state.role_by_arn(ADMIN), "alice", 3600, federation.clock.now(), action="AssumeRole"
    )


def session_of(issued) -> str:
    return json.dumps(
        {
            "sessionId": issued.access_key_id,
            "sessionKey": issued.secret_access_key,
            "sessionToken": issued.session_token,
        }
    )


def login(client, token: str):
    return client.get(
        "/aws/federation",
        {"Action": "login", "Destination": "https://console.aws.amazon.com/", "SigninToken": token},
    )


# --- getSigninToken as a POST ---------------------------------------------------------------


@pytest.mark.django_db
def test_get_signin_token_answers_a_form_post_whose_token_signs_in_once(client, issued):
    answer = client.post(
        "/aws/federation",
        {"Action": "getSigninToken", "SessionDuration": "900", "Session": session_of(issued)},
    )
    assert answer.status_code == 200, answer.headers.get("X-Fedmock-Explanation")
    assert answer["Cache-Control"] == "no-store"
    token = answer.json()["SigninToken"]
    assert SigninToken.objects.get().session_duration == 900
    assert login(client, token).status_code == 200
    assert login(client, token).status_code == 400


@pytest.mark.django_db
def test_a_post_needs_no_csrf_token_since_no_cookie_carries_state(issued):
    from django.test import Client

    answer = Client(enforce_csrf_checks=True).post(
        "/aws/federation", {"Action": "getSigninToken", "Session": session_of(issued)}
    )
    assert answer.status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("form", "words"),
    [
        ({"Action": "login", "SigninToken": "x"}, "login is a GET"),
        ({"Action": "getSigninToken"}, "the Session parameter is missing"),
        ({"Action": "getSigninToken", "Session": "{\x00}"}, "NUL"),
        ({"Action\x00": "x"}, "NUL"),
        ({}, "the Action parameter is missing"),
    ],
)
def test_hostile_posts_are_400_with_an_explanation(client, demo, form, words):
    answer = client.post("/aws/federation", form)
    assert answer.status_code == 400
    assert words in answer["X-Fedmock-Explanation"]


@pytest.mark.django_db
def test_a_post_too_large_for_django_is_413_not_500(client, demo, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    answer = client.post("/aws/federation", {"Action": "getSigninToken", "Session": "x" * 4096})
    assert answer.status_code == 413
    assert "Request too large" in answer["X-Fedmock-Explanation"]


@pytest.mark.django_db
def test_other_methods_are_405(client, demo):
    assert client.put("/aws/federation").status_code == 405


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, str, bytes]] = []

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.seen.append((self.command, self.path, self.rfile.read(length)))
        body = b'{"SigninToken": "T"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def recorder():
    _Recorder.seen = []
    server = http.server.HTTPServer(("127.0.0.1", free_port()), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder.seen
    server.shutdown()
    server.server_close()


def test_the_client_posts_the_session_so_no_url_holds_the_secret(recorder):
    base, seen = recorder
    credentials = signin.Credentials("ASIAK", "TOP-SECRET-KEY", "TOP-SECRET-TOKEN")
    assert signin.get_signin_token(f"{base}/federation", credentials, 900) == "T"
    [(method, path, body)] = seen
    assert method == "POST" and path == "/federation"
    form = parse_qs(body.decode())
    assert form["Action"] == ["getSigninToken"] and form["SessionDuration"] == ["900"]
    assert json.loads(form["Session"][0])["sessionKey"] == "TOP-SECRET-KEY"


@pytest.mark.parametrize(
    ("url", "posts"),
    [
        ("https://signin.aws.amazon.com/federation", True),
        ("https://eu-west-1.signin.aws.amazon.com/federation", True),
        ("https://signin.amazonaws.cn/federation", True),
        ("http://127.0.0.1:8000/aws/federation", True),
        ("https://signin.amazonaws-us-gov.com/federation", False),
        ("https://SIGNIN.AMAZONAWS-US-GOV.COM/federation", False),
    ],
)
def test_only_govcloud_gets_the_documented_get(url, posts):
    assert signin.posts_signin_token(url) is posts


def test_a_federation_url_with_a_query_keeps_it(recorder):
    base, seen = recorder
    url = signin.login_url(f"{base}/f?tenant=a", "T", issuer="", destination="https://c/")
    assert (
        urlsplit(url).query == "tenant=a&Action=login&Destination=https%3A%2F%2Fc%2F&SigninToken=T"
    )


# --- control characters never reach the audit (PostgreSQL refuses a NUL) -----------------


def _no_control_character_in_the_audit():
    for event in AuditEvent.objects.all():
        for text in (event.sp_entity_id, event.detail, event.username, *event.roles):
            assert text.isprintable(), (event.flow, text)


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["\x00", "login\x00", "get\x01Signin\nToken"])
def test_a_control_character_in_action_is_escaped_in_the_audit(client, demo, action):
    assert client.get("/aws/federation", {"Action": action}).status_code == 400
    assert AuditEvent.objects.filter(flow="federation").exists()
    _no_control_character_in_the_audit()


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["sessionId", "sessionKey", "sessionToken"])
def test_a_json_escaped_nul_in_the_session_is_malformed_not_a_query(client, issued, field):
    session = {**json.loads(session_of(issued)), field: "ASIA\u0000X"}
    answer = client.get(
        "/aws/federation", {"Action": "getSigninToken", "Session": json.dumps(session)}
    )
    assert answer.status_code == 400
    assert f"lacks {field}" in answer["X-Fedmock-Explanation"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/broker/console/", "/broker/credentials/"])
def test_a_control_character_in_the_brokers_role_is_escaped_in_the_audit(
    demo, client, monkeypatch, path
):
    monkeypatch.setattr(broker_sts, "assume_role", pytest.fail)
    client.force_login(User.objects.get(username="alice"))
    answer = client.post(path, {"role": f"{ADMIN}\x00\n"})
    assert answer.status_code == 403
    assert AuditEvent.objects.filter(flow="broker").exists()
    _no_control_character_in_the_audit()


# --- one-time under a race ------------------------------------------------------------------


@pytest.mark.django_db
def test_when_another_worker_claims_the_token_between_read_and_update_this_one_loses(
    client, issued, monkeypatch
):
    """Worker B reads the token unused, worker A claims it, then B's UPDATE must lose."""
    answer = client.get(
        "/aws/federation", {"Action": "getSigninToken", "Session": session_of(issued)}
    )
    token = answer.json()["SigninToken"]
    real = SigninToken.objects

    class RacingRead:
        def __init__(self, queryset):
            self.queryset = queryset

        def filter(self, **lookups):
            return RacingRead(self.queryset.filter(**lookups))

        def first(self):
            row = self.queryset.first()  # read while unused ...
            real.filter(pk=row.pk).update(used_at=federation.clock.now())  # ... A claims it
            return row

    class Racing:
        objects = type(
            "Objects",
            (),
            {
                "select_related": lambda self, *names: RacingRead(real.select_related(*names)),
                "filter": lambda self, **lookups: real.filter(**lookups),
            },
        )()

    monkeypatch.setattr(federation, "SigninToken", Racing)
    lost = login(client, token)
    assert lost.status_code == 400
    assert "another request used it first" in lost["X-Fedmock-Explanation"]


@pytest.mark.django_db
def test_a_signin_token_still_works_a_second_before_15_minutes(client, issued, settings):
    answer = client.get(
        "/aws/federation", {"Action": "getSigninToken", "Session": session_of(issued)}
    )
    row = SigninToken.objects.get()
    assert row.expires_at - row.issued_at == datetime.timedelta(minutes=15)
    # The IdP's clock a second short of the token's expiry, however long the test took.
    settings.IDP_CLOCK_OFFSET = 0
    offset = (row.expires_at - federation.clock.now()).total_seconds() - 1
    settings.IDP_CLOCK_OFFSET = int(offset)
    assert login(client, answer.json()["SigninToken"]).status_code == 200


# --- the broker's own credentials: the demo root only against the local STS ------------------


@pytest.fixture
def no_chain(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("aws", (None, False)),
        ("https://sts.eu-west-1.amazonaws.com", ("https://sts.eu-west-1.amazonaws.com", False)),
        ("local", ("http://idp.test/aws/", True)),
    ],
)
def test_only_the_local_setting_counts_as_the_local_sts(settings, setting, expected):
    settings.IDP_BASE_URL = "http://idp.test"
    settings.IDP_BROKER_STS_ENDPOINT = setting
    assert broker_views.sts_endpoint() == expected


@pytest.mark.parametrize("endpoint", [None, f"http://127.0.0.1:{free_port()}/"])
def test_without_a_chain_a_non_local_sts_gets_no_demo_root(no_chain, endpoint):
    with pytest.raises(broker_sts.BrokerError) as caught:
        broker_sts.assume_role(ADMIN, "alice", endpoint=endpoint, local=False)
    assert caught.value.title == "No broker credentials"


def test_without_a_chain_the_local_sts_gets_the_demo_root(no_chain):
    client = broker_sts._client("http://127.0.0.1:9/aws/", local=True)
    assert client._request_signer._credentials.access_key == broker_sts.LOCAL_ACCESS_KEY_ID


def test_a_chain_wins_over_the_demo_root_even_locally(no_chain, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMCHAIN")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "chain-secret")
    client = broker_sts._client("http://127.0.0.1:9/aws/", local=True)
    assert client._request_signer._credentials.access_key == "AKIAFROMCHAIN"


# --- `fedmock console-url` ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--federation-url", "http://[::1"], "--federation-url 'http://[::1' is not"),
        (["--federation-url", "http://"], "is not an http(s) URL"),
        (["--federation-url", "https://f.example/\n"], "is not an http(s) URL"),
        (["--destination", "https://[x"], "--destination"),
        (["--issuer", "http://[::1"], "--issuer"),
        (["--sts-endpoint", "http://127.0.0.1:8000/aws/"], "--sts-endpoint only work"),
        (["--duration", "900", "--region", "eu-west-1"], "--region, --duration only"),
        (["--no-cache", "--password-stdin"], "--password-stdin, --no-cache only"),
    ],
)
def test_console_url_refuses_bad_urls_and_user_only_options_in_one_line(
    no_chain, monkeypatch, argv, words
):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIAK")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "t")
    stdout, stderr = io.StringIO(), io.StringIO()
    code = cli.main(["console-url", *argv], environ={}, stdout=stdout, stderr=stderr)
    line = stderr.getvalue()
    assert code == 2 and stdout.getvalue() == "", line
    assert line.count("\n") == 1 and words in line and "internal error" not in line, line
