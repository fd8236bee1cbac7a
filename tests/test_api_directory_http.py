"""The directory API over real HTTP, with bearer tokens: every endpoint, metadata fetched
from a URL, and a user set up through the API signing on to a real SP (pysaml2)."""

import http.server
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest
from openapi_spec_validator import validate

from idp.registry import fetch_metadata
from idp.saml.errors import SamlError
from users.models import User

from .agents import Browser, ServiceProvider, parse_post_form
from .api_support import Api, assert_refusal, staff, token_for
from .test_api_directory import SP_ENTITY, SP_METADATA

pytestmark = pytest.mark.django_db(transaction=True)


# One connection per request: the live server may close a kept-alive connection just as
# the next request goes out on it (seen once as RemoteDisconnected under load).
ONE_SHOT = {"Connection": "close"}


@pytest.fixture
def api(demo, idp_url) -> Api:
    return Api(idp_url, token_for(User.objects.get(username="admin")), **ONE_SHOT)


# ---------------------------------------------------------------------------- a metadata server


class _Handler(http.server.BaseHTTPRequestHandler):
    """Answers from the server's `routes`: path -> (status, headers, body)."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        status, headers, body = self.server.routes.get(self.path, (404, {}, b"not here"))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if "Content-Length" not in headers and "Transfer-Encoding" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if headers.get("Transfer-Encoding") == "chunked":
            for start in range(0, len(body), 65536):
                piece = body[start : start + 65536]
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextmanager
def metadata_server(routes: dict) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.routes = routes
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


XML = {"Content-Type": "application/samlmetadata+xml"}
BIG = 1024 * 1024 + 1


def _routes(base: str) -> dict:
    return {
        "/md.xml": (200, XML, SP_METADATA.encode()),
        "/moved": (302, {"Location": f"{base}/md.xml"}, b""),
        "/to-ftp": (302, {"Location": "ftp://127.0.0.1/md.xml"}, b""),
        "/loop": (302, {"Location": f"{base}/loop"}, b""),
        "/gone": (410, {}, b"gone"),
        "/empty": (200, XML, b""),
        "/html": (200, {"Content-Type": "text/html"}, b"<html><body>Sign in</body></html>"),
        "/big-declared": (200, {**XML, "Content-Length": str(BIG)}, b"<x/>"),
        "/big-chunked": (200, {**XML, "Transfer-Encoding": "chunked"}, b" " * BIG),
    }


@pytest.fixture
def served() -> Iterator[str]:
    routes: dict = {}
    with metadata_server(routes) as base:
        routes.update(_routes(base))
        yield base


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/gone", "HTTP 410"),
        ("/to-ftp", "InvalidSchema"),
        ("/loop", "more than 5 redirects"),
        ("/empty", "empty"),
        ("/big-declared", f"it is {BIG} bytes"),
        ("/big-chunked", "larger than 1048576 bytes"),
        ("/nowhere", "HTTP 404"),
    ],
)
def test_fetch_metadata_refusals(served, path, words):
    with pytest.raises(SamlError, match="could not be fetched") as refused:
        fetch_metadata(served + path)
    assert words in refused.value.detail
    assert refused.value.hint and refused.value.status == 400


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://127.0.0.1/md.xml", "http:///nohost", "javascript:alert(1)", ""],
)
def test_fetch_metadata_takes_only_http_urls(url):
    with pytest.raises(SamlError, match="must be an http or https URL"):
        fetch_metadata(url)


def test_fetch_metadata_follows_a_redirect(served):
    assert fetch_metadata(served + "/moved") == SP_METADATA.encode()


def test_fetch_metadata_gives_up_on_a_silent_server():
    # The kernel accepts the connection and nothing ever answers: the read times out.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        with pytest.raises(SamlError, match="no complete answer within 0.2 seconds"):
            fetch_metadata(f"http://127.0.0.1:{silent.getsockname()[1]}/", timeout=0.2)


def test_service_provider_from_a_metadata_url(api, served):
    created = api.post(
        "/api/v1/service-providers",
        {"metadata_url": served + "/moved", "name": "Fetched", "rule_set": "aws-identity-center"},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["entity_id"], body["name"], body["profile"]) == (
        SP_ENTITY,
        "Fetched",
        "identity_center",
    )
    assert body["metadata_xml"] == SP_METADATA
    for path, words in [("/html", "not SAML metadata"), ("/gone", "HTTP 410")]:
        refused = assert_refusal(
            api.post("/api/v1/service-providers", {"metadata_url": served + path}), 400
        )
        assert words in refused["fields"]["metadata_url"]


# ---------------------------------------------------------------------------- every endpoint


def test_every_directory_endpoint_over_http(api):
    sp_url = "/api/v1/service-providers/" + quote(SP_ENTITY, safe="")
    steps = [
        # (method, path, body, status)
        ("GET", "/api/v1/users?limit=1", None, 200),
        ("POST", "/api/v1/users", {"username": "hal", "attributes": {"a": ["1", "2"]}}, 201),
        ("GET", "/api/v1/users/hal", None, 200),
        ("PUT", "/api/v1/users/hal", {"username": "hal", "email": "hal@example.com"}, 200),
        ("PATCH", "/api/v1/users/hal", {"groups": ["Finance"]}, 200),
        ("GET", "/api/v1/groups", None, 200),
        ("POST", "/api/v1/groups", {"name": "Ops", "member_of": ["Engineering"]}, 201),
        ("GET", "/api/v1/groups/Ops", None, 200),
        ("PUT", "/api/v1/groups/Ops", {"name": "Ops", "description": "on call"}, 200),
        ("PATCH", "/api/v1/groups/Ops", {"member_of": ["Finance"]}, 200),
        ("PATCH", "/api/v1/groups/Finance", {"member_of": ["Ops"]}, 400),  # a cycle
        ("GET", "/api/v1/service-providers", None, 200),
        ("POST", "/api/v1/service-providers", {"metadata_xml": SP_METADATA}, 201),
        ("POST", "/api/v1/service-providers", {"metadata_xml": "<oops"}, 400),
        ("GET", sp_url, None, 200),
        ("GET", f"/api/v1/service-providers/{SP_ENTITY}", None, 200),  # '/' and ':' as they are
        ("PATCH", sp_url, {"enabled": False, "check_policy": "warn"}, 200),
        ("POST", sp_url + "/rule-set", {"rule_set": "aws-identity-center"}, 200),
        ("GET", sp_url + "/claim-rules", None, 200),
        (
            "POST",
            sp_url + "/claim-rules",
            {"source": "literal", "value": "x", "attribute_name": "urn:example:x"},
            201,
        ),
        (
            "POST",
            sp_url + "/claim-rules",
            {"source": "template", "value": "{nope}", "attribute_name": "urn:example:x"},
            400,
        ),
        ("GET", "/api/v1/claim-rules?global=true", None, 200),
        (
            "POST",
            "/api/v1/claim-rules",
            {"source": "literal", "value": "y", "attribute_name": "urn:example:y"},
            201,
        ),
        ("GET", "/api/v1/claim-rules/{rule}", None, 200),
        ("PATCH", "/api/v1/claim-rules/{rule}", {"order": 7}, 200),
        ("DELETE", "/api/v1/claim-rules/{rule}", None, 204),
        ("GET", "/api/v1/claim-rules/{rule}", None, 404),
        ("DELETE", sp_url, None, 204),
        ("GET", sp_url + "/claim-rules", None, 404),
        ("DELETE", "/api/v1/groups/Ops", None, 204),
        ("DELETE", "/api/v1/users/hal", None, 204),
        ("GET", "/api/v1/users/hal", None, 404),
    ]
    rule = None
    for method, path, body, status in steps:
        response = api.request(method, path.replace("{rule}", str(rule)), json=body)
        assert response.status_code == status, (method, path, response.text)
        if status == 204:
            assert response.content == b""
            continue
        assert response.headers["Content-Type"] == "application/json", (method, path)
        if status >= 400:
            assert_refusal(response, status)
        elif method == "POST" and path == "/api/v1/claim-rules":
            rule = response.json()["id"]
    assert (
        "pbkdf2" not in api.get("/api/v1/users").text
        and "md5$" not in api.get("/api/v1/users").text
    )


def test_a_staff_token_without_permissions_is_refused_writes(demo, idp_url):
    limited = Api(
        idp_url, token_for(staff("viewer", "users.view_user", "users.view_group")), **ONE_SHOT
    )
    assert limited.get("/api/v1/users/alice").status_code == 200
    for method, path, body in [
        ("POST", "/api/v1/users", {"username": "zed"}),
        ("PATCH", "/api/v1/users/alice", {"first_name": "Mallory"}),
        ("DELETE", "/api/v1/groups/Finance", None),
        ("POST", "/api/v1/service-providers", {"metadata_xml": SP_METADATA}),
        (
            "POST",
            "/api/v1/service-providers/urn:amazon:webservices/rule-set",
            {"rule_set": "aws-okta"},
        ),
    ]:
        assert_refusal(limited.request(method, path, json=body), 403, "lacks the permission")
    assert User.objects.get(username="alice").first_name == "Alice"
    assert_refusal(Api(idp_url, **ONE_SHOT).get("/api/v1/users"), 401)


def test_the_document_describes_the_directory(idp_url):
    document = Api(idp_url, **ONE_SHOT).get("/api/openapi.json").json()
    validate(document)
    paths = document["paths"]
    expected = {
        "/api/v1/users": {"get", "post"},
        "/api/v1/users/{username}": {"get", "put", "patch", "delete"},
        "/api/v1/groups": {"get", "post"},
        "/api/v1/groups/{name}": {"get", "put", "patch", "delete"},
        "/api/v1/service-providers": {"get", "post"},
        "/api/v1/service-providers/{entity_id}": {"get", "patch", "delete"},
        "/api/v1/service-providers/{entity_id}/rule-set": {"post"},
        "/api/v1/service-providers/{entity_id}/claim-rules": {"get", "post"},
        "/api/v1/claim-rules": {"get", "post"},
        "/api/v1/claim-rules/{id}": {"get", "patch", "delete"},
    }
    for path, methods in expected.items():
        assert set(paths[path]) - {"parameters"} == methods, path
        for method in methods:
            operation = paths[path][method]
            assert operation["summary"], (path, method)
            refusals = {code for code in operation["responses"] if int(code) >= 400}
            assert {"401", "403"} <= refusals, (path, method)
            if method in ("post", "put", "patch"):
                assert "400" in refusals and "requestBody" in operation, (path, method)
    user = document["components"]["schemas"]["User"]["properties"]
    assert user["password"]["writeOnly"] is True
    assert user["attributes"]["additionalProperties"] == {
        "type": "array",
        "items": {"type": "string"},
    }
    created = paths["/api/v1/service-providers"]["post"]
    request = created["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert request.endswith("/ServiceProviderCreate")
    assert {"200", "201"} <= set(created["responses"])


# ---------------------------------------------------------------------------- a real sign-on


def test_a_user_set_up_through_the_api_signs_on_to_a_real_sp(api, idp_url, tmp_path):
    """Register pysaml2 from its metadata, create a user with a multi-valued attribute and a
    rule that releases it, sign on; then change the attribute and sign on again: the second
    response carries the new values at once (the API's writes reach the caches)."""
    sp = ServiceProvider(tmp_path / "sp", Browser(idp_url).get("/saml/metadata/").content)
    registered = api.post(
        "/api/v1/service-providers", {"metadata_xml": sp.metadata().decode(), "name": "pysaml2"}
    )
    assert registered.status_code == 201, registered.text
    entity = quote(sp.entity_id, safe="")
    rule = api.post(
        f"/api/v1/service-providers/{entity}/claim-rules",
        {
            "source": "attribute",
            "source_attribute": "attr.team",
            "attribute_name": "urn:example:team",
            "condition": "member_of",
            "condition_subject": "Testers",
        },
    )
    assert rule.status_code == 201, rule.text
    assert api.post("/api/v1/groups", {"name": "Testers"}).status_code == 201
    created = api.post(
        "/api/v1/users",
        {
            "username": "dana",
            "password": "dana",
            "email": "dana@example.com",
            "attributes": {"team": ["blue", "red"]},
            "groups": ["Testers"],
        },
    )
    assert created.status_code == 201, created.text

    def sign_on(browser: Browser, first: bool) -> dict:
        request_id, url = sp.redirect_request()
        page = browser.get(url)
        page = browser.sign_in_on(page, "dana") if first else page
        accepted = sp.accept(parse_post_form(page.text)["fields"]["SAMLResponse"], request_id)
        return accepted.ava

    browser = Browser(idp_url)
    assert sign_on(browser, first=True)["urn:example:team"] == ["blue", "red"]
    changed = api.request("PATCH", "/api/v1/users/dana", json={"attributes": {"team": ["green"]}})
    assert changed.status_code == 200, changed.text
    assert sign_on(browser, first=False)["urn:example:team"] == ["green"]
    # Out of the group, the rule's condition fails: no attribute at all.
    api.request("PATCH", "/api/v1/groups/Testers", json={"description": "renamed soon"})
    api.request("PATCH", "/api/v1/users/dana", json={"groups": []})
    assert "urn:example:team" not in sign_on(browser, first=False)
