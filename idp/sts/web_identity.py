"""AssumeRoleWithWebIdentity's token checks, as pure code: a JWT, the provider IAM holds,
the issuer's JWKS and the clock in; a ValidatedToken or AWS's refusal (an StsError) out.

Every JOSE step is joserfc's (header parsing, key selection, signature); the checks
around it are AWS's, in the order a caller meets them: size, shape, algorithm, key,
signature, issuer, audience, times. No Django request, ORM or network here: the door
(views.py) finds the provider, fetches the JWKS and passes `now`.
"""

import datetime
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from . import errors
from .errors import Message
from .web_identity_context import (
    SOURCE_IDENTITY_CLAIM,
    TAGS_CLAIM,
    SessionClaims,
    WebIdentityContext,
    session_claims,
    web_identity_context,
)

# botocore's STS model: WebIdentityToken is 4 to 20000 characters. Checked before any
# parsing, so a huge token costs nothing.
TOKEN_MIN, TOKEN_MAX = 4, 20_000
# AWS's list (AssumeRoleWithWebIdentity, WebIdentityToken: "Tokens must be signed using
# either RSA keys (RS256, RS384, or RS512) or ECDSA keys (ES256, ES384, or ES512)").
# Asymmetric only: `none` would need no key, and an HS* token would be "signed" with a
# public key the attacker knows (the classic JWT algorithm confusion); PS* AWS refuses.
ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")
DEFAULT_DURATION = 3600
DURATION_MIN = 900

WEB_IDENTITY_GUIDE = "IAM User Guide: Create a role for OpenID Connect federation"
NO_PROVIDER = Message(
    "InvalidIdentityToken",
    "No OpenIDConnect provider found in your account for {issuer}",
    errors.OBSERVED,
)
WRONG_AUDIENCE = Message("InvalidIdentityToken", "Incorrect token audience", errors.OBSERVED)
TOKEN_EXPIRED = Message(
    "ExpiredTokenException",
    "Token expired: current date/time {now} must be before the expiration date/time {exp}",
    errors.OBSERVED,
)
NO_KEY = Message(
    "InvalidIdentityToken",
    "Couldn't retrieve verification key from your identity provider,  please reference "
    "AssumeRoleWithWebIdentity documentation for requirements",
    errors.OBSERVED,
)
# Where AWS documents no words: fedmock's, with STS's code for the kind of fault.
NOT_A_JWT = Message("InvalidIdentityToken", "The web identity token is not a valid JWT", "")
BAD_ALGORITHM = Message(
    "InvalidIdentityToken", "The web identity token's signing algorithm is not supported", ""
)
BAD_SIGNATURE = Message("InvalidIdentityToken", "The web identity token's signature is invalid", "")
WRONG_ISSUER = Message("InvalidIdentityToken", "Issuer does not match the provider's URL", "")
MISSING_CLAIM = Message("InvalidIdentityToken", "The web identity token has no {claim} claim", "")
NOT_YET_VALID = Message("InvalidIdentityToken", "The web identity token is not yet valid", "")
TAGS_INVALID = Message(
    "InvalidIdentityToken", "Invalid session tags in the web identity token: {reason}", ""
)
# The local STS never checks an IAM OIDC provider's thumbprints; each refusal about the
# issuer's keys says so, since a thumbprint is where AWS would fail first.
THUMBPRINTS_NOT_CHECKED = (
    "The provider's thumbprints are not checked: IAM no longer uses them for issuers whose "
    "certificate a trusted CA signs, and the local STS fetches the JWKS over plain http on "
    "loopback, where there is no certificate to pin (docs/scenarios.md, token faults)."
)


@dataclass(frozen=True)
class Provider:
    """What IAM holds of an OIDC provider: its issuer URL, client IDs and ARN."""

    url: str  # as created, with its scheme: https://token.actions.githubusercontent.com
    client_ids: tuple[str, ...]
    arn: str = ""

    @property
    def key(self) -> str:
        """IAM's name of the issuer in ARNs and condition keys: host/path."""
        parts = urlsplit(self.url)
        return (parts.netloc.lower() + parts.path).rstrip("/")


