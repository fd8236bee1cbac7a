"""Issue 13 part P: the sign-on's front door made cheaper, its behaviour kept: the auto-submit
page without the template engine, the CSP header built once, a short access log line."""

import lxml.html
import pytest

from idp.saml import aws
from idp.saml.bindings import PostForm
from idp.views import post_form_page

ROLE = "arn:aws:iam::111122223333:role/Admin"
HOSTILE = [
    "plain",
    '"><script>alert(1)</script>',
    "' onfocus='alert(1)",
    "a&amp;b & c &lt; <!-- -->",
    "ünïcødé 東京 \u2028 tab\there",
    "</form><form action='https://evil.example/'>",
    "{action} {inputs} %s {{ }}",
]


# --- the auto-submit page -----------------------------------------------------------


@pytest.mark.parametrize("hostile", HOSTILE)
def test_the_post_form_carries_every_value_exactly_and_nothing_else(hostile):
    form = PostForm(
        action=f"https://sp.example/acs?x={hostile}",
        fields={"SAMLResponse": "PHNhbWxwOlJlc3BvbnNlLz4=", "RelayState": hostile},
    )
    page = lxml.html.fromstring(post_form_page(form))
    [parsed] = page.forms
    assert parsed.action == form.action
    assert dict(parsed.form_values()) == form.fields
    assert parsed.method == "POST"
    # No value became markup: one script (the static file), one form, one button.
    assert [script.get("src") for script in page.iter("script")] == ["/static/idp/autosubmit.js"]
    assert len(list(page.iter("form"))) == 1
    [button] = page.iter("button")
    assert button.text_content() == f"Continue to {form.action}"


def test_the_post_form_page_is_ascii_and_titled():
    page = post_form_page(PostForm("https://sp.example/acs", {"SAMLResponse": "PHg+"}))
    assert page.isascii()
    assert lxml.html.fromstring(page).findtext(".//title") == "Signing you in\u2026"


def test_the_post_form_without_relay_state_has_one_field():
    page = lxml.html.fromstring(post_form_page(PostForm("https://sp.example/acs", {"A": "b"})))
    assert [element.get("name") for element in page.iter("input")] == ["A"]


def test_the_post_form_script_follows_the_static_url(settings):
    settings.STATIC_URL = "/assets/"
    page = lxml.html.fromstring(post_form_page(PostForm("https://sp.example/acs", {"A": "b"})))
    assert [script.get("src") for script in page.iter("script")] == ["/assets/idp/autosubmit.js"]


def test_the_idp_initiated_page_keeps_its_headers(client, demo):
    from users.models import User

    client.force_login(User.objects.get(username="alice"))
    response = client.get(f"/saml/init/?sp={aws.AUDIENCE}&role={ROLE}")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response["Cache-Control"] == "no-store"
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    [form] = lxml.html.fromstring(response.content.decode()).forms
    assert form.action == "https://signin.aws.amazon.com/saml"
    assert set(dict(form.form_values())) == {"SAMLResponse"}


# --- the access log -----------------------------------------------------------------


class _Response:
    status = "200 OK"
    sent = 9105
    headers = [("Content-Type", "text/html; charset=utf-8")]


class _Request:
    headers = [("HOST", "127.0.0.1:8000")]


def _environ(**extra) -> dict:
    return {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/saml/init/?sp=urn%3Aamazon%3Awebservices",
        "PATH_INFO": "/saml/init/",
        "QUERY_STRING": "sp=urn%3Aamazon%3Awebservices",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.1.2.3",
        "HTTP_USER_AGENT": "curl/8",
        **extra,
    }


def _logger(tmp_path, accesslog="access.log", access_log_format=None):
    from gunicorn.config import Config

    config = Config()
    config.set("logger_class", "idp.access_log.AccessLogger")
    if accesslog:
        config.set("accesslog", str(tmp_path / accesslog))
    if access_log_format:
        config.set("access_log_format", access_log_format)
    logger = config.logger_class(config)
    # As in a worker: gunicorn's own handler only (pytest adds its capturing ones).
    logger.access_log.handlers = [
        handler for handler in logger.access_log.handlers if getattr(handler, "_gunicorn", False)
    ]
    return logger


