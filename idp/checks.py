"""System checks run at start-up (`manage.py check`, runserver, migrate): the signing keys."""

import datetime

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.db import DatabaseError
from django.utils import timezone

from . import keys
from .models import SigningKey


@register("fedmock")
def check_signing_key(app_configs=None, **kwargs):
    try:
        active = list(SigningKey.objects.filter(state=SigningKey.State.ACTIVE, use="saml"))
    except DatabaseError:  # not migrated yet: migrate itself runs the checks
        return []
    if not active:
        return [
            Warning(
                "No active signing key: sign-ons answer 503.",
                hint="Run `python manage.py ensure_signing_key`.",
                id="fedmock.W001",
            )
        ]
    signer = max(active, key=lambda key: key.state_changed_at)
    left = signer.not_valid_after - timezone.now()
    if left <= datetime.timedelta(0):
        return [
            Error(
                f"The signing key {signer.fingerprint[:16]} expired on "
                f"{signer.not_valid_after:%Y-%m-%d}.",
                hint="Run `python manage.py rotate_key stage`, update IAM, then "
                "`rotate_key activate` and `rotate_key retire`.",
                id="fedmock.E001",
            )
        ]
    if left <= datetime.timedelta(days=settings.IDP_KEY_EXPIRY_WARNING_DAYS):
        return [
            Warning(
                f"The signing key {signer.fingerprint[:16]} expires in {left.days} days "
                f"({signer.not_valid_after:%Y-%m-%d}).",
                hint="Rotate it now: `python manage.py rotate_key stage`, update IAM, then "
                "activate and retire.",
                id="fedmock.W002",
            )
        ]
    return []


@register("fedmock")
def check_key_material(app_configs=None, **kwargs):
    """Every published key decrypts with this host's IDP_KEY_ENCRYPTION_KEY and parses."""
    try:
        rows = list(
            SigningKey.objects.exclude(state=SigningKey.State.RETIRED).values_list(
                "fingerprint", "private_key_encrypted", "certificate_pem"
            )
        )
    except DatabaseError:  # not migrated yet
        return []
    problems = []
    for row in rows:
        if (error := keys.material_problem(*row)) is not None:
            # A Warning, not an Error: an Error would stop every command, the repairs that
            # the hint names (`rotate_key retire`) included, and bootstrap's one-line refusal.
            problems.append(Warning(str(error), hint=error.hint, id="fedmock.W003"))
    return problems