@dataclass(frozen=True)
class ValidatedToken:
    provider: Provider
    issuer: str
    subject: str
    audience: str  # the client ID that matched (AWS's `Audience` answer)
    claims: Mapping[str, object]
    duration_seconds: int

    def _built(self) -> WebIdentityContext:
        # The one builder the explainer uses too, keyed by IAM's name of the provider
        # (Provider.key: the host lowercased) rather than the token's spelling of iss.
        return web_identity_context(
            {**self.claims, "iss": self.provider.key}, provider_arn=self.provider.arn or None
        )

    def policy_context(self) -> dict[str, str | list[str]]:
        """The trust policy's condition keys, built by web_identity_context.py (IAM User
        Guide: "Available keys for AWS OIDC federation"), exactly as the explainer builds
        them: `:aud` is the token's azp, else its aud (a list stays a list), never the
        client ID that matched (that is `audience`, STS's `Audience` answer)."""
        return dict(self._built().context)

    @property
    def required_actions(self) -> tuple[str, ...]:
        """sts:AssumeRoleWithWebIdentity, + sts:TagSession when the token passes tags,
        + sts:SetSourceIdentity when it names a source identity."""
        return self._built().actions

    @property
    def session(self) -> SessionClaims:
        """The session tags, transitive keys and source identity the session gets."""
        return session_claims(self.claims)


