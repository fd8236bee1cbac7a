import re
import secrets

from cryptography import x509
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import (
    MaxValueValidator,
    MinValueValidator,
    RegexValidator,
    URLValidator,
)
from django.db import models

from . import rule_templates
from .saml import constants as c

IAM_PROVIDER_NAME = RegexValidator(
    r"^[A-Za-z0-9._-]{1,128}$", "1 to 128 characters from letters, digits and . _ - (R15)."
)

NAMEID_FORMAT_CHOICES = [
    (c.NAMEID_PERSISTENT, "persistent"),
    (c.NAMEID_TRANSIENT, "transient"),
    (c.NAMEID_EMAIL, "emailAddress"),
    (c.NAMEID_UNSPECIFIED, "unspecified"),
]
SIGNATURE_CHOICES = [
    (c.SIG_RSA_SHA256, "RSA-SHA256"),
    (c.SIG_RSA_SHA384, "RSA-SHA384"),
    (c.SIG_RSA_SHA512, "RSA-SHA512"),
    (c.SIG_RSA_SHA1, "RSA-SHA1 (legacy SPs only)"),
]
DIGEST_CHOICES = [
    (c.DIGEST_SHA256, "SHA-256"),
    (c.DIGEST_SHA384, "SHA-384"),
    (c.DIGEST_SHA512, "SHA-512"),
    (c.DIGEST_SHA1, "SHA-1 (legacy SPs only)"),
]
BINDING_CHOICES = [(c.BINDING_POST, "HTTP-POST"), (c.BINDING_REDIRECT, "HTTP-Redirect")]
NAME_FORMAT_CHOICES = [
    (c.ATTRNAME_URI, "uri"),
    (c.ATTRNAME_BASIC, "basic"),
    (c.ATTRNAME_UNSPECIFIED, "unspecified"),
]


