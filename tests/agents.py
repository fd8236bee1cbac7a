"""Real parties for end-to-end tests: a pysaml2 service provider and a user agent over HTTP."""

import html
import io
import re
from pathlib import Path
from urllib.parse import urljoin

import lxml.html
import requests
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import create_metadata_string

from idp.saml import signing

_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class ServiceProvider:
    """pysaml2 as a SAML SP: it makes AuthnRequests and validates Responses like a real SP.

    Validation covers the signature (against the IdP metadata, with xmlsec1),
    audience, destination/recipient, InResponseTo and the time window.
    """

    def __init__(
        self,
        workdir: Path,
        idp_metadata: bytes,
        entity_id: str = "https://sp.example.test/metadata",
        acs: str = "https://sp.example.test/acs",
        sign_requests: bool = False,
        encryption: bool = False,
    ):
        workdir.mkdir(parents=True, exist_ok=True)
        key_pem, cert_pem = signing.generate_self_signed("pysaml2 test SP")
        (workdir / "sp.key").write_bytes(key_pem)
        (workdir / "sp.crt").write_bytes(cert_pem)
        self.entity_id = entity_id
        self.acs = acs
        self.key_pem = key_pem
        self.config = SPConfig()
        self.config.load(
            {
                **(
                    {
                        "encryption_keypairs": [
                            {
                                "key_file": str(workdir / "sp.key"),
                                "cert_file": str(workdir / "sp.crt"),
                            }
                        ]
                    }
                    if encryption
                    else {}
                ),
                "entityid": entity_id,
                "key_file": str(workdir / "sp.key"),
                "cert_file": str(workdir / "sp.crt"),
                "xmlsec_binary": "/usr/bin/xmlsec1",
                "metadata": {"inline": [idp_metadata.decode()]},
                "allow_unknown_attributes": True,
                "service": {
                    "sp": {
                        "endpoints": {"assertion_consumer_service": [(acs, BINDING_HTTP_POST)]},
                        "want_response_signed": True,
                        "want_assertions_signed": True,
                        "authn_requests_signed": sign_requests,
                        "allow_unsolicited": False,
                    }
                },
            }
        )
        self.client = Saml2Client(config=self.config)
        self.idp_entity_id = next(iter(self.client.metadata.identity_providers()))

    def metadata(self) -> bytes:
        return create_metadata_string(None, config=self.config)

    def register(self, workdir: Path) -> None:
        """Register this SP at the IdP from its own metadata, as an operator would."""
        from django.core.management import call_command

        path = workdir / f"{self.entity_id.split('/')[2]}-metadata.xml"
        path.write_bytes(self.metadata())
        call_command("import_sp_metadata", str(path), stdout=io.StringIO())

    def redirect_request(self, relay_state: str = "", **options) -> tuple[str, str]:
        """(request ID, URL at the IdP) for the HTTP-Redirect binding."""
        request_id, info = self.client.prepare_for_authenticate(
            entityid=self.idp_entity_id,
            relay_state=relay_state,
            binding=BINDING_HTTP_REDIRECT,
            **options,
        )
        return request_id, dict(info["headers"])["Location"]

    def post_request(self, relay_state: str = "", **options) -> tuple[str, str, dict]:
        """(request ID, IdP URL, form fields) for the HTTP-POST binding."""
        request_id, info = self.client.prepare_for_authenticate(
            entityid=self.idp_entity_id,
            relay_state=relay_state,
            binding=BINDING_HTTP_POST,
            **options,
        )
        form = parse_post_form(info["data"])
        return request_id, form["action"], form["fields"]

    def accept(self, saml_response: str, request_id: str | None):
        """Validate a Response as the SP would; raises if anything is wrong."""
        outstanding = {request_id: "/"} if request_id else None
        return self.client.parse_authn_request_response(
            saml_response, BINDING_HTTP_POST, outstanding=outstanding
        )


def parse_post_form(page: str) -> dict:
    forms = lxml.html.fromstring(page).forms
    assert forms, f"no auto-submit form in: {page[:500]}"
    return {"action": forms[0].action, "fields": dict(forms[0].form_values())}


class Browser:
    """A user agent over HTTP: follows redirects, signs in, and reads auto-submit forms."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.session = requests.Session()

    def get(self, url: str, **kwargs) -> requests.Response:
        return self.session.get(urljoin(self.base_url, url), timeout=30, **kwargs)

    def post(self, url: str, data: dict, **kwargs) -> requests.Response:
        return self.session.post(urljoin(self.base_url, url), data=data, timeout=30, **kwargs)

    def sign_in_on(self, page: requests.Response, username: str) -> requests.Response:
        """Fill in the login form the IdP just showed."""
        assert "/accounts/login/" in page.url, f"expected the login page, got {page.url}"
        token = _CSRF.search(page.text).group(1)
        next_url = re.search(r'name="next" value="([^"]*)"', page.text).group(1)
        return self.post(
            "/accounts/login/",
            {
                "csrfmiddlewaretoken": token,
                "username": username,
                "password": username,
                "next": html.unescape(next_url),
            },
            headers={"Referer": page.url},
        )

    def sign_in(self, username: str) -> None:
        page = self.get("/accounts/login/")
        assert self.sign_in_on(page, username).status_code == 200


def certificate(key, days_from: float = -1, days_to: float = 1) -> str:
    """A self-signed PEM certificate for any key type, valid over the given days from now."""
    import datetime

    now = datetime.datetime.now(datetime.UTC)
    return signing.self_signed_certificate(
        key,
        "fedmock test",
        now + datetime.timedelta(days=days_from),
        now + datetime.timedelta(days=days_to),
    ).decode()


def pysaml2_idp(workdir: Path, key_pem: bytes, cert_pem: bytes, sp_metadata: str):
    """pysaml2's IdP side with its stock xmlsec1 backend: an IdP other than fedmock."""
    from saml2.config import IdPConfig
    from saml2.server import Server

    from idp.saml import constants as c

    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "key.pem").write_bytes(key_pem)
    (workdir / "cert.pem").write_bytes(cert_pem)
    config = IdPConfig()
    config.load(
        {
            "entityid": "https://pysaml2-idp.example/metadata",
            "key_file": str(workdir / "key.pem"),
            "cert_file": str(workdir / "cert.pem"),
            "xmlsec_binary": "/usr/bin/xmlsec1",
            "metadata": {"inline": [sp_metadata]},
            "service": {
                "idp": {
                    "endpoints": {
                        "single_sign_on_service": [
                            ("https://pysaml2-idp.example/sso", BINDING_HTTP_REDIRECT)
                        ]
                    },
                    "policy": {
                        "default": {"attribute_restrictions": None, "name_form": c.ATTRNAME_URI}
                    },
                }
            },
        }
    )
    return Server(config=config)
