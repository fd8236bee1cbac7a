"""Mint a web-identity token with the active JWT key and audit it: the command's and the
API's one path (tokens.py stays pure)."""

import datetime
import json

from idp import audit, clock

from . import jwks, tokens

# Set by the minting itself (--now, --lifetime, our issuer): a claim override would lie.
RESERVED = frozenset({"iss", "iat", "nbf", "exp"})


def parse_claim(text: str) -> tuple[str, object]:
    """`k=v` (a string) or `k:=JSON` (any JSON value), as httpie spells them."""
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise tokens.TokenError(
            "Bad claim", f"{text!r} is not NAME=VALUE.", "Give --claim ref_protected=true."
        )
    if name.endswith(":"):
        name = name[:-1]
        try:
            return name, json.loads(value)
        except ValueError as error:
            raise tokens.TokenError(
                "Bad claim", f"{value!r} is not JSON ({error}).", "Give --claim run_id:=123."
            ) from None
    return name, value


def issue(
    *,
    preset: str | None,
    options: tokens.Options,
    sub: str = "",
    aud: str = "",
    claims: dict | None = None,
    lifetime: int | None = None,
    now: datetime.datetime | None = None,
    username: str = "",
    fault: str | None = None,
) -> tokens.Minted:
    """`fault`: a token fault (tokens.FAULTS) that breaks the token on purpose."""
    broken = tokens.fault_named(fault) if fault else None
    body = tokens.preset_claims(preset, options) if preset else {"aud": tokens.AWS_AUDIENCE}
    if sub:
        body["sub"] = sub
    if aud:
        body["aud"] = aud
    reserved = RESERVED & set(claims or {})
    if reserved:
        raise tokens.TokenError(
            "Reserved claim",
            f"{', '.join(sorted(reserved))} is set by the minting itself.",
            "Use --now and --lifetime instead.",
        )
    body.update(claims or {})
    key, kid = jwks.signing_jwk()
    minted = tokens.mint(
        body,
        key,
        kid,
        issuer=jwks.issuer(),
        now=now or clock.now(),
        lifetime=lifetime or tokens.default_lifetime(preset),
        fault=broken,
    )
    detail = f"sub={minted.claims['sub']} kid={minted.kid} preset={preset or '-'}"
    if broken is not None:
        # Faulty tokens are audited as such, as the SAML fault scenarios are (idp/faults.py).
        detail = f"FAULT {broken.name}: {broken.breaks} Named by the mint.\n{detail}"
    audit.record(
        flow="web-identity",
        username=username,
        sp_entity_id=str(minted.claims["aud"])[:1024],
        response_id=minted.claims["jti"][:64],
        outcome="sent",
        detail=detail,
    )
    return minted