def _log_lines(tmp_path) -> list[str]:
    path = tmp_path / "access.log"
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.parametrize(
    ("extra", "duration", "expected"),
    [
        (
            {},
            (0, 4127),
            '10.1.2.3 - - {t} "GET /saml/init/?sp=urn%3Aamazon%3Awebservices '
            'HTTP/1.1" 200 9105 "-" "curl/8" 0.004127',
        ),
        # The ECP door's HTTP Basic user is named, as gunicorn names it.
        (
            {"HTTP_AUTHORIZATION": "Basic YWxpY2U6YWxpY2U="},
            (2, 5),
            '10.1.2.3 - alice {t} "GET /saml/init/?sp=urn%3Aamazon%3Awebservices HTTP/1.1" '
            '200 9105 "-" "curl/8" 2.000005',
        ),
        (
            {"HTTP_REFERER": "https://sp.example/", "REQUEST_METHOD": "POST"},
            (0, 0),
            '10.1.2.3 - - {t} "POST /saml/init/?sp=urn%3Aamazon%3Awebservices HTTP/1.1" '
            '200 9105 "https://sp.example/" "curl/8" 0.000000',
        ),
    ],
)
def test_the_access_line_is_gunicorns_default_with_the_duration(
    tmp_path, extra, duration, expected
):
    import datetime
    import re

    logger = _logger(tmp_path)
    seconds, microseconds = duration
    logger.access(
        _Response(),
        None,
        _environ(**extra),
        datetime.timedelta(seconds=seconds, microseconds=microseconds),
    )
    [line] = _log_lines(tmp_path)
    stamp = re.search(r"\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]", line)
    assert stamp, line
    assert line == expected.format(t=stamp[0])


def test_the_access_line_builds_no_atoms_and_no_log_record(tmp_path, monkeypatch):
    import datetime

    from gunicorn import glogging

    def no_atoms(*arguments):
        raise AssertionError("gunicorn's atoms dict was built")

    def no_record(*arguments):
        raise AssertionError("a LogRecord was made for gunicorn's own handler")

    monkeypatch.setattr(glogging.Logger, "atoms", no_atoms)
    logger = _logger(tmp_path)
    monkeypatch.setattr(logger.access_log, "info", no_record)
    logger.access(_Response(), None, _environ(), datetime.timedelta(0))
    assert len(_log_lines(tmp_path)) == 1


def test_a_filtered_or_reformatted_access_log_goes_through_logging(tmp_path):
    import datetime
    import logging

    logger = _logger(tmp_path)
    [handler] = logger.access_log.handlers
    handler.setFormatter(logging.Formatter("access: %(message)s"))
    logger.access(_Response(), _Request(), _environ(), datetime.timedelta(0))
    [line] = _log_lines(tmp_path)
    assert line.startswith("access: 10.1.2.3 - - [")
    dropped = logging.Filter("nothing.matches")
    logger.access_log.addFilter(dropped)
    try:
        logger.access(_Response(), _Request(), _environ(), datetime.timedelta(0))
    finally:
        logger.access_log.removeFilter(dropped)
    assert len(_log_lines(tmp_path)) == 1


def test_an_own_access_log_format_is_gunicorns(tmp_path):
    import datetime

    logger = _logger(tmp_path, access_log_format="%(m)s %(U)s %(s)s %({content-type}o)s")
    logger.access(_Response(), _Request(), _environ(), datetime.timedelta(0))
    assert _log_lines(tmp_path) == ["GET /saml/init/ 200 text/html; charset=utf-8"]


def test_an_access_log_turned_off_writes_nothing(tmp_path):
    import datetime

    _logger(tmp_path, accesslog="").access(_Response(), None, _environ(), datetime.timedelta(0))
    assert _log_lines(tmp_path) == []


