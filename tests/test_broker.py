"""The custom identity broker in process: session names, the roles a user may broker, the
portal's forms and their guards, and the local federation endpoint's checks (pure, and
through Django's test client). End to end over HTTP: tests/test_broker_e2e.py."""

import datetime
import io
import json
from urllib.parse import urlencode

import pytest
from django.test import Client

from idp.broker import roles, signin
from idp.broker import sts as broker_sts
from idp.cli import main as cli
from idp.sts import federation, state
from idp.sts.federation import FederationError, SessionCredentials
from idp.sts.models import IssuedCredential, SigninToken
from users.models import User

ADMIN = "arn:aws:iam::111122223333:role/Admin"
READ_ONLY = "arn:aws:iam::111122223333:role/ReadOnly"
DEVELOPER = "arn:aws:iam::444455556666:role/Developer"
NOW = datetime.datetime(2030, 1, 1, 12, 0, tzinfo=datetime.UTC)


# --- session names --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        ("alice", "alice"),
        ("alice@example.com", "alice@example.com"),
        ("o'brien", "o-brien"),
        ("jürgen müller", "j-rgen-m-ller"),
        ("a", "a-"),
        ("", "--"),
        ("x" * 150, "x" * 64),
        ("tab\there/slash", "tab-here-slash"),
        ("a+b=c,d.e@f_g-h", "a+b=c,d.e@f_g-h"),
    ],
)
def test_the_session_name_is_the_username_in_awss_pattern(username, expected):
    name = roles.session_name(username)
    assert name == expected
    assert 2 <= len(name) <= 64


# --- the roles a user may broker --------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("username", "expected"),
    [
        ("alice", [ADMIN, READ_ONLY, DEVELOPER]),
        ("bob", [READ_ONLY]),
        ("carol", []),
    ],
)
def test_the_brokerable_roles_are_the_claim_rules_role_values(demo, username, expected):
    user = User.objects.get(username=username)
    assert [pair.role_arn for pair in roles.brokerable(user)] == expected


@pytest.mark.django_db
def test_a_disabled_aws_sp_gives_no_roles_to_broker(demo):
    from idp.models import ServiceProvider

    ServiceProvider.objects.filter(entity_id="urn:amazon:webservices").update(enabled=False)
    assert roles.brokerable(User.objects.get(username="alice")) == ()


@pytest.mark.parametrize(
    "asked",
    [ADMIN, ADMIN + " ", ADMIN.upper(), "arn:aws:iam::111122223333:role/admin", "", DEVELOPER],
)
def test_only_an_exact_role_arn_of_the_users_pairs_is_allowed(asked):
    from idp.saml.aws import RolePair

    pairs = (RolePair(ADMIN, "arn:aws:iam::111122223333:saml-provider/fedmock"),)
    assert (roles.allowed(asked, pairs) is not None) == (asked == ADMIN)


# --- the portal's forms and their guards -------------------------------------------------


