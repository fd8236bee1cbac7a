"""API tokens: bearer secrets of staff users, stored as SHA-256 digests only.

A token reads `fm_<prefix>_<secret>`. The prefix is not secret: the admin shows it so that
an operator can tell tokens apart. The secret has 256 bits from `secrets`, so a plain
SHA-256 of the whole text is enough to store (as GitHub does): there is nothing to
brute-force, so a slow password hash would only slow every API call down.
"""

import datetime
import hashlib
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

PREFIX = "fm"
PREFIX_HEX_DIGITS = 8
SECRET_BYTES = 32
# An upper bound on what a client may send as a token; anything longer is not ours.
MAX_TOKEN_LENGTH = 100

# What a token may be used for, on top of its user's model permissions (which still apply).
SCOPES: dict[str, str] = {
    "read": "read what the user may view (GET), run checks, list scenarios",
    "write": "change the directory and the signing keys (POST, PUT, PATCH, DELETE)",
    "sign-on": "mint signed SAML responses (POST /api/v1/sign-ons)",
    "reset": "restore the loaded fixture (POST /api/v1/reset)",
}
ALL_SCOPES = tuple(SCOPES)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token_text() -> tuple[str, str]:
    """(the token, its prefix)."""
    prefix = secrets.token_hex(PREFIX_HEX_DIGITS // 2)
    return f"{PREFIX}_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}", prefix


def validate_scopes(value) -> None:
    if not isinstance(value, list) or not value:
        raise ValidationError("Give at least one scope, as a list.")
    unknown = [scope for scope in value if scope not in SCOPES]
    if unknown:
        raise ValidationError(
            f"Unknown scope {', '.join(map(str, unknown))}; the scopes are {', '.join(SCOPES)}."
        )


def refuse_unless_staff(user) -> None:
    """Only a staff user's token is accepted, so only a staff user gets one."""
    if not user.is_active:
        raise ValidationError(f"User {user.username} is inactive; activate the user first.")
    if not user.is_staff:
        raise ValidationError(
            f"User {user.username} is not staff; only staff users' tokens are accepted. "
            "Tick 'Staff status' in the admin first."
        )


class ApiToken(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, blank=True, help_text="what the token is for")
    description = models.TextField(blank=True)
    prefix = models.CharField(max_length=PREFIX_HEX_DIGITS, editable=False)
    digest = models.CharField("SHA-256 digest", max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list, validators=[validate_scopes])
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="empty: never")
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.shown} ({self.user.username}{', ' + self.name if self.name else ''})"

    @property
    def shown(self) -> str:
        """What may be shown of the token: its prefix."""
        return f"{PREFIX}_{self.prefix}_…"

    @classmethod
    def issue(
        cls,
        user,
        *,
        name: str = "",
        description: str = "",
        scopes: list[str] | None = None,
        expires_at: datetime.datetime | None = None,
    ) -> tuple["ApiToken", str]:
        """A new token for a staff user: the row, and its text (shown once, never stored)."""
        refuse_unless_staff(user)
        token = cls(
            user=user,
            name=name,
            description=description,
            scopes=list(scopes) if scopes else list(ALL_SCOPES),
            expires_at=expires_at,
        )
        text = token.set_secret()
        token.full_clean()
        token.save()
        return token, text

    def set_secret(self) -> str:
        text, self.prefix = new_token_text()
        self.digest = digest(text)
        return text

    def clean(self) -> None:
        if self.expires_at is not None and self.created_at is None:
            if self.expires_at <= timezone.now():
                raise ValidationError({"expires_at": "The expiry must be in the future."})

    def refusal(self, now: datetime.datetime | None = None) -> str:
        """Why this token no longer authenticates ("" if it does)."""
        now = now or timezone.now()
        if self.revoked_at is not None:
            return f"The token {self.shown} was revoked on {self.revoked_at:%Y-%m-%d %H:%M}Z."
        if self.expires_at is not None and self.expires_at <= now:
            return f"The token {self.shown} expired on {self.expires_at:%Y-%m-%d %H:%M}Z."
        return ""

    def revoke(self, now: datetime.datetime | None = None) -> bool:
        """Revoke it; False if it already was."""
        if self.revoked_at is not None:
            return False
        self.revoked_at = now or timezone.now()
        self.save(update_fields=["revoked_at"])
        return True
