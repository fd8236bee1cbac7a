"""Item 9: login throttling, Content-Security-Policy, Secure cookies, a private database file,
settings gathered in idp/conf.py; and the warm sign-on path still runs no SQL."""

import datetime
import os
import stat
import subprocess
import sys
from pathlib import Path

import lxml.html
import pytest
from axes.models import AccessAttempt
from django.contrib.staticfiles import finders
from django.core.exceptions import ImproperlyConfigured
from django.db.models import F

from idp import audit, conf
from idp.conf import idp_settings
from idp.models import ServiceProvider
from idp.saml import aws

from .agents import parse_post_form

ROOT = Path(__file__).resolve().parent.parent
ROLE = "arn:aws:iam::111122223333:role/Admin"


def sign_in(client, username: str, password: str | None = None, address="10.0.0.1", url=None):
    """A login through the login page, as a browser makes it (axes sees the request)."""
    return client.post(
        url or "/accounts/login/",
        {"username": username, "password": password or username},
        REMOTE_ADDR=address,
    )


def signed_in(response) -> bool:
    return response.status_code == 302 and "fedmock_session" in response.cookies


# --- login throttling -------------------------------------------------------------


def test_five_wrong_passwords_lock_the_user_out_with_our_error_page(client, demo):
    for _ in range(4):
        assert sign_in(client, "alice", "wrong").status_code == 200  # the form again
    assert sign_in(client, "alice", "wrong").status_code == 429  # the fifth locks
    locked = sign_in(client, "alice")  # even the right password
    assert locked.status_code == 429
    assert not signed_in(locked)
    page = locked.content.decode()
    assert "Too many failed sign-ins" in page
    assert "15 minutes" in page and "axes_reset_username" in page
    assert "Content-Security-Policy" in locked


@pytest.mark.parametrize(
    ("who", "address"),
    [("bob", "10.0.0.1"), ("alice", "10.0.0.2")],
    ids=["another user, same address", "same user, another address"],
)
def test_a_lockout_holds_only_the_user_and_address_pair(client, demo, who, address):
    for _ in range(5):
        sign_in(client, "alice", "wrong")
    assert signed_in(sign_in(client, who, address=address))


def test_a_successful_login_clears_the_count(client, demo):
    for _ in range(4):
        sign_in(client, "alice", "wrong")
    assert signed_in(sign_in(client, "alice"))
    client.cookies.clear()
    for _ in range(4):
        sign_in(client, "alice", "wrong")
    assert signed_in(sign_in(client, "alice"))


def test_the_lock_lifts_after_the_cool_off(client, demo):
    for _ in range(5):
        sign_in(client, "alice", "wrong")
    assert sign_in(client, "alice").status_code == 429
    # Moving the attempts back in time instead of waiting 15 minutes.
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - datetime.timedelta(minutes=16))
    assert signed_in(sign_in(client, "alice"))


def test_the_admin_login_is_throttled_too(client, demo):
    for _ in range(5):
        sign_in(client, "admin", "wrong", url="/admin/login/")
    assert sign_in(client, "admin", url="/admin/login/").status_code == 429


def test_a_warm_idp_initiated_sign_on_runs_no_query(client, demo, settings, monkeypatch):
    """Throttling, CSP and the rest add nothing to the warm path (the design's rule)."""
    settings.IDP_KEY_REFRESH_SECONDS = 3600  # as under gunicorn, where a thread refreshes
    assert signed_in(sign_in(client, "alice"))
    url = f"/saml/init/?sp={aws.AUDIENCE}&role={ROLE}"
    for _ in range(2):  # fill the caches
        assert client.get(url).status_code == 200
    monkeypatch.setattr(audit._buffer, "events", [])  # dropped at the end, never written
    monkeypatch.setattr(audit._buffer, "batching", True)  # as under gunicorn: batched
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    assert parse_post_form(response.content.decode())["fields"]["SAMLResponse"]
    assert [query["sql"] for query in queries] == []
    assert len(audit._buffer.events) == 1  # the sign-on was audited, in the batch


# --- Content-Security-Policy --------------------------------------------------------


def directives(header: str) -> dict[str, list[str]]:
    parsed = {}
    for part in header.split(";"):
        if part.strip():
            name, *values = part.split()
            parsed[name] = values
    return parsed


