"""The issuer's signing keys for AssumeRoleWithWebIdentity, fetched as STS does: OpenID
discovery (`{iss}/.well-known/openid-configuration`) names `jwks_uri`; that is fetched.

Bounded, because the issuer is whatever URL a caller registered: a timeout per request,
a size cap per answer, and a per-process cache (TTL seconds) so a burst of sign-ons does
not fetch the keys once per call. A key rotated at the issuer is seen after the TTL.
"""

import threading
import time

import requests

from . import web_identity

TIMEOUT = 5.0  # seconds, per HTTP request
MAX_BYTES = 256 * 1024  # a JWKS or discovery document larger than this is refused
TTL = 300.0  # seconds a fetched JWKS is reused in this process

_cache: dict[str, tuple[float, dict]] = {}
_lock = threading.Lock()


def forget() -> None:
    """Tests: fetch again on the next call."""
    with _lock:
        _cache.clear()


def _get_json(url: str) -> dict:
    try:
        with requests.get(url, timeout=TIMEOUT, stream=True, allow_redirects=False) as answer:
            if answer.status_code != 200:
                raise ValueError(f"HTTP {answer.status_code}")
            body = answer.raw.read(MAX_BYTES + 1, decode_content=True)
    except requests.RequestException as error:
        raise web_identity.NO_KEY.error(f"GET {url}: {error}") from None
    except ValueError as error:
        raise web_identity.NO_KEY.error(f"GET {url}: {error}") from None
    if len(body) > MAX_BYTES:
        raise web_identity.NO_KEY.error(f"GET {url}: the answer exceeds {MAX_BYTES} bytes")
    try:
        document = requests.models.complexjson.loads(body)
    except ValueError as error:
        raise web_identity.NO_KEY.error(f"GET {url}: not JSON ({error})") from None
    if not isinstance(document, dict):
        raise web_identity.NO_KEY.error(f"GET {url}: not a JSON object")
    return document


def keys_for(issuer: str) -> dict:
    """The issuer's JWKS (cached TTL seconds); a refusal names the URL that failed."""
    now = time.monotonic()
    with _lock:
        cached = _cache.get(issuer)
    if cached and now - cached[0] < TTL:
        return cached[1]
    discovery = _get_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
    jwks_uri = discovery.get("jwks_uri")
    if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
        raise web_identity.NO_KEY.error(f"{issuer}'s discovery document has no jwks_uri")
    jwks = _get_json(jwks_uri)
    with _lock:
        _cache[issuer] = (now, jwks)
    return jwks
