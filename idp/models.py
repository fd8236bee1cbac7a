import re
import secrets
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import (
    MaxValueValidator,
    MinValueValidator,
    RegexValidator,
    URLValidator,
)
from django.db import models
from django.db.models import ProtectedError, Q
from django.db.models.signals import pre_delete
from django.dispatch import receiver
from django.utils import timezone
from django.utils.html import escape

from . import rule_syntax, scenarios
from .oidc import claim_shapes
from .saml import aws
from .saml import constants as c
from .saml.errors import SamlError


def printable(value: str) -> None:
    """XML cannot carry control characters, and no SAML name needs a line break."""
    if not value.isprintable():
        raise ValidationError("Remove the control characters or line breaks.")


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
ENCRYPTION_CHOICES = [
    (c.ENC_AES256_GCM, "AES-256-GCM, key sent with RSA-OAEP"),
    (c.ENC_AES256_CBC, "AES-256-CBC, key sent with RSA-OAEP"),
]
BINDING_CHOICES = [(c.BINDING_POST, "HTTP-POST"), (c.BINDING_REDIRECT, "HTTP-Redirect")]
NAME_FORMAT_CHOICES = [
    (c.ATTRNAME_URI, "uri"),
    (c.ATTRNAME_BASIC, "basic"),
    (c.ATTRNAME_UNSPECIFIED, "unspecified"),
]


def _rsa_certificate_problem(pem: str) -> str:
    if not pem.strip():
        return ""
    try:
        certificate = x509.load_pem_x509_certificate(pem.strip().encode())
    except ValueError:
        return (
            "Not a PEM certificate: paste the block from -----BEGIN CERTIFICATE----- "
            "to -----END CERTIFICATE-----."
        )
    try:
        public_key = certificate.public_key()
    except (ValueError, UnsupportedAlgorithm):  # SM2, GOST and other keys OpenSSL cannot load
        public_key = None
    if not isinstance(public_key, rsa.RSAPublicKey):
        return "Only RSA certificates are supported."
    return ""


MAX_REQUEST_MAX_AGE = 86400  # the widest AuthnRequest clock window an SP may have


