"""OIDC clients: django-oauth-toolkit's application, swapped for ours.

DOT's application allows one grant type and signs ID tokens with one key from settings. A
client here allows a list of grants and scopes, and signs with fedmock's active `jwt`
signing key (idp/keys.py), so ID tokens follow the same stage/activate/retire lifecycle and
carry the same `kid` as /oidc/jwks publishes.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from jwcrypto.jwk import JWK
from oauth2_provider.models import AbstractApplication

from idp import keys

GRANT_TYPES = (
    (AbstractApplication.GRANT_AUTHORIZATION_CODE, "authorization code (with PKCE)"),
    (AbstractApplication.GRANT_CLIENT_CREDENTIALS, "client credentials"),
)
SCOPES: dict[str, str] = settings.OAUTH2_PROVIDER["SCOPES"]


def _grant_list(value) -> None:
    known = dict(GRANT_TYPES)
    if not isinstance(value, list) or not value:
        raise ValidationError(f"Give at least one grant, as a list: {', '.join(known)}.")
    if unknown := [grant for grant in value if grant not in known]:
        raise ValidationError(
            f"Unknown grant {', '.join(map(str, unknown))}; the grants are {', '.join(known)}."
        )


def _scope_list(value) -> None:
    if not isinstance(value, list) or not value:
        raise ValidationError(f"Give at least one scope, as a list: {', '.join(SCOPES)}.")
    if unknown := [scope for scope in value if scope not in SCOPES]:
        raise ValidationError(
            f"Unknown scope {', '.join(map(str, unknown))}; the scopes are {', '.join(SCOPES)}."
        )


def default_grants() -> list[str]:
    return [AbstractApplication.GRANT_AUTHORIZATION_CODE]


def default_scopes() -> list[str]:
    return ["openid", "profile", "email"]


class Client(AbstractApplication):
    grant_types = models.JSONField(
        default=default_grants,
        validators=[_grant_list],
        help_text="What the client may use: authorization-code (PKCE is required), "
        "client-credentials.",
    )
    allowed_scopes = models.JSONField(
        default=default_scopes,
        validators=[_scope_list],
        help_text=f"The scopes it may ask for: {', '.join(SCOPES)}.",
    )

    # DOT's default is "" (no OIDC); every client here issues ID tokens, signed RS256.
    algorithm = models.CharField(
        max_length=5,
        choices=AbstractApplication.ALGORITHM_TYPES,
        default=AbstractApplication.RS256_ALGORITHM,
        blank=True,
    )

    class Meta(AbstractApplication.Meta):
        swappable = "OAUTH2_PROVIDER_APPLICATION_MODEL"
        verbose_name = "OIDC client"

    def allows_grant_type(self, *grant_types) -> bool:
        return any(grant in self.grant_types for grant in grant_types)

    def _sync_dot_grant(self) -> None:
        # DOT's single grant field, derived: DOT's own checks (clean) read it. The code grant
        # first whatever the list's order, so that DOT's check for redirect URIs applies.
        grants = self.grant_types if isinstance(self.grant_types, list) else []
        known = [grant for grant, _ in GRANT_TYPES if grant in grants]
        self.authorization_grant_type = (known or default_grants())[0]

    def clean_fields(self, exclude=None) -> None:
        self._sync_dot_grant()
        super().clean_fields(exclude)

    def save(self, *args, **kwargs):
        self._sync_dot_grant()
        super().save(*args, **kwargs)

    def clean(self) -> None:
        # DOT's own checks, less the one about OIDC_RSA_PRIVATE_KEY: our key is not a setting.
        self._sync_dot_grant()
        try:
            super().clean()
        except ValidationError as error:
            problems = {
                field: messages
                for field, messages in error.message_dict.items()
                if field != "algorithm" or self.algorithm != self.RS256_ALGORITHM
            }
            if problems:
                raise ValidationError(problems) from None
        if self.algorithm != self.RS256_ALGORITHM:
            raise ValidationError({"algorithm": "fedmock signs ID tokens with RS256 only."})
        grants = self.grant_types if isinstance(self.grant_types, list) else []
        if self.client_type == self.CLIENT_PUBLIC and self.GRANT_CLIENT_CREDENTIALS in grants:
            raise ValidationError(
                {
                    "grant_types": "A public client has no secret, so it cannot use client "
                    "credentials (RFC 6749 4.4): make the client confidential, or drop "
                    "client-credentials."
                }
            )

    @property
    def jwk_key(self) -> JWK:
        """The active JWT signing key; its thumbprint is the kid /oidc/jwks publishes."""
        return JWK.from_pyca(keys.active_key(keys.Use.JWT).private_key)
