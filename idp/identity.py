"""The IdP's own identity: its entity ID, its endpoints and its metadata document."""

import datetime
from urllib.parse import urlsplit

from django.conf import settings

from . import clock, keys
from .saml import metadata
from .saml.errors import SamlError


def entity_id() -> str:
    return settings.IDP_ENTITY_ID or f"{settings.IDP_BASE_URL}/saml/metadata/"


def sso_url() -> str:
    return f"{settings.IDP_BASE_URL}/saml/sso/"


def ecp_url() -> str:
    """The ECP profile's endpoint (SOAP binding), as Shibboleth's /profile/SAML2/SOAP/ECP."""
    return f"{settings.IDP_BASE_URL}/saml/ecp/"


def slo_url() -> str:
    """Single logout: LogoutRequests and LogoutResponses, over HTTP-Redirect and HTTP-POST."""
    return f"{settings.IDP_BASE_URL}/saml/slo/"


def metadata_xml(signed: bool = False) -> bytes:
    """Every published key; signed if asked.

    validUntil is `valid_until()`, or the first key's expiry if sooner.
    """
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
        slo_url=slo_url(),
        valid_until=min(valid_until(), *(key.not_valid_after for key in published)),
        cache_duration=settings.IDP_METADATA_CACHE_DURATION,
        signer=keys.active_key() if signed else None,
    )


def valid_until() -> datetime.datetime:
    """IDP_METADATA_VALID_DAYS from now, rounded up to the next midnight UTC.

    The rounding keeps the document byte-identical through a day: IAM stores the
    metadata it was given (the local STS compares its snapshot), and a signed copy
    or an ETag would otherwise change every second.
    """
    later = clock.now().astimezone(datetime.UTC) + datetime.timedelta(
        days=settings.IDP_METADATA_VALID_DAYS
    )
    midnight = later.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight if midnight == later else midnight + datetime.timedelta(days=1)


def scope() -> str:
    """The scope of scoped attributes (subject-id, pairwise-id, eduPersonPrincipalName).

    The IdP's host name, lower-case: SAML V2.0 Subject Identifier Attributes require a
    DNS-like scope, and the host is one the IdP can claim.
    """
    return (urlsplit(settings.IDP_BASE_URL).hostname or "localhost").lower()