class ServiceProvider(models.Model):
    class Profile(models.TextChoices):
        GENERIC = "generic", "Generic SAML service provider"
        AWS = "aws", "AWS (console sign-in and STS)"
        IDENTITY_CENTER = "identity_center", "AWS IAM Identity Center"

    class CheckPolicy(models.TextChoices):
        BLOCK = "block", "block: show the findings instead of sending"
        WARN = "warn", "warn: send, and record the findings in the audit log"

    class NameIDSource(models.TextChoices):
        USERNAME = "username", "user name"
        EMAIL = "email", "e-mail address"
        PERSISTENT = "persistent", "opaque ID, stable per user and SP"
        TRANSIENT = "transient", "opaque ID, new at every sign-on"

    name = models.CharField(max_length=200, validators=[printable])
    entity_id = models.CharField("entity ID", max_length=1024, unique=True, validators=[printable])
    enabled = models.BooleanField(default=True)
    profile = models.CharField(
        max_length=16,
        choices=Profile.choices,
        default=Profile.GENERIC,
        help_text="The AWS profiles turn on the checks of docs/aws-saml-rules.md; AWS also gives "
        "one portal tile per role.",
    )
    check_policy = models.CharField(
        "when the AWS checks find an error",
        max_length=8,
        choices=CheckPolicy.choices,
        default=CheckPolicy.BLOCK,
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
    sign_response = models.BooleanField(
        default=True,
        help_text="Sign the Response around the assertion. The single logout messages this "
        "IdP sends the SP (LogoutRequest, LogoutResponse) are signed when this is on, with "
        "the algorithms below.",
    )
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
    default_relay_state = models.CharField(max_length=1024, blank=True, validators=[printable])
    request_certificate = models.TextField(
        "AuthnRequest signing certificate (PEM)",
        blank=True,
        help_text="Verifies signed AuthnRequests from this SP.",
    )
    require_signed_requests = models.BooleanField(
        default=False,
        help_text="Refuse AuthnRequests whose signature did not verify against the "
        "certificate above.",
    )
    ignore_unverifiable_signatures = models.BooleanField(
        "ignore request signatures it cannot check",
        default=False,
        help_text="Without a certificate, a signed AuthnRequest is refused, since its "
        "signature cannot be checked. Tick this to treat such requests as unsigned instead.",
    )
    request_max_age = models.PositiveIntegerField(
        "AuthnRequest clock window (seconds)",
        default=300,
        validators=[MinValueValidator(30), MaxValueValidator(MAX_REQUEST_MAX_AGE)],
        help_text="AuthnRequests whose IssueInstant is further than this from the IdP's "
        "clock, either way, are refused.",
    )
    encrypt_assertions = models.BooleanField(
        default=False, help_text="Sign the assertion, then encrypt it to the SP (R14)."
    )
    encryption_certificate = models.TextField(
        "encryption certificate (PEM)",
        blank=True,
        help_text="The SP's key for encrypted assertions; imported from its metadata.",
    )
    encryption_algorithm = models.CharField(
        max_length=128, choices=ENCRYPTION_CHOICES, default=c.ENC_AES256_GCM
    )
    require_mfa = models.BooleanField(
        "require a second factor",
        default=False,
        help_text="Every sign-on to this SP needs the user's one-time code (TOTP), whatever "
        "the SP asks for. A user with no authenticator enrolled sets one up first.",
    )
    metadata_xml = models.TextField("last imported metadata", blank=True)
    fault_scenario = models.CharField(
        "fault profile",
        max_length=64,
        blank=True,
        validators=[printable],
        help_text="A fault scenario (docs/scenarios.md), e.g. expired or clock-skew:600: EVERY "
        "response to this SP is broken on purpose, in its real sign-on flows. For testing "
        "that the SP refuses it. Empty: real responses.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "service provider"
        # The preview signs a real assertion for any user: AWS would accept it, so it
        # needs more than the right to view or change the SP.
        permissions = [
            ("preview_signed_response", "Can preview a signed response for any user"),
        ]
        constraints = [
            # A signature that cannot be checked proves nothing: the database itself
            # refuses "require signed requests" without the certificate to check them.
            models.CheckConstraint(
                condition=Q(require_signed_requests=False)
                | ~Q(request_certificate__regex=r"^\s*$"),
                name="signed_requests_need_a_certificate",
                violation_error_message="Add the SP's signing certificate before requiring "
                "signed requests.",
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.entity_id

    @property
    def is_aws(self) -> bool:
        return self.profile == self.Profile.AWS

    @property
    def is_checked(self) -> bool:
        """Whether the AWS checker judges this SP's responses."""
        return self.profile in (self.Profile.AWS, self.Profile.IDENTITY_CENTER)

    def clean(self) -> None:
        errors = {}
        if self.is_checked and not self.sign_assertion:
            errors["sign_assertion"] = "AWS requires a signed assertion (R11)."
        for field in ("request_certificate", "encryption_certificate"):
            if problem := _rsa_certificate_problem(getattr(self, field)):
                errors[field] = problem
        if self.require_signed_requests and not self.request_certificate.strip():
            errors["require_signed_requests"] = "Add the SP's signing certificate first."
        if self.encrypt_assertions and not self.encryption_certificate.strip():
            errors["encrypt_assertions"] = "Add the SP's encryption certificate first."
        if self.encrypt_assertions and self.profile == self.Profile.IDENTITY_CENTER:
            errors["encrypt_assertions"] = (
                "IAM Identity Center does not accept encrypted assertions (R14)."
            )
        if problem := self._fault_scenario_problem():
            errors["fault_scenario"] = problem
        if errors:
            raise ValidationError(errors)

    def _fault_scenario_problem(self) -> str:
        if not self.fault_scenario:
            return ""
        try:
            scenarios.parse(self.fault_scenario)
        except SamlError as error:
            return f"{error.detail} {error.hint}"
        if self.is_checked and self.check_policy == self.CheckPolicy.BLOCK:
            return (
                "The AWS checks block what AWS would reject on this SP, so a standing fault "
                "profile would send nothing. Set 'when the AWS checks find an error' to warn "
                "to send broken responses on purpose, or mint one with the scenario named "
                "(docs/scenarios.md)."
            )
        return ""


def port_in_range(url: str) -> None:
    """URLValidator takes any five digits as a port; a response cannot be posted to 99999."""
    try:
        port = urlsplit(url).port
    except ValueError as error:
        raise ValidationError(f"Not a usable URL: {error}.") from error
    if port == 0:
        raise ValidationError("Port 0 cannot receive a response.")


class AssertionConsumerService(models.Model):
    service_provider = models.ForeignKey(
        ServiceProvider, on_delete=models.CASCADE, related_name="endpoints"
    )
    location = models.CharField(
        max_length=1024, validators=[URLValidator(schemes=["http", "https"]), port_in_range]
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


def _errors(findings: list[aws.Finding]) -> str:
    return " ".join(str(f) for f in findings if f.severity == "error")


DIRECTORY_REFERENCE = re.compile(r"^(username|email|first_name|last_name|groups|attr\.[\w.:-]+)$")
# Template placeholders claims._TemplateValues fills besides the directory: the IdP's scope
# and the SAML V2.0 Subject Identifiers (uniqueID@scope; pairwise-id differs per SP).
SCOPED_IDENTIFIERS = ("scope", "subject_id", "pairwise_id")
DIRECTORY_REFERENCE_HELP = "username, email, first_name, last_name, groups or attr.<attribute name>"
# Django renders help_text as HTML, so each one that shows <…> is escaped.


class ClaimRule(models.Model):
    """One ordered, declarative step from directory data to a SAML attribute or a JWT claim.

    A SAML rule applies to one SP or (global) every SP; a JWT rule to one OIDC client or
    every client. A name means nothing across the two (an attribute URI is no claim), so
    a global rule of one kind never reaches the other.
    """

    class Emits(models.TextChoices):
        SAML = "saml", "a SAML attribute"
        JWT = "jwt", "a JWT claim (OIDC ID token)"

    class ClaimType(models.TextChoices):
        STRING = claim_shapes.STRING, "string (the first value)"
        LIST = claim_shapes.LIST, "list (all values, always an array)"
        BOOLEAN = claim_shapes.BOOLEAN, "boolean (true or false)"

    class Condition(models.TextChoices):
        ALWAYS = "always", "always"
        MEMBER_OF = "member_of", "the user is in the group (directly or through nesting)"
        ATTRIBUTE_MATCHES = "attribute_matches", "a value of the field or attribute matches"

    class Source(models.TextChoices):
        LITERAL = "literal", "a literal value"
        TEMPLATE = "template", "a template over user fields and attributes"
        GROUP_REGEX = "group_regex", "each matching group, through a template"
        ATTRIBUTE = "attribute", "a field or attribute, all its values"

    service_provider = models.ForeignKey(
        ServiceProvider,
        on_delete=models.CASCADE,
        related_name="rules",
        null=True,
        blank=True,
        help_text="Empty: the rule applies to every service provider.",
    )
    oidc_client = models.ForeignKey(
        settings.OAUTH2_PROVIDER_APPLICATION_MODEL,
        on_delete=models.CASCADE,
        related_name="claim_rules",
        null=True,
        blank=True,
        verbose_name="OIDC client",
        help_text="For a JWT rule. Empty: the rule applies to every OIDC client.",
    )
    emits = models.CharField(
        max_length=4,
        choices=Emits.choices,
        default=Emits.SAML,
        help_text="A SAML attribute for service providers, or a claim of OIDC clients' ID tokens.",
    )
    claim_type = models.CharField(
        max_length=8,
        choices=ClaimType.choices,
        default=ClaimType.STRING,
        help_text="JWT rules only. Objects come from nested names: a.b.c; \\. is a literal dot.",
    )
    order = models.PositiveIntegerField(default=0)
    enabled = models.BooleanField(default=True)
    description = models.CharField(max_length=200, blank=True)

    condition = models.CharField(max_length=20, choices=Condition.choices, default=Condition.ALWAYS)
    condition_subject = models.CharField(
        max_length=256,
        blank=True,
        help_text=escape(f"The group name, or for a match: {DIRECTORY_REFERENCE_HELP}."),
    )
    condition_pattern = models.CharField(max_length=512, blank=True)
    negate = models.BooleanField("negate the condition", default=False)

    source = models.CharField(max_length=16, choices=Source.choices)
    value = models.CharField(
        max_length=1024,
        blank=True,
        validators=[printable],
        help_text="The literal, or the template: {email}, {attr.department}, {provider} "
        "(the SP's IAM provider name, or the OIDC client's client_id) and, for group rules, "
        "the pattern's named groups.",
    )
    group_pattern = models.CharField(
        max_length=512,
        blank=True,
        help_text=escape(
            r"Named groups in Python (?P<role>…), ADFS (?<role>…) or Okta (?{{role}}…) "
            r"form, e.g. ^AWS-(?P<account>\d{12})-(?P<role>[\w+=,.@-]+)$"
        ),
    )
    source_attribute = models.CharField(
        max_length=256,
        blank=True,
        help_text=escape(f"For pass-through: {DIRECTORY_REFERENCE_HELP}."),
    )

    attribute_name = models.CharField(
        "attribute or claim name",
        max_length=512,
        validators=[printable],
        help_text=escape(
            r"The SAML attribute, or the JWT claim: a dot nests, \. is a dot, e.g. "
            r"https://aws\.amazon\.com/tags.principal_tags.Department"
        ),
    )
    name_format = models.CharField(
        max_length=128, choices=NAME_FORMAT_CHOICES, default=c.ATTRNAME_URI
    )
    friendly_name = models.CharField(max_length=128, blank=True, validators=[printable])

    class Meta:
        ordering = ["order", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(emits="jwt") | Q(oidc_client__isnull=True),
                name="saml_rule_has_no_oidc_client",
            ),
            models.CheckConstraint(
                condition=Q(emits="saml") | Q(service_provider__isnull=True),
                name="jwt_rule_has_no_service_provider",
            ),
        ]

    def __str__(self) -> str:
        if self.emits_jwt:
            scope = "every OIDC client" if self.oidc_client_id is None else "this OIDC client"
        else:
            scope = "every SP" if self.service_provider_id is None else "this SP"
        label = self.description or self.friendly_name or self.attribute_name
        return f"#{self.order} {label} ({scope})"

    @property
    def emits_jwt(self) -> bool:
        return self.emits == self.Emits.JWT

    def clean(self) -> None:
        errors: dict[str, str] = {}
        self._clean_condition(errors)
        self._clean_source(errors)
        if self.emits_jwt:
            self._clean_jwt(errors)
        elif self.oidc_client_id is not None:
            errors["oidc_client"] = (
                "A SAML rule cannot apply to an OIDC client: clear the client, or make the "
                "rule emit a JWT claim."
            )
        elif problems := _errors(aws.check_attribute_name(self.attribute_name)):
            errors["attribute_name"] = problems
        elif not errors and self.source == self.Source.LITERAL:
            if problems := _errors(aws.check_attribute(self.attribute_name, [self.value])):
                errors["value"] = problems
        if errors:
            raise ValidationError(errors)

    def _clean_jwt(self, errors: dict[str, str]) -> None:
        # The AWS attribute checks are about SAML names; a claim has its own rules.
        if self.service_provider_id is not None:
            errors["service_provider"] = (
                "A JWT rule applies to OIDC clients, not service providers: clear the service "
                "provider (and pick an OIDC client, or none for every client)."
            )
        if problem := claim_shapes.name_problem(self.attribute_name):
            errors["attribute_name"] = problem
        if self.source == self.Source.LITERAL and "value" not in errors:
            if problem := claim_shapes.value_problem(self.claim_type, self.value):
                errors["value"] = problem

    def validate_unique(self, exclude=None) -> None:
        """Uniqueness, and a claim that other rules' claims leave room for.

        Like a unique check it reads the other rows, so it sits here rather than in clean():
        fixture checking skips it (and checks its own rules against each other instead).
        """
        super().validate_unique(exclude)
        if exclude and "attribute_name" in exclude:
            return
        if problem := self.claim_conflict():
            raise ValidationError({"attribute_name": problem})

    def claim_conflict(self) -> str:
        """Why this JWT rule's claim cannot sit beside an enabled rule's that reaches the same
        client, or "" (a disabled rule is checked when it is enabled)."""
        if not (self.emits_jwt and self.enabled):
            return ""
        try:
            mine = (claim_shapes.claim_path(self.attribute_name), self.claim_type)
        except claim_shapes.ClaimShapeError:
            return ""  # clean() says why
        others = ClaimRule.objects.filter(emits=self.Emits.JWT, enabled=True).exclude(pk=self.pk)
        if self.oidc_client_id is not None:
            others = others.filter(Q(oidc_client_id=self.oidc_client_id) | Q(oidc_client=None))
        for other in others.order_by("order", "id"):
            try:
                theirs = (claim_shapes.claim_path(other.attribute_name), other.claim_type)
            except claim_shapes.ClaimShapeError:
                continue
            if problem := claim_shapes.conflict(theirs, mine):
                return f"Rule {other} conflicts: {problem}."
        return ""

    def _clean_condition(self, errors: dict[str, str]) -> None:
        if self.condition == self.Condition.MEMBER_OF and not self.condition_subject:
            errors["condition_subject"] = "Name the group the user must be in."
        if self.condition == self.Condition.ATTRIBUTE_MATCHES:
            if not DIRECTORY_REFERENCE.match(self.condition_subject):
                errors["condition_subject"] = f"Use one of {DIRECTORY_REFERENCE_HELP}."
            try:
                rule_syntax.compile_pattern(self.condition_pattern)
            except re.error as error:
                errors["condition_pattern"] = f"Not a valid regex: {error}."

    def _clean_source(self, errors: dict[str, str]) -> None:
        known = {"provider", *SCOPED_IDENTIFIERS}
        if self.source == self.Source.ATTRIBUTE:
            if not DIRECTORY_REFERENCE.match(self.source_attribute):
                errors["source_attribute"] = f"Use one of {DIRECTORY_REFERENCE_HELP}."
            return
        if not self.value:
            errors["value"] = "This kind of rule needs a value."
            return
        if self.source == self.Source.LITERAL:
            return
        if problem := rule_syntax.template_problem(self.value):
            errors["value"] = problem
            return
        if self.source == self.Source.GROUP_REGEX:
            try:
                known |= set(rule_syntax.compile_pattern(self.group_pattern).groupindex)
            except re.error as error:
                errors["group_pattern"] = f"Not a valid regex: {error}."
                return
        unknown = [
            name
            for name in rule_syntax.placeholders(self.value)
            if name not in known and not DIRECTORY_REFERENCE.match(name)
        ]
        if unknown:
            names = ", ".join(sorted(known - {"provider", *SCOPED_IDENTIFIERS})) or "none"
            errors["value"] = (
                f"{{{unknown[0]}}} is neither a user field or attribute "
                f"({DIRECTORY_REFERENCE_HELP}), nor {{provider}}, {{scope}}, {{subject_id}} "
                f"or {{pairwise_id}}, nor a named group of the pattern ({names})."
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
    """A key's place in the rollover, and its material: every host signs with it.

    The private key is stored encrypted with IDP_KEY_ENCRYPTION_KEY (a Fernet token, see
    keys.py); the certificate is public, so stored in clear. A row from before keys lived
    in the database has neither; keys.py adopts its files from IDP_CERTS_DIR once.

    next: published in metadata, not yet signing. active: published; the most
    recently activated active key signs. retired: neither.
    """

    class State(models.TextChoices):
        NEXT = "next"
        ACTIVE = "active"
        RETIRED = "retired"

    class Use(models.TextChoices):
        # Each use has its own rollover: rotating the JWT key never touches SAML metadata.
        SAML = "saml", "SAML (metadata, assertions)"
        JWT = "jwt", "JWT (OIDC JWKS, web-identity tokens)"

    fingerprint = models.CharField("SHA-256 fingerprint", max_length=64, unique=True)
    state = models.CharField(max_length=8, choices=State.choices)
    use = models.CharField(max_length=4, choices=Use.choices, default=Use.SAML)
    not_valid_before = models.DateTimeField()
    not_valid_after = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    state_changed_at = models.DateTimeField(auto_now_add=True)
    # Not editable: neither the admin's form nor an API serializer may show or take them.
    private_key_encrypted = models.TextField(default="", editable=False)
    certificate_pem = models.TextField(default="", editable=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["use", "state"],
                condition=models.Q(state="next"),
                name="one_next_key_per_use",
            )
        ]

    def __str__(self) -> str:
        return f"{self.fingerprint[:16]}… ({self.state})"

    def deletion_refusal(self) -> str:
        """Why this key must not be deleted now ("" if it may), in `rotate_key retire`'s words.

        An active key may sign in some worker; deleting it unpublishes it at once, without
        the propagation wait that retiring takes. So only next and retired keys go.
        """
        # Each use has its own rollover: a JWT key is never "the only active key" because
        # of a SAML one, nor the reverse.
        active = list(
            SigningKey.objects.filter(state=self.State.ACTIVE, use=self.use)
            .order_by("-state_changed_at")
            .values_list("pk", flat=True)
        )
        if self.pk not in active:
            return ""
        if len(active) == 1:
            return (
                f"Key {self.fingerprint} is the only active key for {self.use}; deleting it "
                f"would stop {'all sign-ons' if self.use == self.Use.SAML else 'signing tokens'}. "
                "Stage and activate a new key first."
            )
        if active[0] == self.pk:
            return (
                f"Key {self.fingerprint} signs. Stage and activate a new key, retire this "
                "one, then delete it."
            )
        return (
            f"Key {self.fingerprint} is still active. Retire it first (`rotate_key retire "
            f"{self.fingerprint[:16]}`, or the Retire action), then delete it."
        )


@receiver(pre_delete, sender=SigningKey)
def _refuse_deleting_a_key_in_use(sender, instance: SigningKey, **kwargs) -> None:
    """Also guards the ORM and bulk deletes, which the admin's checks do not see."""
    if problem := instance.deletion_refusal():
        raise ProtectedError(problem, {instance})


class WorkerHeartbeat(models.Model):
    """A serving worker's report of the keys it has loaded, renewed while it lives.

    A rollover step goes ahead only once every live worker, on every host, reports the
    keys of the step before (keys.py); a worker whose beats stopped is not waited for.
    """

    worker = models.CharField(max_length=200, unique=True, help_text="host:pid:boot token")
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    # Stamped by the database's clock, which every host shares, not the host's own.
    beat_at = models.DateTimeField(db_index=True)
    # {use: {"signer": fingerprint or null, "published": [fingerprints]}}; a use the
    # worker could not load is absent, and `problem` says why.
    key_sets = models.JSONField(default=dict)
    problem = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"{self.host} pid {self.pid}"


class AuditEvent(models.Model):
    class Outcome(models.TextChoices):
        SENT = "sent", "assertion sent"
        STATUS = "status", "SAML error status sent"
        REFUSED = "refused", "refused with an error page"
        # Single logout (flow "slo"): a message received, a round answered in full or in part.
        RECEIVED = "received", "logout message received"
        ANSWERED = "answered", "logout answered"
        PARTIAL = "partial", "partial logout"

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
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


class AnsweredRequest(models.Model):
    """An AuthnRequest ID that has had its response: each one gets exactly one.

    The unique constraint makes the claim atomic across workers and hosts; rows are
    pruned once the request could no longer be answered anyway.
    """

    sp_entity_id = models.CharField(max_length=1024)
    request_id = models.CharField(max_length=256)
    answered_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["sp_entity_id", "request_id"], name="one_answer_per_request"
            )
        ]

    def __str__(self) -> str:
        return f"{self.request_id} from {self.sp_entity_id}"


class RevokedSession(models.Model):
    """An IdP session that signed out: its cookie is refused until it would have expired."""

    session_index = models.CharField(max_length=64, unique=True)
    username = models.CharField(max_length=150, blank=True)
    revoked_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.session_index} ({self.username})"


class ConfigGeneration(models.Model):
    """One counter, bumped by every change to SPs, rules and groups (see cache.py)."""

    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"configuration generation {self.value}"

    @classmethod
    def current(cls) -> int:
        return cls.objects.filter(pk=1).values_list("value", flat=True).first() or 0


class LoadedFixture(models.Model):
    """The fixture last loaded (one row): what `fixtures.reset()` re-applies.

    Kept in the database, not in a worker's memory, so a reset reaches every worker and
    host. Passwords are stored as the hashes the load set, so a reset never re-hashes.
    """

    source = models.CharField(max_length=1024)
    data = models.JSONField()
    loaded_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.source} (loaded {self.loaded_at:%Y-%m-%d %H:%M:%S})"


