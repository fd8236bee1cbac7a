"""A real browser (Debian's chromium through Playwright) signs in at the portal and picks a role."""

import base64
import os
import shutil
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from lxml import etree
from playwright.sync_api import sync_playwright

from idp.saml import aws
from idp.saml import constants as c

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The README's screenshot is rewritten only on request: FEDMOCK_SCREENSHOTS=1 make test.
DOCS_SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "portal.png"
# Flags that keep chromium from reaching for Google's hosts on a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def blocked_by_policy(page, messages: list[str]) -> None:
    """Collect what chromium says the Content-Security-Policy refused."""

    def note(message) -> None:
        if "Content Security Policy" in message.text:
            messages.append(message.text)

    page.on("console", note)


def test_alice_picks_an_aws_role_tile(demo, idp_url, monkeypatch, tmp_path):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    screenshot = (
        DOCS_SCREENSHOT
        if os.environ.get("FEDMOCK_SCREENSHOTS") == "1"
        else (tmp_path / "portal.png")
    )
    posts = []
    refused: list[str] = []

    def catch_aws_post(route):
        # Nothing leaves the machine: the POST to AWS is answered here.
        posts.append(route.request.post_data)
        route.fulfill(status=200, content_type="text/html", body="<h1>caught by the test</h1>")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 640})
            blocked_by_policy(page, refused)
            page.route("https://signin.aws.amazon.com/**", catch_aws_post)
            page.goto(f"{idp_url}/")
            assert "/accounts/login/" in page.url
            page.fill("#id_username", "alice")
            page.fill("#id_password", "alice")
            page.click("button[type=submit]")
            page.wait_for_selector("a.tile")
            screenshot.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)

            page.click("a.tile:has-text('Developer')")
            page.wait_for_url("https://signin.aws.amazon.com/saml")
            assert "caught by the test" in page.content()
        finally:
            browser.close()

    assert len(posts) == 1
    fields = parse_qs(posts[0])
    root = etree.fromstring(base64.b64decode(fields["SAMLResponse"][0]))
    roles = [
        value.text
        for value in root.iterfind(
            f".//{{{c.SAML}}}Attribute[@Name='{aws.ROLE}']/{{{c.SAML}}}AttributeValue"
        )
    ]
    assert roles == [
        "arn:aws:iam::444455556666:role/Developer,arn:aws:iam::444455556666:saml-provider/fedmock"
    ]
    assert screenshot.stat().st_size > 5000
    assert refused == []  # the auto-submitting POST form and the portal keep the policy


def test_the_admin_works_under_the_content_security_policy(demo, idp_url, monkeypatch):
    """Django's admin scripts are static files: the policy must let them run."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    refused: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            blocked_by_policy(page, refused)
            page.goto(f"{idp_url}/admin/login/")
            page.fill("#id_username", "admin")
            page.fill("#id_password", "admin")
            page.click("input[type=submit]")
            page.wait_for_selector("#site-name")
            page.goto(f"{idp_url}/admin/users/user/")
            page.click("#action-toggle")  # actions.js ticks every row
            assert page.locator("input.action-select:checked").count() >= 4
            page.goto(f"{idp_url}/admin/idp/signingkey/")
            page.goto(f"{idp_url}/admin/idp/serviceprovider/")
            page.click("table#result_list tbody th a >> nth=0")
            page.wait_for_selector("form#serviceprovider_form")
        finally:
            browser.close()
    assert refused == []
