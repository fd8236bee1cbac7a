"""The custom identity broker end to end over HTTP, against fedmock's own STS and federation
endpoint: the portal's actions (requests, and chromium for the console click), boto3 with
the credentials handed out, and `fedmock console-url` as installed.

fedmock's own AWS credentials come from boto3's standard chain; here the environment
variables of this process, which the live server's thread shares."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from botocore.config import Config

from idp import identity
from idp.models import AuditEvent
from idp.sts import state
from idp.sts.models import IssuedCredential

from .api_support import staff, token_for

pytestmark = pytest.mark.django_db(transaction=True)

ACCOUNT = "111122223333"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/Admin"
READ_ONLY = f"arn:aws:iam::{ACCOUNT}:role/ReadOnly"
DEVELOPER = "arn:aws:iam::444455556666:role/Developer"
PROVIDER = f"arn:aws:iam::{ACCOUNT}:saml-provider/fedmock"
BROKER_SECRET = "broker-own-secret-never-shown"
FEDMOCK = str(Path(sys.executable).parent / "fedmock")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@pytest.fixture
def broker_keys(monkeypatch):
    """fedmock's own credentials, as the chain finds them: the demo account's local root."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCOUNT)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", BROKER_SECRET)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")


@pytest.fixture
def lab(demo, idp_url, broker_keys):
    state.forget()
    yield idp_url
    state.forget()


def signed_in(base: str, username: str) -> requests.Session:
    browser = requests.Session()
    form = browser.get(f"{base}/accounts/login/", timeout=30)
    answer = browser.post(
        f"{base}/accounts/login/",
        data={
            "username": username,
            "password": username,
            "csrfmiddlewaretoken": CSRF.search(form.text)[1],
        },
        timeout=30,
    )
    assert answer.status_code == 200 and "Your applications" in answer.text, answer.text
    return browser


def post_action(browser: requests.Session, base: str, action: str, role: str, **kwargs):
    portal = browser.get(f"{base}/", timeout=30)
    token = CSRF.search(portal.text)[1]
    return browser.post(
        f"{base}/broker/{action}/",
        data={"role": role, "csrfmiddlewaretoken": token},
        timeout=30,
        **kwargs,
    )


def exported(page: str) -> dict[str, str]:
    block = re.search(r'<pre data-testid="exports">(.*?)</pre>', page, re.S)[1]
    block = block.replace("&#x27;", "'").replace("&quot;", '"').replace("&amp;", "&")
    values = {}
    for line in block.strip().splitlines():
        name, value = line.removeprefix("export ").split("=", 1)
        values[name] = shlex.split(value)[0]
    return values


def caller_identity(base: str, keys: dict[str, str]) -> dict:
    client = boto3.client(
        "sts",
        endpoint_url=f"{base}/aws/",
        region_name="us-east-1",
        aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=keys["AWS_SESSION_TOKEN"],
        config=Config(retries={"max_attempts": 1}),
    )
    try:
        return client.get_caller_identity()
    finally:
        client.close()


def test_open_the_console_assumes_the_role_and_signs_in_once(lab):
    browser = signed_in(lab, "alice")
    answer = post_action(browser, lab, "console", ADMIN, allow_redirects=False)
    assert answer.status_code == 303, answer.text
    login = answer.headers["Location"]
    parts = urlsplit(login)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{lab}/aws/federation"
    query = parse_qs(parts.query)
    assert query["Action"] == ["login"] and query["Issuer"] == [f"{lab}/"]
    assert query["Destination"] == ["https://console.aws.amazon.com/"]

    page = requests.get(login, timeout=30)
    assert page.status_code == 200, page.headers.get("X-Fedmock-Explanation")
    for shown in (
        ADMIN,
        f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/alice",
        '<dd data-testid="session-name">alice</dd>',
        '<dd data-testid="account">111122223333</dd>',
        '<dd data-testid="source-identity">alice</dd>',
    ):
        assert shown in page.text, shown
    issued = IssuedCredential.objects.get(action="AssumeRole")
    assert issued.source_identity == "alice"
    assert f"{issued.expires_at:%Y-%m-%dT%H:%M:%SZ}" in page.text

    again = requests.get(login, timeout=30)
    assert again.status_code == 400
    assert "already used" in again.headers["X-Fedmock-Explanation"]


