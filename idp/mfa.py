"""The TOTP second factor, on django-otp's TOTPDevice (RFC 6238: 30 s steps, 6 digits, one
step of tolerance either way, throttling after failures, and `last_t`, so that a code is
accepted once).

A user has at most one device. A confirmed device means a code is asked after every
password (as Keycloak does once OTP is configured); an unconfirmed one is an enrolment in
progress at the portal. Fixtures and the API provision a confirmed device with a known
base32 secret, so tests compute codes (django_otp.oath.TOTP, pyotp, oathtool).
"""

import base64
import binascii
import time
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from . import authn_context
from .signals import password_class

DEVICE_NAME = "fedmock TOTP"
MIN_SECRET_BYTES = 10  # 80 bits, RFC 4226's minimum
MAX_SECRET_BYTES = 64
PENDING_MAX_AGE = 300  # seconds between a right password and its code


def secret_from_base32(text: str) -> bytes:
    """A base32 secret as authenticator apps show it (spaces and case do not matter, padding
    optional), or a ValidationError that says what is wrong. The API and fixtures use it."""
    cleaned = "".join(text.split()).upper().rstrip("=")
    if not cleaned:
        raise ValidationError(
            "The TOTP secret is empty: give a base32 secret such as JBSWY3DPEHPK3PXP."
        )
    try:
        secret = base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    except (binascii.Error, ValueError) as error:
        raise ValidationError(
            "The TOTP secret is not base32: use the letters A-Z and the digits 2-7 only "
            "(as an authenticator app shows it), for example JBSWY3DPEHPK3PXP."
        ) from error
    if not MIN_SECRET_BYTES <= len(secret) <= MAX_SECRET_BYTES:
        raise ValidationError(
            f"The TOTP secret is {len(secret)} bytes; use {MIN_SECRET_BYTES} to "
            f"{MAX_SECRET_BYTES} (16 to 102 base32 characters), for example 32 characters."
        )
    return secret


def base32_secret(device: TOTPDevice) -> str:
    return base64.b32encode(device.bin_key).decode().rstrip("=")


def confirmed_device(user) -> TOTPDevice | None:
    if user is None or not user.is_authenticated:
        return None
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def enrolled(user) -> bool:
    return confirmed_device(user) is not None


@transaction.atomic
def provision(user, secret: bytes) -> TOTPDevice:
    """Replace the user's device with a confirmed one holding this secret."""
    TOTPDevice.objects.filter(user=user).delete()
    return TOTPDevice.objects.create(user=user, name=DEVICE_NAME, key=secret.hex(), confirmed=True)


def remove(user) -> int:
    return TOTPDevice.objects.filter(user=user).delete()[0]


@transaction.atomic
def start_enrolment(user) -> TOTPDevice:
    """The user's enrolment in progress (an unconfirmed device), or a new one with a random
    secret. A confirmed device is never replaced this way: removing it takes a code."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)
    return device


@dataclass(frozen=True)
class Check:
    ok: bool
    problem: str = ""  # what was wrong, in words
    hint: str = ""


@transaction.atomic
def check_code(device: TOTPDevice, code: str) -> Check:
    """django-otp verifies (drift, one-time use) and throttles; this says what went wrong.
    The device is read again under a row lock: django-otp saves last_t without one, so two
    requests holding the same code (two workers, a double submit) could both pass."""
    device = TOTPDevice.objects.select_for_update().filter(pk=device.pk).first()
    if device is None:
        return Check(
            False,
            "This TOTP device was removed meanwhile.",
            "Start again: sign in, or reload the two-step sign-in page.",
        )
    allowed, data = device.verify_is_allowed()
    if not allowed:
        until = data.get("locked_until") if data else None
        wait = max(1, int(until.timestamp() - time.time())) if until else 1
        return Check(
            False,
            f"Too many wrong codes in a row for this device: codes are refused for {wait} s more.",
            "Wait, then type the code your authenticator app shows now.",
        )
    cleaned = "".join(code.split())
    if not (cleaned.isdigit() and len(cleaned) == device.digits) and cleaned:
        device.throttle_increment()
        return Check(
            False,
            f"A code is {device.digits} digits; that was not.",
            "Type the code your authenticator app shows for fedmock.",
        )
    if cleaned and device.verify_token(cleaned):
        return Check(True)
    return Check(
        False,
        "That code is wrong, or it was already used (each code works once).",
        "Type the code your authenticator app shows now; if it keeps failing, check the "
        "phone's clock (codes change every 30 s).",
    )


def login_class(user) -> str:
    """What a password sign-in of this user proves: MFA once a device is confirmed."""
    return authn_context.MFA if enrolled(user) else password_class(user)


def achievable(user, picker_on: bool) -> frozenset[str]:
    """The classes a new sign-in could give: for nobody yet, whatever any user could; for a
    signed-in user, their password sign-in, and MFA (after enrolment if need be)."""
    if user is None or not user.is_authenticated:
        every = {
            authn_context.PASSWORD_PROTECTED_TRANSPORT,
            authn_context.KERBEROS,
            authn_context.X509,
            authn_context.MFA,
        }
        return frozenset(every | ({authn_context.UNSPECIFIED} if picker_on else set()))
    return frozenset({login_class(user), authn_context.MFA})