def _z(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _numeric(claims: Mapping[str, object], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise NOT_A_JWT.error(f"the {name} claim is {value!r}, not a NumericDate")
    return float(value)


def validate(
    token: str,
    *,
    provider: Provider,
    jwks: Mapping,
    now: datetime.datetime,
    duration_seconds: int | None,
    role_max_session_duration: int,
) -> ValidatedToken:
    if not isinstance(token, str) or not TOKEN_MIN <= len(token) <= TOKEN_MAX:
        size = len(token) if isinstance(token, str) else 0
        raise errors.constraint(
            None,
            "webIdentityToken",
            f"Member must have length {'less' if size > TOKEN_MAX else 'greater'} than or "
            f"equal to {TOKEN_MAX if size > TOKEN_MAX else TOKEN_MIN}",
            (f"the token has {size} characters; STS takes {TOKEN_MIN} to {TOKEN_MAX}",),
            sensitive=True,
        )
    try:
        header = jws.extract_compact(token.encode()).protected
    except (JoseError, ValueError, TypeError) as error:
        raise NOT_A_JWT.error(f"joserfc cannot read it as a compact JWS: {error}") from None
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        raise BAD_ALGORITHM.error(
            f"header alg {algorithm!r}; the local STS accepts {', '.join(ALGORITHMS)} "
            "(never none or HS*: a public key must not be usable as an HMAC secret)"
        )
    kid = header.get("kid")
    try:
        keys = KeySet.import_key_set(dict(jwks))
    except (JoseError, ValueError, TypeError, KeyError) as error:
        raise NO_KEY.error(f"the issuer's JWKS does not parse: {error}") from None
    known = [key.kid for key in keys.keys]
    if not isinstance(kid, str) or kid not in known:
        raise NO_KEY.error(
            f"header kid {kid!r}; the issuer's JWKS has {known}", THUMBPRINTS_NOT_CHECKED
        )
    try:
        decoded = jwt.decode(token, keys, algorithms=[algorithm])
    except JoseError as error:
        raise BAD_SIGNATURE.error(
            # joserfc's text is its error code alone ("bad_signature:"), so say it in words.
            f"{algorithm} signature by key {kid!r} does not verify: the token was not signed "
            f"by this key, or was changed after signing ({error.error or type(error).__name__})"
        ) from None
    claims = decoded.claims
    if decoded.header.get("alg") != algorithm:  # joserfc read the same header; be sure
        raise BAD_ALGORITHM.error("the header changed between reads")
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or issuer.rstrip("/") != provider.url.rstrip("/"):
        raise WRONG_ISSUER.error(f"iss {issuer!r}; the provider's URL is {provider.url!r}")
    aud = claims.get("aud")
    auds = [aud] if isinstance(aud, str) else [a for a in aud or [] if isinstance(a, str)]
    matched = [a for a in auds if a in provider.client_ids]
    if not matched:
        raise WRONG_AUDIENCE.error(
            f"aud {auds}; the provider {provider.key} lists client IDs {list(provider.client_ids)}"
        )
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise MISSING_CLAIM.error("the token names no subject (sub)", claim="sub")
    moment = now.timestamp()
    exp = _numeric(claims, "exp")
    if exp is None:
        raise MISSING_CLAIM.error("AWS requires an exp claim", claim="exp")
    if moment >= exp:
        raise TOKEN_EXPIRED.error(
            f"exp {_z(exp)} is not after the IdP clock's {_z(moment)}",
            now=int(moment),
            exp=int(exp),
        )
    nbf = _numeric(claims, "nbf")
    if nbf is not None and moment < nbf:
        raise NOT_YET_VALID.error(f"nbf {_z(nbf)} is after the IdP clock's {_z(moment)}")
    iat = _numeric(claims, "iat")
    if iat is not None and iat > moment:
        raise NOT_YET_VALID.error(f"iat {_z(iat)} is after the IdP clock's {_z(moment)}")
    session = session_claims(claims)
    if session.source_identity_problems:
        raise errors.SOURCE_IDENTITY_INVALID.error(
            *session.source_identity_problems,
            f"from the token's {SOURCE_IDENTITY_CLAIM} claim",
        )
    if session.tag_problems:
        raise TAGS_INVALID.error(
            *session.tag_problems,
            f"from the token's {TAGS_CLAIM} claim: principal_tags (each key one value) and "
            "transitive_tag_keys (keys among them)",
            reason="a session tag breaks AWS's rules",
        )
    return ValidatedToken(
        provider=provider,
        issuer=issuer,
        subject=subject,
        audience=matched[0],
        claims=dict(claims),
        duration_seconds=_duration(duration_seconds, role_max_session_duration),
    )


def _duration(requested: int | None, role_max: int) -> int:
    duration = DEFAULT_DURATION if requested is None else requested
    if duration < DURATION_MIN:
        raise errors.constraint(
            duration,
            "durationSeconds",
            f"Member must have value greater than or equal to {DURATION_MIN}",
        )
    if duration > role_max:
        raise errors.DURATION_ABOVE_ROLE_MAX.error(
            f"DurationSeconds {duration} > the role's MaxSessionDuration {role_max}"
        )
    return duration


def token_claims_unverified(token: str) -> dict:
    """The claims before any check: the door needs `iss` to find the provider and its
    JWKS. Nothing here is trusted until validate() has checked the signature."""
    if not isinstance(token, str) or not TOKEN_MIN <= len(token) <= TOKEN_MAX:
        return {}
    try:
        payload = jws.extract_compact(token.encode()).payload
        claims = json.loads(payload)
    except (JoseError, ValueError, TypeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def kid_of(token: str) -> str | None:
    """The header's kid before any check: which key the JWKS cache must hold."""
    if not isinstance(token, str) or not TOKEN_MIN <= len(token) <= TOKEN_MAX:
        return None
    try:
        kid = jws.extract_compact(token.encode()).protected.get("kid")
    except (JoseError, ValueError, TypeError):
        return None
    return kid if isinstance(kid, str) else None


def issuer_of(token: str) -> str | None:
    issuer = token_claims_unverified(token).get("iss")
    return issuer if isinstance(issuer, str) else None


__all__: Sequence[str] = ("Provider", "ValidatedToken", "validate", "issuer_of")