def test_make_runs_gunicorn_writes_the_short_line(tmp_path):
    import re

    import requests

    from tests.live_server import GunicornServer

    server = GunicornServer(tmp_path).start()
    try:
        for _ in range(3):  # the first opens the file through logging, the others write
            assert requests.get(f"{server.url}/saml/metadata/?x=1", timeout=30).ok
    finally:
        server.stop()
    lines = (tmp_path / "access.log").read_text().splitlines()
    metadata = [line for line in lines if "/saml/metadata/?x=1" in line]
    assert len(metadata) == 3, lines
    assert "writing the access log failed" not in (tmp_path / "gunicorn.log").read_text()
    assert re.fullmatch(
        r'127\.0\.0\.1 - - \[[^]]+\] "GET /saml/metadata/\?x=1 HTTP/1\.1" 200 \d+ "-" '
        r'"python-requests/[\d.]+" \d+\.\d{6}',
        lines[-1],
    ), lines[-1]


# --- the AWS checks, judged once per release and settings ------------------------------


def _aws_sp(**fields):
    from idp.models import ServiceProvider

    return ServiceProvider(entity_id=aws.AUDIENCE, profile=ServiceProvider.Profile.AWS, **fields)


def _release(*roles: str, session_name: str = "alice"):
    from idp.saml.release import Attribute, NameID, Release

    return Release(
        NameID("alice", "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"),
        (
            Attribute("https://aws.amazon.com/SAML/Attributes/Role", roles),
            Attribute("https://aws.amazon.com/SAML/Attributes/RoleSessionName", (session_name,)),
        ),
    )


PAIR = "arn:aws:iam::111122223333:role/Admin,arn:aws:iam::111122223333:saml-provider/fedmock"


@pytest.mark.parametrize(
    ("release", "sp_settings", "acs"),
    [
        (_release(PAIR), {}, "https://signin.aws.amazon.com/saml"),
        (_release(PAIR), {}, "http://signin.aws.amazon.com/saml"),
        (
            _release(PAIR),
            {"signature_algorithm": "http://www.w3.org/2000/09/xmldsig#rsa-sha1"},
            "https://signin.aws.amazon.com/saml",
        ),
        (_release(PAIR, session_name="a b!"), {}, "https://signin.aws.amazon.com/saml"),
        (
            _release("not-a-pair"),
            {"encrypt_assertions": True},
            "https://signin.aws.amazon.com/saml",
        ),
        (_release(PAIR.replace("aws:", "aws-us-gov:")), {}, "https://signin.aws.amazon.com/saml"),
    ],
)
def test_the_remembered_findings_are_the_checks_findings(release, sp_settings, acs):
    from idp import sso

    sp = _aws_sp(**sp_settings)
    direct = (
        aws.check_release(release, sp.profile)
        + aws.check_endpoints(acs, [[sp.entity_id]], sp.profile, sp.encrypt_assertions)
        + aws.check_partition(acs, release.values(aws.ROLE))
        + aws.check_algorithms(sp.signature_algorithm, {sp.digest_algorithm})
    )
    for _ in range(2):  # judged, then remembered
        findings = sso._findings(sp, release, acs)
        assert findings == direct
        findings.append("a caller's addition")  # the caller's list, not the memo's
    assert sso._findings(sp, release, acs) == direct


def test_a_change_of_release_or_setting_is_judged_again(monkeypatch):
    from idp import sso

    judged = []
    check_release = aws.check_release
    monkeypatch.setattr(aws, "check_release", lambda *a: judged.append(a) or check_release(*a))
    sso._release_findings.cache_clear()
    acs = "https://signin.aws.amazon.com/saml"
    sso._findings(_aws_sp(), _release(PAIR), acs)
    sso._findings(_aws_sp(), _release(PAIR), acs)
    assert len(judged) == 1
    sha1 = sso._findings(
        _aws_sp(signature_algorithm="http://www.w3.org/2000/09/xmldsig#rsa-sha1"),
        _release(PAIR),
        acs,
    )
    assert len(judged) == 2 and any(f.rule == "R11" for f in sha1)
    sso._findings(_aws_sp(), _release(PAIR, session_name="bob"), acs)
    sso._findings(_aws_sp(), _release(PAIR), "https://us-east-1.signin.aws.amazon.com/saml")
    assert len(judged) == 4
