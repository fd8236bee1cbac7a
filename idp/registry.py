"""Registering service providers from their metadata (admin and command share this)."""

from django.core.exceptions import ValidationError
from django.db import transaction

from .models import AssertionConsumerService, ServiceProvider
from .presets import apply_rule_set
from .saml import constants as c
from .saml.errors import SamlError
from .saml.metadata import parse_sp_metadata


def _validated(instance, what: str = ""):
    try:
        instance.full_clean()
    except ValidationError as error:
        problems = "; ".join(f"{field}: {' '.join(m)}" for field, m in error.message_dict.items())
        raise SamlError(
            "The metadata describes an SP this IdP cannot register",
            f"{what}: {problems}" if what else problems,
            "Correct the metadata, or register the SP by hand in the admin.",
        ) from error
    return instance


@transaction.atomic
def register_from_metadata(
    xml: bytes, name: str = "", rule_set: str = ""
) -> tuple[ServiceProvider, bool]:
    """Create or update the SP the metadata describes; its ACS list is replaced.

    With a rule set (such as aws-identity-center), the SP also takes that set's
    settings and rules: the Identity Center preset is its downloaded metadata plus this.
    """
    described = parse_sp_metadata(xml)
    sp, created = ServiceProvider.objects.get_or_create(
        entity_id=described.entity_id, defaults={"name": name or described.entity_id[:200]}
    )
    if name:
        sp.name = name
    sp.metadata_xml = xml.decode("utf-8", errors="replace")
    if described.signing_certificates:
        sp.request_certificate = described.signing_certificates[0]
    if described.encryption_certificates:
        sp.encryption_certificate = described.encryption_certificates[0]
    sp.require_signed_requests = described.authn_requests_signed
    if described.want_assertions_signed:
        sp.sign_assertion = True
    supported = [f for f in described.name_id_formats if f in c.NAMEID_FORMATS]
    if created and supported:
        sp.nameid_format = supported[0]
        sp.nameid_source = {
            c.NAMEID_EMAIL: ServiceProvider.NameIDSource.EMAIL,
            c.NAMEID_TRANSIENT: ServiceProvider.NameIDSource.TRANSIENT,
            c.NAMEID_UNSPECIFIED: ServiceProvider.NameIDSource.USERNAME,
        }.get(supported[0], ServiceProvider.NameIDSource.PERSISTENT)
    _validated(sp)
    sp.save()
    sp.endpoints.all().delete()
    for endpoint in described.assertion_consumer_services:
        # One by one through full_clean: bulk_create would skip the model's validation.
        _validated(
            AssertionConsumerService(
                service_provider=sp,
                location=endpoint.location,
                binding=endpoint.binding,
                index=endpoint.index,
                is_default=endpoint.is_default,
            ),
            what=f"ACS {endpoint.location[:200]}",
        ).save()
    if rule_set:
        try:
            apply_rule_set(sp, rule_set)
        except ValidationError as error:
            raise SamlError(
                f"The rule set {rule_set} does not fit this SP", " ".join(error.messages)
            ) from error
    return sp, created