class SingleLogoutService(models.Model):
    """Where an SP takes LogoutRequests (and, at response_location if set, LogoutResponses).

    Imported from the md:SingleLogoutService elements of its metadata; SOAP and Artifact
    ones are skipped, as for ACS endpoints: the IdP talks to SPs through the browser.
    """

    service_provider = models.ForeignKey(
        ServiceProvider, on_delete=models.CASCADE, related_name="logout_endpoints"
    )
    binding = models.CharField(max_length=128, choices=BINDING_CHOICES, default=c.BINDING_REDIRECT)
    location = models.CharField(
        max_length=1024, validators=[URLValidator(schemes=["http", "https"]), port_in_range]
    )
    response_location = models.CharField(
        max_length=1024,
        blank=True,
        validators=[URLValidator(schemes=["http", "https"]), port_in_range],
        help_text="Where LogoutResponses go, if not to the location above.",
    )

    class Meta:
        ordering = ["id"]
        verbose_name = "single logout service"

    def __str__(self) -> str:
        return self.location


class SpSession(models.Model):
    """One SP that got an assertion within one IdP session: whom single logout must reach.

    Written in batches under gunicorn (participants.py), so the warm sign-on path does
    no synchronous write; ended_at is set when a logout round ends it.
    """

    session_index = models.CharField(max_length=64, db_index=True)
    username = models.CharField(max_length=150)
    sp_entity_id = models.CharField(max_length=1024)
    name_id = models.CharField("NameID", max_length=1024)
    name_id_format = models.CharField("NameID format", max_length=128, blank=True)
    sp_name_qualifier = models.CharField("SPNameQualifier", max_length=1024, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "IdP session (per SP)"
        verbose_name_plural = "IdP sessions (per SP)"
        # Ending a session signs the user out everywhere: more than viewing the records.
        permissions = [("end_session", "Can end a user's IdP session (single logout)")]

    def __str__(self) -> str:
        return f"{self.username} at {self.sp_entity_id} ({self.session_index})"


class LogoutRound(models.Model):
    """One single logout in progress: the participants to reach and how each answered.

    Its id is the RelayState of every LogoutRequest the IdP sends in it, so an SP's
    LogoutResponse finds its round on any worker.
    """

    id = models.CharField(primary_key=True, max_length=32)
    username = models.CharField(max_length=150, blank=True)
    session_index = models.CharField(max_length=64, blank=True)
    participants = models.JSONField(default=list)
    initiator = models.JSONField(null=True, blank=True)
    return_url = models.CharField(max_length=1024, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"logout of {self.username} ({self.id})"
