"""IdP metadata out; SP metadata in."""

import binascii
import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from lxml import etree
from saml2 import md

from . import constants as c
from .bindings import parse_xml
from .errors import SamlError
from .signing import (
    KeyMaterial,
    cert_base64,
    check_signature_profile,
    pem_from_base64,
    sign_element,
)


@dataclass(frozen=True)
class Endpoint:
    location: str
    binding: str = c.BINDING_POST
    index: int = 0
    is_default: bool = False


@dataclass(frozen=True)
class RequestedAttribute:
    """An md:RequestedAttribute of the SP's AttributeConsumingService."""

    name: str
    name_format: str = ""
    friendly_name: str = ""
    required: bool = False


@dataclass(frozen=True)
class SpMetadata:
    entity_id: str
    assertion_consumer_services: tuple[Endpoint, ...]
    name_id_formats: tuple[str, ...]
    signing_certificates: tuple[str, ...]
    encryption_certificates: tuple[str, ...]
    authn_requests_signed: bool
    want_assertions_signed: bool
    requested_attributes: tuple[RequestedAttribute, ...] = ()
    single_logout_services: tuple["LogoutEndpoint", ...] = ()


@dataclass(frozen=True)
class LogoutEndpoint:
    """An md:SingleLogoutService of an SP (HTTP-Redirect or HTTP-POST)."""

    binding: str
    location: str
    response_location: str = ""


def idp_metadata(
    entity_id: str,
    sso_url: str,
    signing_certificates: Iterable[str],
    name_id_formats: Iterable[str] = c.NAMEID_FORMATS,
    valid_until: datetime.datetime | None = None,
    cache_duration: str = "",
    signer: KeyMaterial | None = None,
    ecp_url: str = "",
    slo_url: str = "",
) -> bytes:
    """An EntityDescriptor with one IDPSSODescriptor; one KeyDescriptor per certificate.

    With a signer, the document carries an enveloped signature of its own. With an
    ecp_url, a SingleSignOnService with the SOAP binding: ECP clients look for it there.
    With an slo_url, SingleLogoutService for HTTP-Redirect and HTTP-POST, where the
    schema puts it: after the keys, before NameIDFormat (SSODescriptorType).
    """
    root = etree.Element(
        f"{{{c.MD}}}EntityDescriptor", {"entityID": entity_id}, nsmap={"md": c.MD, "ds": c.DS}
    )
    if valid_until is not None:
        root.set("validUntil", valid_until.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    if cache_duration:
        root.set("cacheDuration", cache_duration)
    idp = etree.SubElement(
        root,
        f"{{{c.MD}}}IDPSSODescriptor",
        {"WantAuthnRequestsSigned": "false", "protocolSupportEnumeration": c.SAMLP},
    )
    for cert_pem in signing_certificates:
        descriptor = etree.SubElement(idp, f"{{{c.MD}}}KeyDescriptor", {"use": "signing"})
        key_info = etree.SubElement(descriptor, f"{{{c.DS}}}KeyInfo")
        x509_data = etree.SubElement(key_info, f"{{{c.DS}}}X509Data")
        etree.SubElement(x509_data, f"{{{c.DS}}}X509Certificate").text = cert_base64(cert_pem)
    if slo_url:
        for binding in (c.BINDING_REDIRECT, c.BINDING_POST):
            etree.SubElement(
                idp, f"{{{c.MD}}}SingleLogoutService", {"Binding": binding, "Location": slo_url}
            )
    for name_id_format in name_id_formats:
        etree.SubElement(idp, f"{{{c.MD}}}NameIDFormat").text = name_id_format
    for binding in (c.BINDING_REDIRECT, c.BINDING_POST):
        etree.SubElement(
            idp, f"{{{c.MD}}}SingleSignOnService", {"Binding": binding, "Location": sso_url}
        )
    if ecp_url:
        etree.SubElement(
            idp,
            f"{{{c.MD}}}SingleSignOnService",
            {"Binding": c.BINDING_SOAP, "Location": ecp_url},
        )
    if signer is not None:
        root.set("ID", "_" + signer.fingerprint[:40])
        sign_element(root, signer, position=0)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=signer is None)


@dataclass(frozen=True)
class IdpMetadata:
    entity_id: str
    signing_certificates: tuple[str, ...]


