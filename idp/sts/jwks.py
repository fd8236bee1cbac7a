"""The issuer's signing keys for AssumeRoleWithWebIdentity, fetched as STS does: OpenID
discovery (`{iss}/.well-known/openid-configuration`) names `jwks_uri`; that is fetched.

Bounded, because the issuer is whatever URL a caller registered: a timeout per request,
a size cap per answer, and a per-process cache so a burst of sign-ons does not fetch the
keys once per call.

Cache time: a fetched JWKS is reused for TTL = 300 seconds (5 minutes) per issuer and
process. A token whose `kid` the cached set lacks (the issuer has just started signing
with a new key) makes one early refetch before it is refused, at most one per issuer
every REFETCH_INTERVAL = 30 seconds, so a flood of tokens with made-up kids cannot turn
every call into a fetch. A key the issuer stops publishing (retired) is therefore still
accepted until the cached set expires: up to TTL seconds.

fedmock's own issuer ({IDP_BASE_URL}/oidc, the demo's provider) is read in process: the
same key set /oidc/jwks serves (idp.oidc.jwks.public_set), cached the same way. Fetching
it over HTTP would make a gunicorn sync worker wait on a request that only another free
worker can answer: with one worker (`make run` on a 1-core machine) every call timed out,
and with two, two concurrent calls did. Every other issuer is fetched as AWS does.

Thumbprints: IAM keeps an OIDC provider's certificate thumbprints, and AWS once pinned
the issuer's TLS certificate with them. The local STS does not check them: IAM no longer
uses them for issuers whose certificate a trusted CA signs, and here the JWKS is fetched
over plain http on loopback, where there is no certificate to pin. Every refusal about
the issuer's keys says so in its explanation (web_identity.THUMBPRINTS_NOT_CHECKED).
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

from . import web_identity

TIMEOUT = 5.0  # seconds, per HTTP request
MAX_BYTES = 256 * 1024  # a JWKS or discovery document larger than this is refused
TTL = 300.0  # seconds a fetched JWKS is reused in this process
REFETCH_INTERVAL = 30.0  # seconds between early refetches (unknown kid) per issuer


@dataclass(frozen=True)
class _Entry:
    fetched_at: float  # time.monotonic() of the fetch
    jwks: dict
    early_at: float | None = None  # the last early refetch (a kid miss), if any


_cache: dict[str, _Entry] = {}
_lock = threading.Lock()


def forget() -> None:
    """Tests: fetch again on the next call."""
    with _lock:
        _cache.clear()


def _no_key(line: str):
    return web_identity.NO_KEY.error(line, web_identity.THUMBPRINTS_NOT_CHECKED)


def _get_json(url: str) -> dict:
    try:
        with requests.get(url, timeout=TIMEOUT, stream=True, allow_redirects=False) as answer:
            if answer.status_code != 200:
                raise ValueError(f"HTTP {answer.status_code}")
            body = answer.raw.read(MAX_BYTES + 1, decode_content=True)
    except requests.RequestException as error:
        raise _no_key(f"GET {url}: {error}") from None
    except ValueError as error:
        raise _no_key(f"GET {url}: {error}") from None
    if len(body) > MAX_BYTES:
        raise _no_key(f"GET {url}: the answer exceeds {MAX_BYTES} bytes")
    try:
        document = requests.models.complexjson.loads(body)
    except ValueError as error:
        raise _no_key(f"GET {url}: not JSON ({error})") from None
    if not isinstance(document, dict):
        raise _no_key(f"GET {url}: not a JSON object")
    return document


def _kids(jwks: dict) -> set[str]:
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        return set()
    return {key["kid"] for key in keys if isinstance(key, dict) and isinstance(key.get("kid"), str)}


def own_key_set(url: str) -> dict | None:
    """fedmock's own JWKS when `url` is its issuer or its jwks_uri, read in process (see
    the module's note on sync workers); None for any other URL."""
    from idp.oidc import jwks as oidc_jwks

    issuer = oidc_jwks.issuer()
    if url.rstrip("/") not in (issuer, issuer + "/jwks"):
        return None
    return oidc_jwks.public_set()


def fetch(issuer: str) -> dict:
    """The issuer's JWKS: fedmock's own in process, any other over HTTP (discovery, then
    `jwks_uri`)."""
    own = own_key_set(issuer)
    if own is not None:
        return own
    discovery = _get_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
    jwks_uri = discovery.get("jwks_uri")
    if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
        raise _no_key(f"{issuer}'s discovery document has no jwks_uri")
    return _get_json(jwks_uri)


def keys_for(
    issuer: str,
    kid: str | None = None,
    *,
    now: float | None = None,
    fetcher: Callable[[str], dict] = fetch,
) -> dict:
    """The issuer's JWKS, cached TTL seconds; a refusal names the URL that failed.

    `kid` is the token's key ID: if the cached set lacks it, the set is fetched again
    early, at most once per REFETCH_INTERVAL per issuer. `now` is time.monotonic()'s
    reading (tests pass it instead of waiting); `fetcher` fetches (tests pass a fake).
    """
    now = time.monotonic() if now is None else now
    with _lock:
        cached = _cache.get(issuer)
    early_at = cached.early_at if cached else None
    if cached and now - cached.fetched_at < TTL:
        if kid is None or kid in _kids(cached.jwks):
            return cached.jwks
        if early_at is not None and now - early_at < REFETCH_INTERVAL:
            return cached.jwks  # refetched moments ago: the kid is not there; validate refuses
        early_at = now
        with _lock:  # counted before the fetch, so failing fetches are rate-limited too
            _cache[issuer] = _Entry(cached.fetched_at, cached.jwks, early_at)
    jwks = fetcher(issuer)
    with _lock:
        _cache[issuer] = _Entry(now, jwks, early_at)
    return jwks
