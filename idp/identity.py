"""The IdP's own identity: its entity ID, its endpoints and its metadata document."""

from django.conf import settings

from . import keys
from .saml import metadata


def entity_id() -> str:
    return settings.IDP_ENTITY_ID or f"{settings.IDP_BASE_URL}/saml/metadata/"


def sso_url() -> str:
    return f"{settings.IDP_BASE_URL}/saml/sso/"


def metadata_xml() -> bytes:
    return metadata.idp_metadata(entity_id(), sso_url(), keys.published_certificates())