def test_cli_credentials_are_shown_once_uncached_and_work_for_get_caller_identity(lab):
    browser = signed_in(lab, "bob")
    answer = post_action(browser, lab, "credentials", READ_ONLY)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Cache-Control"] == "no-store"
    keys = exported(answer.text)
    assert keys["AWS_ACCESS_KEY_ID"].startswith("ASIA")
    assert f"aws_secret_access_key = {keys['AWS_SECRET_ACCESS_KEY']}" in answer.text
    assert "[ReadOnly-111122223333]" in answer.text
    assert BROKER_SECRET not in answer.text
    me = caller_identity(lab, keys)
    assert me["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/ReadOnly/bob"
    assert me["Account"] == ACCOUNT


def test_a_role_outside_the_claim_rules_is_refused_and_nothing_is_assumed(lab):
    browser = signed_in(lab, "bob")
    for role in (ADMIN, DEVELOPER):
        answer = post_action(browser, lab, "console", role, allow_redirects=False)
        assert answer.status_code == 403 and "Not one of your roles" in answer.text
    assert not IssuedCredential.objects.exists()
    refused = AuditEvent.objects.filter(flow="broker", outcome="refused")
    assert refused.count() == 2 and {e.username for e in refused} == {"bob"}


def test_without_set_source_identity_in_the_trust_policy_the_session_has_none(lab):
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": ACCOUNT},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    state.update_trust_policy(ACCOUNT, "Admin", json.dumps(trust))
    answer = post_action(signed_in(lab, "alice"), lab, "credentials", ADMIN)
    assert answer.status_code == 200, answer.text
    assert "SourceIdentity" not in answer.text
    assert IssuedCredential.objects.get().source_identity == ""


def test_a_trust_policy_that_does_not_trust_the_broker_is_awss_refusal_explained(lab):
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": PROVIDER},
                "Action": "sts:AssumeRoleWithSAML",
            }
        ],
    }
    state.update_trust_policy(ACCOUNT, "Admin", json.dumps(trust))
    answer = post_action(signed_in(lab, "alice"), lab, "console", ADMIN, allow_redirects=False)
    assert answer.status_code == 403
    assert "AccessDenied" in answer.text and "fedmock explains" in answer.text
    assert BROKER_SECRET not in answer.text
    events = AuditEvent.objects.filter(flow__in=("broker", "sts"))
    assert all(BROKER_SECRET not in event.detail for event in events)


def test_expired_credentials_get_no_signin_token_from_the_cli(lab, settings, tmp_path):
    keys = exported(post_action(signed_in(lab, "alice"), lab, "credentials", ADMIN).text)
    settings.IDP_CLOCK_OFFSET = 3600  # the role session lasted an hour
    answer = console_url(tmp_path, "--federation-url", f"{lab}/aws/federation", **keys)
    assert answer.returncode == 1 and answer.stdout == ""
    assert answer.stderr.count("\n") == 1 and "Expired credentials" in answer.stderr
    assert keys["AWS_SECRET_ACCESS_KEY"] not in answer.stderr


def console_url(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FEDMOCK_"))}
    clean.update(
        HOME=str(tmp_path),
        AWS_CONFIG_FILE=str(tmp_path / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        **env,
    )
    return subprocess.run(
        [FEDMOCK, "console-url", *args],
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_console_url_from_the_standard_chain_signs_in_at_the_local_endpoint(lab, tmp_path):
    keys = exported(post_action(signed_in(lab, "alice"), lab, "credentials", DEVELOPER).text)
    answer = console_url(
        tmp_path, "--federation-url", f"{lab}/aws/federation", "--session-duration", "900", **keys
    )
    assert answer.returncode == 0, answer.stderr
    url = answer.stdout.strip()
    assert url.startswith(f"{lab}/aws/federation?Action=login&Destination=")
    page = requests.get(url, timeout=30)
    assert page.status_code == 200, page.headers.get("X-Fedmock-Explanation")
    assert DEVELOPER in page.text and "assumed-role/Developer/alice" in page.text


def test_console_url_for_a_fedmock_user_uses_their_saml_role_session(lab, tmp_path):
    # The demo's provider holds the metadata of this live server's URL.
    state.update_provider(PROVIDER, identity.metadata_xml().decode())
    token = token_for(staff("minter", "idp.preview_signed_response"), scopes=["sign-on"])
    answer = console_url(
        tmp_path, "--idp", lab, "--user", "alice", "--role", ADMIN,
        "--sts-endpoint", f"{lab}/aws/", "--federation-url", f"{lab}/aws/federation",
        FEDMOCK_TOKEN=token,
    )  # fmt: skip
    assert answer.returncode == 0, answer.stderr
    url = answer.stdout.strip()
    assert parse_qs(urlsplit(url).query)["Issuer"] == [lab]
    page = requests.get(url, timeout=30)
    assert page.status_code == 200, page.headers.get("X-Fedmock-Explanation")
    assert "assumed-role/Admin/alice@example.com" in page.text
    assert "AssumeRoleWithSAML" in page.text
    # The session came from `fedmock credentials`' cache: a second URL needs no token.
    second = console_url(
        tmp_path, "--idp", lab, "--user", "alice", "--role", ADMIN,
        "--sts-endpoint", f"{lab}/aws/", "--federation-url", f"{lab}/aws/federation",
    )  # fmt: skip
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() != url


@pytest.mark.browser
def test_chromium_clicks_open_the_aws_console_and_lands_on_the_session(lab, monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    refused: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on(
                "console",
                lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
            )
            page.goto(f"{lab}/")
            page.fill("#id_username", "alice")
            page.fill("#id_password", "alice")
            page.click("button[type=submit]")
            tile = page.locator(".tile-with-actions", has_text="Developer")
            tile.get_by_role("button", name="Open the AWS console").click()
            page.wait_for_selector("[data-testid=console-session]")
            assert page.url.startswith(f"{lab}/aws/federation?Action=login")
            assert page.inner_text("[data-testid=role-arn]") == DEVELOPER
            assert page.inner_text("[data-testid=session-name]") == "alice"
            assert page.inner_text("[data-testid=account]") == "444455556666"
            page.reload()  # the sign-in token is spent
            assert "Sign-in token already used" in page.content()
        finally:
            browser.close()
    assert refused == []
