"""The IdP's own identity: its entity ID, its endpoints and its metadata document."""

from django.conf import settings

from . import keys
from .saml import metadata
from .saml.errors import SamlError


def entity_id() -> str:
    return settings.IDP_ENTITY_ID or f"{settings.IDP_BASE_URL}/saml/metadata/"


def sso_url() -> str:
    return f"{settings.IDP_BASE_URL}/saml/sso/"


def ecp_url() -> str:
    """The ECP profile's endpoint (SOAP binding), as Shibboleth's /profile/SAML2/SOAP/ECP."""
    return f"{settings.IDP_BASE_URL}/saml/ecp/"


def metadata_xml(signed: bool = False) -> bytes:
    """Every published key, valid until the first of them expires; signed if asked."""
    published = keys.published_keys()
    if not published:
        raise SamlError(
            "The IdP has no signing key to publish",
            "Metadata without a signing certificate cannot be imported into IAM.",
            "Run `python manage.py ensure_signing_key` (make run does this).",
            status=503,
        )
    return metadata.idp_metadata(
        entity_id(),
        sso_url(),
        [key.cert_pem for key in published],
        ecp_url=ecp_url(),
        valid_until=min(key.not_valid_after for key in published),
        cache_duration=settings.IDP_METADATA_CACHE_DURATION,
        signer=keys.active_key() if signed else None,
    )
