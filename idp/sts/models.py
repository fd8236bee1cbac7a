"""The local IAM slice and the credentials the local STS issued, kept in fedmock's database.

moto's backends hold this state per process (state.py loads them), but gunicorn runs
several workers and `make run` restarts them: the database is the one copy every
worker reads, and a generation counter tells each worker when to reload.
"""

from django.db import models
from django.db.models import F


class IamGeneration(models.Model):
    """One counter, bumped by every change to SAML providers and roles."""

    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"IAM generation {self.value}"

    @classmethod
    def current(cls) -> int:
        return cls.objects.filter(pk=1).values_list("value", flat=True).first() or 0

    @classmethod
    def bump(cls) -> None:
        if not cls.objects.filter(pk=1).update(value=F("value") + 1):
            cls.objects.get_or_create(pk=1, defaults={"value": 1})


class SamlProvider(models.Model):
    account_id = models.CharField(max_length=12)
    name = models.CharField(max_length=128)
    metadata = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = "IAM SAML provider"
        constraints = [
            models.UniqueConstraint(fields=["account_id", "name"], name="one_provider_name")
        ]

    def __str__(self) -> str:
        return self.arn

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:saml-provider/{self.name}"


class Role(models.Model):
    account_id = models.CharField(max_length=12)
    name = models.CharField(max_length=64)
    path = models.CharField(max_length=512, default="/")
    role_id = models.CharField(max_length=32, unique=True)  # AROA…, moto's random_role_id
    trust_policy = models.TextField()
    max_session_duration = models.PositiveIntegerField(default=3600)
    description = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = "IAM role"
        constraints = [models.UniqueConstraint(fields=["account_id", "name"], name="one_role_name")]

    def __str__(self) -> str:
        return self.arn

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:role{self.path}{self.name}"


class IssuedCredential(models.Model):
    """Temporary credentials the local STS issued: any worker answers GetCallerIdentity."""

    access_key_id = models.CharField(max_length=128, unique=True)
    secret_access_key = models.CharField(max_length=128)
    session_token = models.TextField()
    account_id = models.CharField(max_length=12)
    arn = models.CharField(max_length=2048)  # the caller: assumed-role/… or federated-user/…
    user_id = models.CharField(max_length=256)
    action = models.CharField(max_length=32)  # AssumeRoleWithSAML, AssumeRole, …
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    source_identity = models.CharField(max_length=64, blank=True)
    # The session tags (key: value) and transitive tag keys the session was issued with:
    # a SAML assertion's PrincipalTag attributes or a web identity token's
    # https://aws.amazon.com/tags claim.
    session_tags = models.JSONField(default=dict, blank=True)
    transitive_tag_keys = models.JSONField(default=list, blank=True)

    class Meta:
        verbose_name = "issued STS credential"

    def __str__(self) -> str:
        return f"{self.access_key_id} ({self.arn})"


class OidcProvider(models.Model):
    """An IAM OpenID Connect provider: the issuer a web identity token must name."""

    account_id = models.CharField(max_length=12)
    url = models.CharField(max_length=255)  # as IAM keeps it: host/path, without the scheme
    issuer = models.CharField(max_length=255)  # as created (https://…), the token's `iss`
    client_ids = models.JSONField(default=list)
    # Kept and answered as IAM does, never checked: IAM no longer uses thumbprints for
    # issuers whose certificate a trusted CA signs, and the local STS fetches the JWKS over
    # plain http on loopback (idp/sts/jwks.py; docs/scenarios.md, token faults).
    thumbprints = models.JSONField(default=list)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = "IAM OIDC provider"
        constraints = [
            models.UniqueConstraint(fields=["account_id", "url"], name="one_oidc_provider_url")
        ]

    def __str__(self) -> str:
        return self.arn

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:oidc-provider/{self.url}"


class SigninToken(models.Model):
    """A console sign-in token of the local federation endpoint (/aws/federation).

    Only its SHA-256 digest is kept, so the table cannot sign anyone in. AWS's tokens are
    good for 15 minutes and once: `used_at` is set by the one UPDATE that may claim it.
    """

    digest = models.CharField(max_length=64, unique=True)
    credential = models.ForeignKey(IssuedCredential, on_delete=models.CASCADE)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    session_duration = models.PositiveIntegerField()  # the console session, in seconds
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "console sign-in token"

    def __str__(self) -> str:
        return f"sign-in token for {self.credential.arn}"
