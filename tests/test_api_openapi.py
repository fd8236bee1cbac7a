"""The OpenAPI document is valid and complete, and /api/docs works under the site's CSP."""

import re
import shutil

import lxml.html
import pytest
import requests
from django.urls import URLPattern, URLResolver, get_resolver
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db(transaction=True)

# The operations this part serves, and the refusals each must document.
OPERATIONS = {
    ("post", "/api/v1/sign-ons"): (201, 400, 401, 403, 404, 409),
    ("post", "/api/v1/checks"): (200, 400, 401, 403, 413),
    ("get", "/api/v1/scenarios"): (200, 401, 403),
    ("post", "/api/v1/reset"): (200, 401, 403, 409),
    ("get", "/api/v1/signing-keys"): (200, 401, 403),
    ("post", "/api/v1/signing-keys"): (201, 400, 401, 403, 409),
    ("post", "/api/v1/signing-keys/{fingerprint}/activate"): (200, 401, 403, 404, 409),
    ("post", "/api/v1/signing-keys/{fingerprint}/retire"): (200, 401, 403, 404, 409),
}


@pytest.fixture
def document(idp_url):
    answer = requests.get(f"{idp_url}/api/openapi.json", timeout=30)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/")
    return answer.json()


def test_the_document_validates(document):
    validate(document)  # raises on any violation of the OpenAPI 3 schema
    assert document["openapi"].startswith("3.")
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A fedmock API token: `python manage.py create_api_token USERNAME`.",
    }


@pytest.mark.parametrize(("method", "path"), list(OPERATIONS))
def test_each_operation_documents_itself(document, method, path):
    operation = document["paths"][path][method]
    assert operation["summary"] and operation["description"]
    assert {"bearerAuth": []} in operation["security"]
    assert sorted(int(code) for code in operation["responses"]) == sorted(OPERATIONS[method, path])
    for code, response in operation["responses"].items():
        if int(code) >= 400:
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Error"}, (code, schema)
    if method == "post" and "signing-keys/" not in path and "reset" not in path:
        assert "requestBody" in operation


def _routes(patterns, prefix: str = "") -> list[str]:
    routes = []
    for entry in patterns:
        if isinstance(entry, URLResolver):
            routes += _routes(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            routes.append(prefix + str(entry.pattern))
    return routes


def test_every_v1_route_is_in_the_document(document):
    """Complete: nothing under /api/v1/ is served without being documented."""
    routes = [r for r in _routes(get_resolver().url_patterns) if r.startswith("api/v1/")]
    assert routes
    documented = set(document["paths"])
    for route in routes:
        path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route).lstrip("^").rstrip("$")
        assert path in documented, path


def _policy(header: str) -> dict[str, list[str]]:
    directives = {}
    for directive in header.split(";"):
        name, *values = directive.split()
        directives[name] = values
    return directives


def test_the_docs_page_needs_nothing_the_policy_refuses(idp_url):
    page = requests.get(f"{idp_url}/api/docs", timeout=30)
    assert page.status_code == 200
    policy = _policy(page.headers["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"]
    tree = lxml.html.fromstring(page.content)
    scripts = tree.xpath("//script")
    assert len(scripts) == 3
    for script in scripts:
        source = script.get("src")
        assert source and source.startswith("/") and not source.startswith("//"), source
        assert not (script.text or "").strip()  # no inline script: 'self' would refuse it
        loaded = requests.get(idp_url + source, timeout=30)
        assert loaded.status_code == 200, source
        assert "javascript" in loaded.headers["Content-Type"], source
    init = requests.get(idp_url + scripts[-1].get("src"), timeout=30).text
    assert "/api/openapi.json" in init
    styles = tree.xpath("//style")
    assert styles
    for style in styles:
        assert f"'nonce-{style.get('nonce')}'" in policy["style-src"]
    for link in tree.xpath("//link[@rel='stylesheet' or @rel='icon']"):
        assert link.get("href").startswith("/static/"), link.get("href")


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.mark.browser
def test_chromium_renders_the_docs_without_a_policy_refusal(idp_url, monkeypatch):
    from playwright.sync_api import sync_playwright

    from .test_browser import CHROMIUM_ARGS, blocked_by_policy

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    refused: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            blocked_by_policy(page, refused)
            page.goto(f"{idp_url}/api/docs")
            page.wait_for_selector(".opblock-summary-path", timeout=20_000)
            assert "fedmock API" in page.inner_text(".swagger-ui .info")
            # Swagger UI breaks paths with <wbr>: compare the attribute it keeps whole.
            paths = page.eval_on_selector_all(
                ".opblock-summary-path", "nodes => nodes.map(n => n.dataset.path)"
            )
            assert "/api/v1/sign-ons" in paths and "/api/v1/signing-keys" in paths
        finally:
            browser.close()
    assert refused == []
