"""Registering service providers from their metadata (admin, commands and API share this)."""

import socket
import threading
from urllib.parse import urlsplit

import requests
from django.core.exceptions import ValidationError
from django.db import transaction
from requests.adapters import HTTPAdapter

from .models import AssertionConsumerService, ServiceProvider, SingleLogoutService
from .presets import DEFAULT_RULE_SET, apply_rule_set
from .saml import constants as c
from .saml.errors import SamlError
from .saml.metadata import parse_sp_metadata


def _validated(instance, what: str = ""):
    try:
        instance.full_clean()
    except ValidationError as error:
        problems = "; ".join(f"{field}: {' '.join(m)}" for field, m in error.message_dict.items())
        raise SamlError(
            "The metadata describes an SP this IdP cannot register",
            f"{what}: {problems}" if what else problems,
            "Correct the metadata, or register the SP by hand in the admin.",
        ) from error
    return instance


MAX_METADATA_BYTES = 1024 * 1024  # one SP's metadata is a few kB; aggregates are not imported
METADATA_TIMEOUT = 10.0  # seconds for the whole fetch, not per read: a trickling server stops too
METADATA_MAX_REDIRECTS = 5
_FETCH_HINT = "Check the URL in a browser, or download the metadata and send it as XML."


def _fetch_refusal(url: str, detail: str) -> SamlError:
    return SamlError("The metadata could not be fetched", f"{url[:300]}: {detail}", _FETCH_HINT)


class _Deadline:
    """Shuts the fetch's sockets down when its time is up. A socket timeout bounds each
    read, not the whole answer: a server that sends a byte now and then (in the headers or
    the body) never trips it, and would hold the worker for as long as it likes."""

    def __init__(self, seconds: float):
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self.passed = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> "_Deadline":
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.passed:
                self._shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.passed = True
            for sock in self._sockets:
                self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        # The plain socket's shutdown, under any TLS layer: a blocked read returns at once.
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass  # already closed


class _DeadlineAdapter(HTTPAdapter):
    """Hands every socket the fetch opens (each redirect's, a proxy's) to the deadline."""

    def __init__(self, deadline: _Deadline):
        super().__init__(max_retries=0)
        self.deadline = deadline

    def get_connection_with_tls_context(self, *args, **kwargs):
        pool = super().get_connection_with_tls_context(*args, **kwargs)
        if not getattr(pool.ConnectionCls, "deadline", None):
            deadline, base = self.deadline, pool.ConnectionCls

            class Watched(base):
                def _new_conn(self):
                    sock = super()._new_conn()
                    deadline.watch(sock)
                    return sock

            Watched.deadline = deadline
            pool.ConnectionCls = Watched
        return pool