def parse_idp_metadata(xml: bytes) -> IdpMetadata:
    """The entityID and signing certificates of an IdP, as IAM reads them from its metadata."""
    root = parse_xml(xml, "The metadata")
    if root.tag != f"{{{c.MD}}}EntityDescriptor":
        raise SamlError(
            "This is not SAML metadata",
            f"The root element is {root.tag}, not md:EntityDescriptor.",
            "Pass the IdP metadata document that IAM imported.",
        )
    descriptor = root.find(f"{{{c.MD}}}IDPSSODescriptor")
    if descriptor is None:
        raise SamlError(
            "The metadata has no IDPSSODescriptor",
            "It does not describe an identity provider.",
            "Pass the IdP's metadata, not an SP's.",
        )
    certificates = tuple(
        _certificate(element)
        for key in descriptor.iterfind(f"{{{c.MD}}}KeyDescriptor")
        if key.get("use") in (None, "", "signing")
        for element in key.iterfind(f".//{{{c.DS}}}X509Certificate")
    )
    return IdpMetadata(root.get("entityID", ""), certificates)


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in {"true", "1"}


# Standard bindings an SP may list for its ACS that this IdP never answers with
# (Shibboleth lists Artifact and PAOS): skipped on import. Any other binding is
# stored only if the model accepts it.
OTHER_SAML_BINDINGS = frozenset(
    {
        "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact",
        "urn:oasis:names:tc:SAML:2.0:bindings:PAOS",
        "urn:oasis:names:tc:SAML:2.0:bindings:SOAP",
        "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST-SimpleSign",
        "urn:oasis:names:tc:SAML:1.0:profiles:browser-post",
        "urn:oasis:names:tc:SAML:1.0:profiles:artifact-01",
    }
)


def parse_sp_metadata(xml: bytes) -> SpMetadata:
    """The first SPSSODescriptor in an EntityDescriptor (or an EntitiesDescriptor).

    fedmock does not verify metadata signatures (the operator vouches for what they
    import), but it refuses one that lists work outside its allow-list, so no later
    verifier can be made to run it.
    """
    root = parse_xml(xml, "The metadata")
    for signature in root.iter(f"{{{c.DS}}}Signature"):
        check_signature_profile(signature)
    if root.tag == f"{{{c.MD}}}EntitiesDescriptor":
        children = root.findall(f"{{{c.MD}}}EntityDescriptor")
        sp_entities = [e for e in children if e.find(f"{{{c.MD}}}SPSSODescriptor") is not None]
        if len(sp_entities) != 1:
            raise SamlError(
                "The metadata must describe exactly one service provider",
                f"It holds {len(sp_entities)} entities with an SPSSODescriptor.",
                "Import the EntityDescriptor of the one SP you want to register.",
            )
        root = sp_entities[0]
    if root.tag != f"{{{c.MD}}}EntityDescriptor":
        raise SamlError(
            "This is not SAML metadata",
            f"The root element is {root.tag}, not md:EntityDescriptor.",
            "Download the SP's metadata XML (often at /saml/metadata or /metadata).",
        )
    entity = md.entity_descriptor_from_string(etree.tostring(root))
    entity_id = (entity.entity_id or "").strip()
    if not entity_id or len(entity_id) > 1024:
        raise SamlError(
            "The metadata has no usable entityID",
            "The EntityDescriptor's entityID is missing, empty or over 1024 characters.",
            "Set entityID to the SP's entity ID.",
        )
    if not entity.spsso_descriptor:
        raise SamlError(
            "The metadata has no SPSSODescriptor",
            f"Entity {entity_id!r} describes no service provider role.",
            "Import the metadata of a service provider, not of an identity provider.",
        )
    descriptor = entity.spsso_descriptor[0]
    services = tuple(
        endpoint
        for position, acs in enumerate(descriptor.assertion_consumer_service)
        if (endpoint := _endpoint(acs, position)).binding not in OTHER_SAML_BINDINGS
    )
    if not services:
        raise SamlError(
            "The metadata has no AssertionConsumerService this IdP can use",
            f"Entity {entity_id!r} lists no HTTP-POST or HTTP-Redirect ACS to send responses to.",
            f'Add an md:AssertionConsumerService with Binding="{c.BINDING_POST}".',
        )
    indexes = [endpoint.index for endpoint in services]
    if len(set(indexes)) != len(indexes):
        raise SamlError(
            "The metadata repeats an AssertionConsumerService index",
            f"Indexes {indexes} must be unique within the SP.",
            "Give every md:AssertionConsumerService its own index.",
        )

    def certificates(use: str) -> tuple[str, ...]:
        return tuple(
            _certificate(x509_data.x509_certificate)
            for key_descriptor in descriptor.key_descriptor
            if key_descriptor.use in (None, "", use) and key_descriptor.key_info is not None
            for x509_data in key_descriptor.key_info.x509_data
        )

    return SpMetadata(
        entity_id=entity_id,
        assertion_consumer_services=services,
        name_id_formats=tuple(f.text.strip() for f in descriptor.name_id_format if f.text),
        signing_certificates=certificates("signing"),
        encryption_certificates=certificates("encryption"),
        authn_requests_signed=_true(descriptor.authn_requests_signed),
        want_assertions_signed=_true(descriptor.want_assertions_signed),
        requested_attributes=_requested_attributes(descriptor),
        single_logout_services=tuple(
            endpoint
            for service in descriptor.single_logout_service
            if (endpoint := _logout_endpoint(service)).binding not in OTHER_SAML_BINDINGS
        ),
    )