@pytest.fixture
def no_sts_call(monkeypatch):
    """The broker must refuse before it calls STS: a call fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the broker called STS")

    monkeypatch.setattr(broker_sts, "assume_role", refuse)


@pytest.mark.django_db
def test_the_portal_offers_both_actions_per_role_as_csrf_protected_posts(demo, client):
    client.force_login(User.objects.get(username="alice"))
    page = client.get("/").content.decode()
    for action in ("/broker/console/", "/broker/credentials/"):
        assert page.count(f'action="{action}"') == 3
    for role in (ADMIN, READ_ONLY, DEVELOPER):
        assert page.count(f'name="role" value="{role}"') == 2
    assert page.count('name="csrfmiddlewaretoken"') >= 6
    assert "Open the AWS console" in page and "Get CLI credentials" in page


@pytest.mark.django_db
def test_carol_without_roles_sees_no_broker_action(demo, client):
    client.force_login(User.objects.get(username="carol"))
    assert "/broker/" not in client.get("/").content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/broker/console/", "/broker/credentials/"])
def test_the_actions_need_a_signed_in_user_and_a_post(demo, client, no_sts_call, path):
    anonymous = client.post(path, {"role": ADMIN})
    assert anonymous.status_code == 302
    assert anonymous["Location"] == "/accounts/login/?next=%2F"
    client.force_login(User.objects.get(username="alice"))
    assert client.get(path, {"role": ADMIN}).status_code == 405


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/broker/console/", "/broker/credentials/"])
def test_a_post_without_the_csrf_token_is_refused(demo, no_sts_call, path):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(User.objects.get(username="alice"))
    answer = browser.post(path, {"role": ADMIN})
    assert answer.status_code == 403
    assert "The form expired" in answer.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/broker/console/", "/broker/credentials/"])
@pytest.mark.parametrize(
    ("username", "role"),
    [
        ("bob", ADMIN),  # alice's role, not bob's
        ("bob", DEVELOPER),
        ("carol", READ_ONLY),
        ("alice", "arn:aws:iam::111122223333:role/Nope"),
        ("alice", ADMIN.replace("Admin", "admin")),
        ("alice", ""),
        ("alice", "x" * 5000),
    ],
)
def test_a_role_outside_the_users_claim_rules_is_refused_before_sts(
    demo, client, no_sts_call, path, username, role
):
    client.force_login(User.objects.get(username=username))
    answer = client.post(path, {"role": role})
    assert answer.status_code == 403
    page = answer.content.decode()
    assert "Not one of your roles" in page and "How to fix it" in page
    assert answer["Cache-Control"] == "no-store"


def test_the_profile_name_says_role_and_account():
    from idp.broker.views import profile_name

    assert profile_name(DEVELOPER) == "Developer-444455556666"
    assert profile_name("arn:aws:iam::111122223333:role/team/Ops") == "Ops-111122223333"


# --- the federation endpoint: pure checks --------------------------------------------------


VALID = {"sessionId": "ASIAEXAMPLE", "sessionKey": "secret", "sessionToken": "token"}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (None, "missing"),
        ("", "missing"),
        ("not json", "not JSON"),
        ("[1, 2]", "not an object"),
        ('"text"', "not an object"),
        (json.dumps({**VALID, "sessionKey": ""}), "lacks sessionKey"),
        (json.dumps({**VALID, "sessionToken": 7}), "lacks sessionToken"),
        (json.dumps({"sessionId": "A"}), "lacks sessionKey, sessionToken"),
        (json.dumps({**VALID, "extra": "x"}), "unknown keys: extra"),
        (json.dumps({**VALID, "sessionToken": "t" * 20000}), "characters long"),
        ("{" * 100_000, "characters long"),
    ],
)
def test_a_malformed_session_is_refused_with_how_to_send_one(text, words):
    with pytest.raises(FederationError) as caught:
        federation.parse_session(text)
    assert words in caught.value.detail
    assert caught.value.status == 400 and "sessionId" in caught.value.hint


def test_a_well_formed_session_parses():
    assert federation.parse_session(json.dumps(VALID)) == SessionCredentials(
        "ASIAEXAMPLE", "secret", "token"
    )


@pytest.mark.parametrize(
    ("text", "action", "expected"),
    [
        (None, "AssumeRole", None),
        (None, "GetFederationToken", None),
        ("900", "AssumeRole", 900),
        ("43200", "AssumeRoleWithSAML", 43200),
        ("899", "AssumeRole", "Invalid SessionDuration"),
        ("43201", "AssumeRole", "Invalid SessionDuration"),
        ("-900", "AssumeRole", "Invalid SessionDuration"),
        ("1e3", "AssumeRole", "Invalid SessionDuration"),
        ("", "AssumeRole", "Invalid SessionDuration"),
        ("3600", "GetFederationToken", "SessionDuration not allowed"),
    ],
)
def test_session_duration_follows_awss_rules(text, action, expected):
    if isinstance(expected, str):
        with pytest.raises(FederationError, match=expected):
            federation.parse_session_duration(text, action)
    else:
        assert federation.parse_session_duration(text, action) == expected


def _issued(**fields) -> IssuedCredential:
    values = {
        "access_key_id": "ASIAISSUED",
        "secret_access_key": "the-secret",
        "session_token": "the-token",
        "account_id": "111122223333",
        "arn": "arn:aws:sts::111122223333:assumed-role/Admin/alice",
        "user_id": "AROA:alice",
        "action": "AssumeRole",
        "issued_at": NOW - datetime.timedelta(minutes=5),
        "expires_at": NOW + datetime.timedelta(minutes=55),
    }
    return IssuedCredential(**{**values, **fields})


@pytest.mark.parametrize(
    ("issued", "sent", "words"),
    [
        (None, ("ASIAX", "s", "t"), "never issued the access key 'ASIAX'"),
        (None, ("AKIALONGTERM", "s", "t"), "a long-term key?"),
        (_issued(), ("ASIAISSUED", "wrong", "the-token"), "the sessionKey sent"),
        (_issued(), ("ASIAISSUED", "the-secret", "wrong"), "the sessionToken sent"),
        (_issued(), ("ASIAISSUED", "x", "y"), "sessionKey and sessionToken"),
        (_issued(expires_at=NOW), ("ASIAISSUED", "the-secret", "the-token"), "expired at"),
    ],
)
def test_credentials_must_be_issued_matching_and_alive(issued, sent, words):
    with pytest.raises(FederationError) as caught:
        federation.check_credential(issued, SessionCredentials(*sent), NOW)
    assert words in caught.value.detail
    assert "the-secret" not in str(caught.value) and "the-token" not in str(caught.value)


def test_matching_live_credentials_pass():
    issued = _issued()
    sent = SessionCredentials("ASIAISSUED", "the-secret", "the-token")
    assert federation.check_credential(issued, sent, NOW) is issued


@pytest.mark.parametrize(
    ("requested", "action", "expected"),
    [(None, "AssumeRole", 3600), (900, "AssumeRole", 900), (None, "GetFederationToken", 3300)],
)
def test_the_console_session_lasts(requested, action, expected):
    assert federation.console_duration(requested, _issued(action=action), NOW) == expected


@pytest.mark.parametrize(
    ("name", "value", "required", "words"),
    [
        ("Destination", None, True, "No Destination"),
        ("Destination", "javascript:alert(1)", True, "Invalid Destination"),
        ("Destination", "//console.aws.amazon.com/", True, "Invalid Destination"),
        ("Issuer", "ftp://example.org", False, "Invalid Issuer"),
        ("Issuer", "https://" + "a" * 2050, False, "Invalid Issuer"),
    ],
)
def test_login_urls_must_be_absolute_http(name, value, required, words):
    with pytest.raises(FederationError, match=words):
        federation.check_login_url(name, value, required)


def test_an_absent_issuer_is_allowed():
    assert federation.check_login_url("Issuer", None, required=False) == ""


# --- the federation endpoint through Django's test client ---------------------------------


@pytest.fixture
def issued(demo):
    state.forget()
    role = state.role_by_arn(ADMIN)
    return state.issue_role_session(
        role, "alice", 3600, federation.clock.now(), action="AssumeRole", source_identity="alice"
    )


def session_of(issued) -> str:
    return json.dumps(
        {
            "sessionId": issued.access_key_id,
            "sessionKey": issued.secret_access_key,
            "sessionToken": issued.session_token,
        }
    )


def get_token(client, issued, **extra) -> str:
    answer = client.get(
        "/aws/federation", {"Action": "getSigninToken", "Session": session_of(issued), **extra}
    )
    assert answer.status_code == 200, answer.headers.get("X-Fedmock-Explanation")
    assert answer["Cache-Control"] == "no-store"
    return answer.json()["SigninToken"]


def login(client, token: str, **extra):
    query = {
        "Action": "login",
        "Issuer": "https://idp.example/",
        "Destination": "https://console.aws.amazon.com/",
        "SigninToken": token,
        **extra,
    }
    return client.get("/aws/federation?" + urlencode(query))


@pytest.mark.django_db
def test_a_signin_token_signs_in_once_and_shows_the_session(client, issued):
    token = get_token(client, issued, SessionDuration="7200")
    stored = SigninToken.objects.get()
    assert stored.digest == federation.digest(token) and token not in stored.digest
    assert stored.session_duration == 7200

    first = login(client, token)
    assert first.status_code == 200 and first["Cache-Control"] == "no-store"
    page = first.content.decode()
    for shown in (ADMIN, issued.arn, "alice", "111122223333", "AssumeRole"):
        assert shown in page
    assert f"{issued.expires_at:%Y-%m-%dT%H:%M:%SZ}" in page
    assert issued.secret_access_key not in page and issued.session_token not in page

    second = login(client, token)
    assert second.status_code == 400
    assert "Sign-in token already used" in second.content.decode()
    assert "a token works once" in second["X-Fedmock-Explanation"]


@pytest.mark.django_db
def test_a_signin_token_lasts_15_minutes(client, issued, settings):
    token = get_token(client, issued)
    settings.IDP_CLOCK_OFFSET = 15 * 60
    answer = login(client, token)
    assert answer.status_code == 400
    assert "Sign-in token expired" in answer.content.decode()


@pytest.mark.django_db
def test_expired_credentials_get_no_signin_token(client, issued, settings):
    settings.IDP_CLOCK_OFFSET = 3600
    answer = client.get(
        "/aws/federation", {"Action": "getSigninToken", "Session": session_of(issued)}
    )
    assert answer.status_code == 400
    assert "Expired credentials" in answer["X-Fedmock-Explanation"]
    assert SigninToken.objects.count() == 0


@pytest.mark.django_db
def test_federation_token_credentials_refuse_session_duration(client, demo):
    issued = state.issue_federation_token("111122223333", "alice", 3600, federation.clock.now())
    answer = client.get(
        "/aws/federation",
        {"Action": "getSigninToken", "SessionDuration": "3600", "Session": session_of(issued)},
    )
    assert answer.status_code == 400
    assert "SessionDuration not allowed" in answer["X-Fedmock-Explanation"]
    page = login(client, get_token(client, issued)).content.decode()
    assert "federated-user/alice" in page and "no role" in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({}, "the Action parameter is missing"),
        ({"Action": "GetSigninToken"}, "is not one the federation endpoint answers"),
        ({"Action": "login"}, "the SigninToken parameter is missing"),
        ({"Action": "login", "SigninToken": "x" * 2000}, "SigninToken is too long"),
        ({"Action": "login", "SigninToken": "nope"}, "the Destination parameter is missing"),
        (
            {"Action": "login", "SigninToken": "nope", "Destination": "https://c.example/"},
            "never issued this SigninToken",
        ),
        ({"Action": "getSigninToken"}, "the Session parameter is missing"),
        ({"Action": "getSigninToken", "Session": "{\x00}"}, "NUL"),
    ],
)
def test_hostile_federation_requests_are_400_with_an_explanation(client, demo, query, words):
    answer = client.get("/aws/federation", query)
    assert answer.status_code == 400
    assert words in answer["X-Fedmock-Explanation"]
    assert "How to fix it" in answer.content.decode()


@pytest.mark.django_db
def test_the_federation_endpoint_answers_get_and_post_only(client, demo):
    # POST: getSigninToken as a form (tests/test_review11_broker.py).
    assert client.delete("/aws/federation").status_code == 405


# --- the federation client, without a network ----------------------------------------------


def test_the_signin_request_is_awss_documented_form():
    credentials = signin.Credentials("ASIAK", "s/ecret+", "to ken")
    form = signin.signin_token_form(credentials, 900)
    assert list(form) == ["Action", "SessionDuration", "Session"]
    assert form["Action"] == "getSigninToken" and form["SessionDuration"] == "900"
    assert json.loads(form["Session"]) == {
        "sessionId": "ASIAK",
        "sessionKey": "s/ecret+",
        "sessionToken": "to ken",
    }
    url = signin.login_url(
        "https://f.example/federation", "T+/=", issuer="https://i/", destination="https://c/"
    )
    assert url == (
        "https://f.example/federation?Action=login&Issuer=https%3A%2F%2Fi%2F"
        "&Destination=https%3A%2F%2Fc%2F&SigninToken=T%2B%2F%3D"
    )
    assert "ecret" not in repr(credentials)


def test_an_unreachable_federation_endpoint_never_repeats_the_secret():
    from tests.live_server import free_port

    credentials = signin.Credentials("ASIAK", "TOP-SECRET-KEY", "TOP-SECRET-TOKEN")
    with pytest.raises(signin.SigninError) as caught:
        signin.get_signin_token(f"http://127.0.0.1:{free_port()}/federation", credentials)
    text = f"{caught.value} {caught.value.hint}"
    assert "TOP-SECRET" not in text and "ConnectionError" in text


def test_long_term_credentials_are_refused_before_any_request():
    with pytest.raises(signin.SigninError, match="no session token"):
        signin.get_signin_token("http://127.0.0.1:9/federation", signin.Credentials("A", "B", ""))


# --- `fedmock console-url`: refusals in one line ------------------------------------------


@pytest.mark.parametrize(
    ("argv", "status", "words"),
    [
        (["--role", ADMIN], 2, "a role is named without --user"),
        (["--user", "alice", "--profile", "p", "--role", ADMIN], 2, "name two sources"),
        (["--session-duration", "60"], 2, "outside 900-43200"),
        (["--federation-url", "file:///etc/passwd"], 2, "is not an http(s) URL"),
        (["--destination", "javascript:x"], 2, "is not an http(s) URL"),
        ([], 1, "found no AWS credentials"),
        (["--profile", "nope"], 2, "no AWS profile 'nope'"),
    ],
)
def test_console_url_refusals_are_one_line(tmp_path, argv, status, words):
    environ = {
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        for name in list(__import__("os").environ):
            if name.startswith("AWS_"):
                patch.delenv(name)
        for name, value in environ.items():
            patch.setenv(name, value)
        code = cli.main(["console-url", *argv], environ=environ, stdout=stdout, stderr=stderr)
    assert code == status, stderr.getvalue()
    assert stdout.getvalue() == ""
    line = stderr.getvalue()
    assert line.count("\n") == 1 and words in line, line


def test_console_url_refuses_long_term_chain_credentials(tmp_path, monkeypatch):
    for name in list(__import__("os").environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIALONGTERM")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    stderr = io.StringIO()
    code = cli.main(["console-url"], environ={}, stdout=io.StringIO(), stderr=stderr)
    assert code == 1 and "have no session token" in stderr.getvalue()
