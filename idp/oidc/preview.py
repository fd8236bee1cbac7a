"""The ID token one user would get at one OIDC client, and why: the admin's and the API's
answer to "where does this claim come from?", as sso.preview is for an assertion.

It is built as the token endpoint builds one (the validator's claims for every scope the
client may ask for, the claim rules on top) and signed with the active JWT key, but it is
neither issued, stored nor audited.
"""

import datetime
import json
from dataclasses import dataclass

from joserfc import jws
from oauth2_provider.settings import oauth2_settings

from idp import cache, claims

from . import jwks, tokens
from .validator import user_claims  # the token endpoint's own claims, so the preview agrees


@dataclass(frozen=True)
class IdTokenPreview:
    claims: dict  # the payload, as a verifier reads it
    header: dict  # alg, kid (the RFC 7638 thumbprint /oidc/jwks publishes), typ
    token: str  # the signed JWT (compact)
    trace: tuple[claims.RuleOutcome, ...]  # each JWT rule: applied?, values, what was cut
    scopes: tuple[str, ...]  # the scopes it assumes: every scope the client may ask for

    @property
    def claims_json(self) -> str:
        return json.dumps(self.claims, indent=2, ensure_ascii=False)

    @property
    def header_json(self) -> str:
        return json.dumps(self.header, indent=2)


def id_token_preview(user, client, now: datetime.datetime) -> IdTokenPreview:
    """Raises SamlError: 409 for a broken rule, 503 without an active JWT key."""
    cache.refresh()  # read-your-writes, as sso.preview: a rule just saved by another worker
    scopes = tuple(client.allowed_scopes or ())
    # The rules first, so that a broken one is the engine's 409 rather than the token
    # endpoint's OAuth error; user_claims then reads them again from memory.
    trace = claims.id_token_claims(user, client).trace
    body = user_claims(user, client, set(scopes))
    key, kid = jwks.signing_jwk()
    minted = tokens.mint(
        # As if the user signed in now; a real token also echoes the RP's nonce.
        {**body, "aud": client.client_id, "auth_time": int(now.timestamp())},
        key,
        kid,
        issuer=jwks.issuer(),
        now=now,
        lifetime=oauth2_settings.ID_TOKEN_EXPIRE_SECONDS,
    )
    header = dict(jws.extract_compact(minted.token.encode()).headers())
    return IdTokenPreview(minted.claims, header, minted.token, trace, scopes)