def _logout_endpoint(service) -> LogoutEndpoint:
    """An SP's SingleLogoutService, its URLs checked as ACS locations are."""
    location = _checked_url((service.location or "").strip(), "A SingleLogoutService Location")
    response_location = (service.response_location or "").strip()
    if response_location:
        response_location = _checked_url(
            response_location, "A SingleLogoutService ResponseLocation"
        )
    if not service.binding:
        raise SamlError(
            "A SingleLogoutService has no Binding",
            f"The endpoint at {location} does not say how it receives logout messages.",
            f'Add Binding="{c.BINDING_REDIRECT}".',
        )
    return LogoutEndpoint(service.binding, location, response_location)


def _requested_attributes(descriptor) -> tuple[RequestedAttribute, ...]:
    """Every service's RequestedAttributes, the first of each name kept."""
    found: dict[str, RequestedAttribute] = {}
    for service in descriptor.attribute_consuming_service:
        for requested in service.requested_attribute:
            name = (requested.name or "").strip()
            if name and name not in found:
                found[name] = RequestedAttribute(
                    name,
                    (requested.name_format or "").strip(),
                    (requested.friendly_name or "").strip(),
                    _true(requested.is_required),
                )
    return tuple(found.values())


def _checked_url(location: str, what: str) -> str:
    try:
        parts = urlsplit(location)
        if parts.port == 0:  # .port itself raises for one outside 0-65535
            raise ValueError("port 0")
    except ValueError as error:
        raise SamlError(
            f"{what} is not a valid URL",
            f"{location[:200]!r}: {error}.",
            f"Use absolute http:// or https:// URLs for {what.split(' ', 1)[1]}s, with a port "
            "from 1 to 65535 and IPv6 addresses in complete [brackets].",
        ) from error
    if (
        parts.scheme not in ("http", "https")
        or not parts.netloc
        or not location.isprintable()
        or any(ch in location for ch in ' <>"')
    ):
        raise SamlError(
            f"{what} is not an http(s) URL",
            f"{location!r} cannot receive a SAML message through the browser.",
            f"Use absolute http:// or https:// URLs for {what.split(' ', 1)[1]}s.",
        )
    return location


def _endpoint(acs, position: int) -> Endpoint:
    location = _checked_url((acs.location or "").strip(), "An AssertionConsumerService Location")
    if not acs.binding:
        raise SamlError(
            "An AssertionConsumerService has no Binding",
            f"The endpoint at {location} does not say how it receives responses.",
            f'Add Binding="{c.BINDING_POST}".',
        )
    index = acs.index if acs.index is not None else str(position)
    if not index.isascii() or not index.isdigit() or int(index) > 65535:
        raise SamlError(
            "An AssertionConsumerService index is not a number",
            f"The endpoint at {location} has index {index!r}.",
            "Use whole numbers from 0 to 65535 as ACS indexes.",
        )
    return Endpoint(location, acs.binding, int(index), _true(acs.is_default))


def _certificate(element) -> str:
    try:
        return pem_from_base64(element.text if element is not None and element.text else "")
    except (ValueError, binascii.Error) as error:
        raise SamlError(
            "A certificate in the metadata cannot be read",
            f"An X509Certificate is not a base64 DER certificate ({error}).",
            "Export the metadata again from the SP; the certificate may be truncated.",
        ) from error