def fetch_metadata(
    url: str,
    *,
    timeout: float = METADATA_TIMEOUT,
    max_bytes: int = MAX_METADATA_BYTES,
) -> bytes:
    """The bytes at an http(s) URL, for `register_from_metadata`; every failure is a SamlError.

    Redirects are followed (requests refuses any that leave http and https), at most
    METADATA_MAX_REDIRECTS of them. The body is read in chunks and refused past
    max_bytes, so a huge or endless answer costs at most that much memory; the whole
    fetch, connecting included, ends after `timeout` seconds (name resolution aside).
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise SamlError(
            "The metadata URL must be an http or https URL",
            f"{url[:300]!r} is not one.",
            "Give the full URL, such as https://sp.example.com/saml/metadata.",
        )
    # One message for a read that times out and for the deadline: they can fire together.
    too_slow = _fetch_refusal(url, f"no complete answer within {timeout:g} seconds.")
    session = requests.Session()
    session.max_redirects = METADATA_MAX_REDIRECTS
    with _Deadline(timeout) as deadline:
        adapter = _DeadlineAdapter(deadline)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        try:
            with session.get(
                url,
                timeout=timeout,
                stream=True,
                # A compressed answer could inflate far beyond max_bytes within one chunk.
                headers={
                    "Accept": "application/samlmetadata+xml, application/xml, text/xml, */*;q=0.5",
                    "Accept-Encoding": "identity",
                },
            ) as response:
                if response.status_code != 200:
                    raise _fetch_refusal(url, f"the server answered HTTP {response.status_code}.")
                declared = response.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise _fetch_refusal(
                        url, f"it is {declared} bytes; the limit is {max_bytes} bytes."
                    )
                body = bytearray()
                for chunk in response.iter_content(64 * 1024):
                    body += chunk
                    if len(body) > max_bytes:
                        raise _fetch_refusal(url, f"it is larger than {max_bytes} bytes.")
        except requests.Timeout as error:
            raise too_slow from error
        except requests.TooManyRedirects as error:
            raise _fetch_refusal(url, f"more than {METADATA_MAX_REDIRECTS} redirects.") from error
        except requests.RequestException as error:
            if deadline.passed:  # the shut socket's error, not the server's
                raise too_slow from error
            raise _fetch_refusal(url, f"{type(error).__name__}: {error}") from error
        finally:
            session.close()
    if deadline.passed:  # a body without a length ends cleanly when its socket is shut
        raise too_slow
    if not body:
        raise _fetch_refusal(url, "the answer was empty.")
    return bytes(body)


@transaction.atomic
def register_from_metadata(
    xml: bytes, name: str = "", rule_set: str = ""
) -> tuple[ServiceProvider, bool]:
    """Create or update the SP the metadata describes; its ACS and SLO lists are replaced.

    With a rule set (such as aws-identity-center), the SP also takes that set's
    settings and rules: the Identity Center preset is its downloaded metadata plus this.
    A new SP without one gets the generic set, so that no assertion of a freshly
    registered SP lacks an AttributeStatement (python3-saml's strict mode refuses that).
    """
    described = parse_sp_metadata(xml)
    sp, created = ServiceProvider.objects.get_or_create(
        entity_id=described.entity_id, defaults={"name": name or described.entity_id[:200]}
    )
    if name:
        sp.name = name
    sp.metadata_xml = xml.decode("utf-8", errors="replace")
    if described.signing_certificates:
        sp.request_certificate = described.signing_certificates[0]
    if described.encryption_certificates:
        sp.encryption_certificate = described.encryption_certificates[0]
    sp.require_signed_requests = described.authn_requests_signed
    if described.want_assertions_signed:
        sp.sign_assertion = True
    supported = [f for f in described.name_id_formats if f in c.NAMEID_FORMATS]
    if created and supported:
        sp.nameid_format = supported[0]
        sp.nameid_source = {
            c.NAMEID_EMAIL: ServiceProvider.NameIDSource.EMAIL,
            c.NAMEID_TRANSIENT: ServiceProvider.NameIDSource.TRANSIENT,
            c.NAMEID_UNSPECIFIED: ServiceProvider.NameIDSource.USERNAME,
        }.get(supported[0], ServiceProvider.NameIDSource.PERSISTENT)
    _validated(sp)
    sp.save()
    sp.endpoints.all().delete()
    for endpoint in described.assertion_consumer_services:
        # One by one through full_clean: bulk_create would skip the model's validation.
        _validated(
            AssertionConsumerService(
                service_provider=sp,
                location=endpoint.location,
                binding=endpoint.binding,
                index=endpoint.index,
                is_default=endpoint.is_default,
            ),
            what=f"ACS {endpoint.location[:200]}",
        ).save()
    sp.logout_endpoints.all().delete()
    for logout in described.single_logout_services:
        _validated(
            SingleLogoutService(
                service_provider=sp,
                binding=logout.binding,
                location=logout.location,
                response_location=logout.response_location,
            ),
            what=f"SingleLogoutService {logout.location[:200]}",
        ).save()
    if created and not rule_set:
        rule_set = DEFAULT_RULE_SET
    if rule_set:
        try:
            apply_rule_set(sp, rule_set)
        except ValidationError as error:
            raise SamlError(
                f"The rule set {rule_set} does not fit this SP", " ".join(error.messages)
            ) from error
    return sp, created
