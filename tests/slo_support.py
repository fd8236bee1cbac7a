"""Single logout parties for the issue 12 SLO tests: pysaml2 SPs that keep sessions and take
logout messages, and a browser that carries messages between them and the live IdP."""

import io
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import lxml.html
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import create_metadata_string

from idp.saml import signing

from .agents import Browser, parse_post_form


class LogoutSP:
    """pysaml2 as an SP with a session cache: it signs on, starts a logout and answers one."""

    def __init__(
        self,
        workdir: Path,
        idp_metadata: bytes,
        host: str,
        *,
        slo: bool = True,
        sign: bool = False,
        slo_bindings=(BINDING_HTTP_REDIRECT, BINDING_HTTP_POST),
    ):
        workdir.mkdir(parents=True, exist_ok=True)
        key_pem, cert_pem = signing.generate_self_signed(f"pysaml2 {host}")
        (workdir / "sp.key").write_bytes(key_pem)
        (workdir / "sp.crt").write_bytes(cert_pem)
        self.workdir = workdir
        self.host = host
        self.entity_id = f"https://{host}/metadata"
        self.acs = f"https://{host}/acs"
        self.slo_url = f"https://{host}/slo"
        self.cert_pem = cert_pem.decode()
        endpoints = {"assertion_consumer_service": [(self.acs, BINDING_HTTP_POST)]}
        if slo:
            endpoints["single_logout_service"] = [(self.slo_url, b) for b in slo_bindings]
        self.config = SPConfig()
        self.config.load(
            {
                "entityid": self.entity_id,
                "key_file": str(workdir / "sp.key"),
                "cert_file": str(workdir / "sp.crt"),
                "xmlsec_binary": "/usr/bin/xmlsec1",
                "metadata": {"inline": [idp_metadata.decode()]},
                "allow_unknown_attributes": True,
                "service": {
                    "sp": {
                        "endpoints": endpoints,
                        "want_response_signed": True,
                        "want_assertions_signed": True,
                        "authn_requests_signed": sign,
                        "logout_requests_signed": sign,
                        "logout_responses_signed": sign,
                        "allow_unsolicited": False,
                    }
                },
            }
        )
        self.client = Saml2Client(config=self.config)
        self.idp_entity_id = next(iter(self.client.metadata.identity_providers()))
        self.name_id = None
        self.logout_response = None  # what this SP got back after starting a logout
        self.logout_requests: list[dict] = []  # LogoutRequests the IdP sent it

    def register(self) -> None:
        from django.core.management import call_command

        path = self.workdir / "metadata.xml"
        path.write_bytes(create_metadata_string(None, config=self.config))
        call_command("import_sp_metadata", str(path), stdout=io.StringIO())

    @property
    def signed_in(self) -> bool:
        return self.name_id is not None and self.client.is_logged_in(self.name_id)

    def sign_on(self, browser: Browser, username: str = "alice"):
        request_id, info = self.client.prepare_for_authenticate(
            entityid=self.idp_entity_id, binding=BINDING_HTTP_REDIRECT
        )
        page = browser.get(dict(info["headers"])["Location"])
        if "/accounts/login/" in page.url:
            page = browser.sign_in_on(page, username)
        form = parse_post_form(page.text)
        response = self.client.parse_authn_request_response(
            form["fields"]["SAMLResponse"], BINDING_HTTP_POST, outstanding={request_id: "/"}
        )
        self.name_id = response.name_id
        return response

    def start_logout(self, binding: str) -> tuple[str, str, dict]:
        """(method, URL, form fields) of this SP's LogoutRequest to the IdP."""
        sent = self.client.do_logout(
            self.name_id, [self.idp_entity_id], "", None, expected_binding=binding
        )
        used, info = sent[self.idp_entity_id]
        assert used == binding
        if binding == BINDING_HTTP_REDIRECT:
            return "GET", dict(info["headers"])["Location"], {}
        form = parse_post_form(info["data"])
        return "POST", form["action"], form["fields"]

    def receive(self, method: str, url: str, fields: dict) -> tuple[str, str, dict] | None:
        """A message the browser brought: answer a LogoutRequest, or take a LogoutResponse."""
        if method == "GET":
            query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
            binding = BINDING_HTTP_REDIRECT
        else:
            query, binding = fields, BINDING_HTTP_POST
        if "SAMLRequest" in query:
            self.logout_requests.append({"binding": binding, **query})
            info = self.client.handle_logout_request(
                query["SAMLRequest"],
                self.name_id,
                binding,
                relay_state=query.get("RelayState"),
                sigalg=query.get("SigAlg"),
                signature=query.get("Signature"),
            )
            if info.get("method") == "GET" or "headers" in info and not info.get("data"):
                return "GET", dict(info["headers"])["Location"], {}
            form = parse_post_form(info["data"])
            return "POST", form["action"], form["fields"]
        self.logout_response = {
            "binding": binding,
            **query,
            "parsed": self.client.parse_logout_request_response(query["SAMLResponse"], binding),
        }
        return None


def drive(browser: Browser, idp_url: str, sps: list[LogoutSP], method: str, url: str, fields):
    """Carry messages like a browser: redirects and auto-posting forms, to the IdP (over HTTP)
    or to an SP (handed to the pysaml2 object). The IdP's last page, or None at an SP."""
    by_host = {sp.host: sp for sp in sps}
    for _ in range(40):
        absolute = urljoin(idp_url + "/", url)
        host = urlsplit(absolute).netloc
        if host in by_host:
            following = by_host[host].receive(method, absolute, fields)
            if following is None:
                return None
            method, url, fields = following
            continue
        if method == "GET":
            response = browser.get(absolute, allow_redirects=False)
        else:
            response = browser.post(absolute, fields, allow_redirects=False)
        if response.status_code in (301, 302, 303):
            method, url, fields = "GET", urljoin(absolute, response.headers["Location"]), {}
            continue
        forms = lxml.html.fromstring(response.text).forms if response.text.strip() else []
        auto = [f for f in forms if urlsplit(f.action or "").netloc in by_host]
        if response.status_code == 200 and auto:
            method, url, fields = "POST", auto[0].action, dict(auto[0].form_values())
            continue
        return response
    raise AssertionError("the logout went round more than 40 times")