class ServiceProvider(models.Model):
    class Profile(models.TextChoices):
        GENERIC = "generic", "Generic SAML service provider"
        AWS = "aws", "AWS (console sign-in and STS)"

    class NameIDSource(models.TextChoices):
        USERNAME = "username", "user name"
        EMAIL = "email", "e-mail address"
        PERSISTENT = "persistent", "opaque ID, stable per user and SP"
        TRANSIENT = "transient", "opaque ID, new at every sign-on"

    name = models.CharField(max_length=200)
    entity_id = models.CharField("entity ID", max_length=1024, unique=True)
    enabled = models.BooleanField(default=True)
    profile = models.CharField(
        max_length=16,
        choices=Profile.choices,
        default=Profile.GENERIC,
        help_text="AWS turns on the checks of AWS-SAML-RULES.md and one portal tile per role.",
    )
    iam_provider_name = models.CharField(
        "IAM SAML provider name",
        max_length=128,
        default="fedmock",
        validators=[IAM_PROVIDER_NAME],
        help_text="The name of the SAML provider in IAM; {provider} in claim rule templates.",
    )
    nameid_format = models.CharField(
        "NameID format", max_length=128, choices=NAMEID_FORMAT_CHOICES, default=c.NAMEID_PERSISTENT
    )
    nameid_source = models.CharField(
        "NameID value", max_length=16, choices=NameIDSource.choices, default=NameIDSource.PERSISTENT
    )
    sign_response = models.BooleanField(default=True)
    sign_assertion = models.BooleanField(default=True)
    signature_algorithm = models.CharField(
        max_length=128, choices=SIGNATURE_CHOICES, default=c.SIG_RSA_SHA256
    )
    digest_algorithm = models.CharField(
        max_length=128, choices=DIGEST_CHOICES, default=c.DIGEST_SHA256
    )
    assertion_lifetime = models.PositiveIntegerField(
        "assertion lifetime (seconds)",
        default=300,
        validators=[MinValueValidator(30), MaxValueValidator(3600)],
        help_text="NotOnOrAfter = issue time + this. AWS redeems within 5 minutes (R12).",
    )
    allow_idp_initiated = models.BooleanField("IdP-initiated sign-on allowed", default=True)
    default_relay_state = models.CharField(max_length=1024, blank=True)
    request_certificate = models.TextField(
        "AuthnRequest signing certificate (PEM)",
        blank=True,
        help_text="Verifies signed AuthnRequests from this SP.",
    )
    require_signed_requests = models.BooleanField(default=False)
    metadata_xml = models.TextField("last imported metadata", blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "service provider"

    def __str__(self) -> str:
        return self.name or self.entity_id

    @property
    def is_aws(self) -> bool:
        return self.profile == self.Profile.AWS

    def clean(self) -> None:
        errors = {}
        if self.is_aws and not self.sign_assertion:
            errors["sign_assertion"] = "AWS requires a signed assertion (R11)."
        if self.request_certificate.strip():
            try:
                x509.load_pem_x509_certificate(self.request_certificate.strip().encode())
            except ValueError:
                errors["request_certificate"] = (
                    "Not a PEM certificate: paste the block from -----BEGIN CERTIFICATE----- "
                    "to -----END CERTIFICATE-----."
                )
        elif self.require_signed_requests:
            errors["require_signed_requests"] = "Add the SP's signing certificate first."
        if errors:
            raise ValidationError(errors)


class AssertionConsumerService(models.Model):
    service_provider = models.ForeignKey(
        ServiceProvider, on_delete=models.CASCADE, related_name="endpoints"
    )
    location = models.CharField(
        max_length=1024, validators=[URLValidator(schemes=["http", "https"])]
    )
    binding = models.CharField(max_length=128, choices=BINDING_CHOICES, default=c.BINDING_POST)
    index = models.PositiveIntegerField(default=0)
    is_default = models.BooleanField(default=False)

    class Meta:
        ordering = ["index"]
        verbose_name = "assertion consumer service"
        constraints = [
            models.UniqueConstraint(fields=["service_provider", "index"], name="unique_acs_index")
        ]

    def __str__(self) -> str:
        return self.location


class ClaimRule(models.Model):
    class Kind(models.TextChoices):
        USER_VALUE = "user_value", "value of a user field or attribute"
        GROUP_REGEX = "group_regex", "group names matched by a regex, through a template"

    USER_FIELDS = ("username", "email", "first_name", "last_name")

    service_provider = models.ForeignKey(
        ServiceProvider, on_delete=models.CASCADE, related_name="rules"
    )
    order = models.PositiveIntegerField(default=0)
    enabled = models.BooleanField(default=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    attribute_name = models.CharField(max_length=512)
    name_format = models.CharField(
        max_length=128, choices=NAME_FORMAT_CHOICES, default=c.ATTRNAME_URI
    )
    friendly_name = models.CharField(max_length=128, blank=True)
    source = models.CharField(
        max_length=160,
        blank=True,
        help_text="For user values: username, email, first_name, last_name or attr.<name>.",
    )
    group_pattern = models.CharField(
        max_length=512,
        blank=True,
        help_text=r"For group rules: a regex with named groups, e.g. "
        r"^AWS-(?P<account>\d{12})-(?P<role>[\w+=,.@-]+)$",
    )
    value_template = models.CharField(
        max_length=1024,
        blank=True,
        help_text="For group rules: the value, with {name} for each named group and {provider} "
        "for the SP's IAM provider name.",
    )

    class Meta:
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return f"#{self.order} {self.attribute_name}"

    def clean(self) -> None:
        if self.kind == self.Kind.USER_VALUE:
            if self.source not in self.USER_FIELDS and not re.fullmatch(
                r"attr\.[\w.:-]+", self.source
            ):
                fields = ", ".join(self.USER_FIELDS)
                raise ValidationError({"source": f"Use one of {fields} or attr.<attribute name>."})
        elif self.kind == self.Kind.GROUP_REGEX:
            try:
                pattern = re.compile(self.group_pattern)
            except re.error as error:
                raise ValidationError({"group_pattern": f"Not a valid regex: {error}."}) from error
            known = set(pattern.groupindex) | {"provider"}
            used = rule_templates.placeholders(self.value_template)
            if not self.value_template:
                raise ValidationError({"value_template": "A group rule needs a value template."})
            if unknown := used - known:
                raise ValidationError(
                    {
                        "value_template": f"{', '.join(sorted('{' + u + '}' for u in unknown))} "
                        f"is not a named group of the pattern (it has "
                        f"{', '.join(sorted(pattern.groupindex)) or 'none'}) nor {{provider}}."
                    }
                )


class PersistentNameID(models.Model):
    """The opaque NameID a user keeps at one SP, like ADFS's PPID or Okta's persistent ID."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    service_provider = models.ForeignKey(ServiceProvider, on_delete=models.CASCADE)
    value = models.CharField(max_length=64, unique=True, default=secrets.token_hex)

    class Meta:
        verbose_name = "persistent NameID"
        constraints = [
            models.UniqueConstraint(
                fields=["user", "service_provider"], name="one_persistent_id_per_user_and_sp"
            )
        ]

    def __str__(self) -> str:
        return self.value


class SigningKey(models.Model):
    class State(models.TextChoices):
        NEXT = "next"
        ACTIVE = "active"
        RETIRED = "retired"

    fingerprint = models.CharField("SHA-256 fingerprint", max_length=64, unique=True)
    state = models.CharField(max_length=8, choices=State.choices)
    not_valid_before = models.DateTimeField()
    not_valid_after = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["state"], condition=models.Q(state="active"), name="one_active_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.fingerprint[:16]}… ({self.state})"


class AuditEvent(models.Model):
    class Outcome(models.TextChoices):
        SENT = "sent", "assertion sent"
        STATUS = "status", "SAML error status sent"
        REFUSED = "refused", "refused with an error page"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    flow = models.CharField(max_length=16)  # "sp-initiated" or "idp-initiated"
    username = models.CharField(max_length=150, blank=True)
    sp_entity_id = models.CharField(max_length=1024, blank=True)
    request_id = models.CharField(max_length=256, blank=True)
    response_id = models.CharField(max_length=64, blank=True)
    acs_url = models.CharField(max_length=1024, blank=True)
    roles = models.JSONField(default=list, blank=True)
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.username} → {self.sp_entity_id}"