def obeys(page: str, policy: dict[str, list[str]]) -> list[str]:
    """What in this HTML the policy would block: inline script, handlers, styles."""
    problems = []
    if not page.strip():
        return problems
    root = lxml.html.fromstring(page)
    nonces = {value[len("'nonce-") : -1] for value in policy.get("style-src", [])}
    for script in root.iter("script"):
        if not script.get("src"):
            problems.append("inline <script>")
    for style in root.iter("style"):
        if style.get("nonce") not in nonces:
            problems.append("<style> without the nonce")
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        for name in element.attrib:
            if name.startswith("on"):
                problems.append(f"{name} handler on <{element.tag}>")
            if name == "style":
                problems.append(f"style attribute on <{element.tag}>")
    return problems


def aws_sp_pk() -> int:
    return ServiceProvider.objects.get(entity_id=aws.AUDIENCE).pk


PAGES = [
    ("login page", None, lambda: "/accounts/login/", 200),
    ("portal", "alice", lambda: "/", 200),
    ("error page", None, lambda: "/no/such/page/", 404),
    ("SAML error page", "alice", lambda: "/saml/init/?sp=urn:nobody", 4),
    ("POST form", "alice", lambda: f"/saml/init/?sp={aws.AUDIENCE}&role={ROLE}", 200),
    ("admin", "admin", lambda: "/admin/", 200),
    (
        "admin change form",
        "admin",
        lambda: f"/admin/idp/serviceprovider/{aws_sp_pk()}/change/",
        200,
    ),
    ("admin signing keys", "admin", lambda: "/admin/idp/signingkey/", 200),
    ("admin preview", "admin", lambda: f"/admin/idp/serviceprovider/{aws_sp_pk()}/preview/", 200),
]


@pytest.mark.parametrize(("name", "user", "url", "status"), PAGES, ids=[p[0] for p in PAGES])
def test_every_page_has_a_policy_it_keeps(client, demo, name, user, url, status):
    if user:
        client.force_login(client_user(user))
    response = client.get(url())
    assert str(response.status_code).startswith(str(status))  # 4: any 4xx
    policy = directives(response["Content-Security-Policy"])
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"] and policy["object-src"] == ["'none'"]
    assert not [v for values in policy.values() for v in values if "unsafe" in v]
    assert obeys(response.content.decode(), policy) == []


def client_user(username: str):
    from users.models import User

    return User.objects.get(username=username)


def test_the_post_form_submits_itself_from_a_static_file(client, demo):
    client.force_login(client_user("alice"))
    page = client.get(f"/saml/init/?sp={aws.AUDIENCE}&role={ROLE}").content.decode()
    [script] = lxml.html.fromstring(page).iter("script")
    assert script.get("src") == "/static/idp/autosubmit.js"
    found = finders.find("idp/autosubmit.js")
    assert found and "document.forms[0].submit()" in Path(found).read_text()


@pytest.mark.parametrize(
    "page",
    [
        "<script>alert(1)</script>",
        '<body onload="document.forms[0].submit()"></body>',
        "<style>p { color: red }</style>",
        '<p style="color: red">x</p>',
    ],
)
def test_the_page_check_sees_what_the_policy_blocks(page):
    assert obeys(page, {"style-src": ["'self'", "'nonce-abc'"]})


# --- Secure cookies -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "secure"),
    [
        ("https://idp.example.com", True),
        ("HTTPS://idp.example.com:8443/", True),
        ("http://idp.example.com", False),
        ("http://127.0.0.1:8000", False),
    ],
)
def test_cookies_are_secure_exactly_when_the_base_url_is_https(base_url, secure):
    assert conf.cookies_secure(base_url) is secure


def settings_in_a_fresh_process(tmp_path, expression: str, **environ) -> str:
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "idp.settings",
        "SECRET_KEY": "test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        **environ,
    }
    code = f"import django; django.setup(); from django.conf import settings; print({expression})"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize(
    ("base_url", "printed"),
    [("https://idp.test.example", "True True"), ("http://idp.test.example", "False False")],
)
def test_settings_mark_cookies_secure_behind_https(tmp_path, base_url, printed):
    expression = "settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE"
    assert settings_in_a_fresh_process(tmp_path, expression, IDP_BASE_URL=base_url) == printed


