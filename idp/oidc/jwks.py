"""The JWT keys as JWKs: the public set for /oidc/jwks and the private key that signs.

The `kid` is the RFC 7638 thumbprint: derived from the public key alone, so it is the same
in every worker and across restarts, and a verifier can recompute it.
"""

import functools

from django.conf import settings
from joserfc.jwk import RSAKey

from idp import keys
from idp.saml import signing

JWT = keys.Use.JWT
ALGORITHM = "RS256"


def issuer() -> str:
    return settings.IDP_BASE_URL.rstrip("/") + "/oidc"


@functools.lru_cache(maxsize=64)
def _jwk(material: signing.KeyMaterial) -> RSAKey:
    # KeyMaterial is frozen and the per-process key cache hands out the same object for a
    # fingerprint, so each key is converted once per process.
    return RSAKey.import_key(material.private_key)


def kid(material: signing.KeyMaterial) -> str:
    return _jwk(material).thumbprint()


def public_jwk(material: signing.KeyMaterial) -> dict:
    return _jwk(material).as_dict(private=False, kid=kid(material), use="sig", alg=ALGORITHM)


def public_set() -> dict:
    """Every JWT key that is not retired (next and active), as a JWK Set."""
    return {"keys": [public_jwk(material) for material in keys.published_keys(JWT)]}


def signing_jwk() -> tuple[RSAKey, str]:
    """The private key that signs tokens now, and its kid (503 SamlError if there is none)."""
    material = keys.active_key(JWT)
    return _jwk(material), kid(material)