# --- the database file --------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_database_file_and_its_wal_files_are_private(tmp_path):
    """As `make run` starts: a fresh SQLite file, then WAL writes."""
    database = tmp_path / "db.sqlite3"
    old_umask = os.umask(0o022)
    try:
        printed = settings_in_a_fresh_process(
            tmp_path,
            "__import__('django.db').db.connection.cursor().execute('create table t (x)') "
            "and sorted(p.name for p in __import__('pathlib').Path(settings.DATABASES"
            "['default']['NAME']).parent.glob('db.sqlite3*'))",
        )
    finally:
        os.umask(old_umask)
    assert "db.sqlite3-wal" in printed  # the WAL files existed while connected
    assert mode(database) == 0o600


@pytest.mark.parametrize(
    "existing",
    [(), ("db.sqlite3",), ("db.sqlite3", "db.sqlite3-wal", "db.sqlite3-shm")],
    ids=["none", "database", "database and WAL files"],
)
def test_keep_private_tightens_what_exists(tmp_path, existing):
    for name in existing:
        (tmp_path / name).write_bytes(b"")
        (tmp_path / name).chmod(0o644)
    conf.keep_private(tmp_path / "db.sqlite3")
    assert mode(tmp_path / "db.sqlite3") == 0o600
    for name in existing:
        assert mode(tmp_path / name) == 0o600


@pytest.mark.parametrize("name", [":memory:", "file:memorydb?mode=memory&cache=shared"])
def test_keep_private_leaves_memory_databases_alone(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    conf.keep_private(Path(name))
    assert list(tmp_path.iterdir()) == []


def test_keep_private_leaves_a_missing_folder_to_sqlite(tmp_path):
    conf.keep_private(tmp_path / "no" / "db.sqlite3")
    assert not (tmp_path / "no").exists()


# --- idp/conf.py ----------------------------------------------------------------------


def test_every_setting_reaches_django_settings_with_its_default():
    from django.conf import settings

    for name in conf.SETTINGS:
        assert getattr(settings, name) == getattr(idp_settings, name)
    assert conf.from_environment({}) == {n: s.default for n, s in conf.SETTINGS.items()}


def test_overrides_are_read_when_asked(settings):
    settings.IDP_AUDIT_RETENTION_DAYS = 7
    assert idp_settings.IDP_AUDIT_RETENTION_DAYS == 7
    del settings.IDP_AUDIT_RETENTION_DAYS
    assert idp_settings.IDP_AUDIT_RETENTION_DAYS == 90  # the default, from conf.py
    with pytest.raises(AttributeError, match="not a fedmock setting"):
        idp_settings.IDP_NO_SUCH_THING  # noqa: B018


@pytest.mark.parametrize(
    ("environ", "name", "value"),
    [
        ({"IDP_AUDIT_RETENTION_DAYS": "30"}, "IDP_AUDIT_RETENTION_DAYS", 30),
        ({"IDP_AUDIT_RETENTION_DAYS": " "}, "IDP_AUDIT_RETENTION_DAYS", 90),
        ({"IDP_BASE_URL": "https://idp.example/"}, "IDP_BASE_URL", "https://idp.example"),
        ({"IDP_KEY_REFRESH_SECONDS": "0.25"}, "IDP_KEY_REFRESH_SECONDS", 0.25),
        ({"IDP_CERTS_DIR": "/srv/keys"}, "IDP_CERTS_DIR", Path("/srv/keys")),
    ],
)
def test_settings_come_from_the_environment(environ, name, value):
    assert conf.from_environment(environ)[name] == value


@pytest.mark.parametrize(
    "environ",
    [
        {"IDP_AUDIT_RETENTION_DAYS": "0"},
        {"IDP_AUDIT_RETENTION_DAYS": "ninety"},
        {"IDP_KEY_EXPIRY_WARNING_DAYS": "-3"},
        {"IDP_KEY_REFRESH_SECONDS": "nan"},
        {"IDP_KEY_REFRESH_SECONDS": "inf"},
        {"IDP_KEY_REFRESH_SECONDS": "0"},
        {"IDP_BASE_URL": "idp.example.com"},
        {"IDP_BASE_URL": "ftp://idp.example.com"},
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(environ):
    with pytest.raises(ImproperlyConfigured) as error:
        conf.from_environment(environ)
    [name] = environ
    assert str(error.value).startswith(f"{name}=") and "\n" not in str(error.value)
    assert "must be" in str(error.value)
