"""The ECP door (SAML profiles §4.2): POST {IDP_BASE_URL}/saml/ecp/ with a SOAP envelope
holding the SP's AuthnRequest, and HTTP Basic credentials. Thin: sso.receive_soap and
sso.respond do the work, as for the browser; this module checks the password and speaks SOAP.

Statuses: SOAP 1.1 answers every fault with HTTP 500, but a 500 here means a bug, so each
fault carries the status of what went wrong (400 malformed, 401 credentials, 403 refused,
405/413/415 the HTTP itself, 429 locked out). ECP clients read the Fault body either way:
awscli-login and pysaml2 treat any status but 200 as a failure, and Shibboleth's own IdP
answers a failed login with 401.
"""

import base64
import binascii
import secrets

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth import authenticate
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from . import clock, mfa, sso
from .saml import ecp
from .saml.errors import SamlError

REALM = "fedmock ECP"
# What ECP clients send: text/xml (awscli-login, Shibboleth's ecp.sh), application/soap+xml
# (pysaml2, though its envelope is SOAP 1.1), and PAOS's own type. A form post is refused
# before any parsing.
CONTENT_TYPES = frozenset(
    {"text/xml", "application/xml", "application/soap+xml", "application/vnd.paos+xml"}
)
USERNAME_MAX = 150  # User.username's max_length, the login form's bound
_SOAP_DOOR = "fedmock_soap_door"  # marks the request, so a lockout answers in SOAP too


def fault_response(error: SamlError) -> HttpResponse:
    response = HttpResponse(ecp.fault(error), status=error.status, content_type="text/xml")
    response["Cache-Control"] = "no-store"
    if error.status == 401:
        response["WWW-Authenticate"] = f'Basic realm="{REALM}", charset="UTF-8"'
    return response


def is_soap_door(request: HttpRequest) -> bool:
    return getattr(request, _SOAP_DOOR, False)


def _no_credentials(detail: str) -> SamlError:
    return SamlError(
        "Sign-in needed",
        detail,
        "Send the user name and password as HTTP Basic credentials (awscli-login: "
        "--username; curl: -u alice).",
        status=401,
    )


def _credentials(request: HttpRequest) -> tuple[str, str]:
    """User name and password from the Authorization header (RFC 7617, UTF-8)."""
    scheme, _, encoded = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise _no_credentials("The ECP endpoint takes HTTP Basic credentials, and none came.")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError) as error:
        raise _no_credentials(
            f"The Basic credentials are not base64 of UTF-8 text: {error}."
        ) from None
    username, colon, password = decoded.partition(":")
    if not colon or not username or not password:
        raise _no_credentials("The Basic credentials must be user-name:password, both non-empty.")
    # What the login form's fields refuse before authenticate() runs: a NUL (PostgreSQL
    # cannot hold one, in the user lookup or axes' failure log) and a user name longer
    # than any user's (axes keeps it in a varchar(255)). Not a failed sign-in: no count.
    if "\x00" in decoded or len(username) > USERNAME_MAX:
        raise _no_credentials(
            f"The Basic credentials hold a NUL character or a user name over {USERNAME_MAX} "
            "characters; no user has either."
        )
    return username, password


def _refusal(request: HttpRequest) -> SamlError | None:
    """What is wrong with the HTTP itself, before the envelope is read."""
    if request.method != "POST":
        return SamlError(
            "The ECP endpoint takes POST",
            f"It was called with {request.method}.",
            "POST the SOAP envelope with the AuthnRequest (Content-Type: text/xml).",
            status=405,
        )
    content_type = request.content_type.lower()
    if content_type not in CONTENT_TYPES:
        return SamlError(
            "The ECP endpoint takes a SOAP envelope",
            f"The request's Content-Type is {content_type or 'missing'!r}.",
            "Send the envelope with Content-Type: text/xml.",
            status=415,
        )
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > ecp.MAX_ENVELOPE:
        return ecp.SoapFault(
            "The SOAP envelope is too large",
            f"It is {length} bytes; the limit is {ecp.MAX_ENVELOPE}.",
            "An ECP AuthnRequest is a few kilobytes; check what the client sends.",
            status=413,
        )
    return None


def _locked_out() -> SamlError:
    """For the audit; the answer itself is idp.auth.lockout's (axes' middleware)."""
    return SamlError(
        "Too many failed sign-ins",
        f"django-axes has locked this user name out from this address after "
        f"{settings.AXES_FAILURE_LIMIT} failures.",
        "Wait, or lift the lock with `python manage.py axes_reset_username USERNAME`.",
        status=429,
    )


@csrf_exempt  # no cookie session is read or made here: each request brings its credentials
def single_sign_on(request: HttpRequest) -> HttpResponse:
    setattr(request, _SOAP_DOOR, True)
    refusal = _refusal(request)
    if refusal is not None:
        response = fault_response(refusal)
        if refusal.status == 405:
            response["Allow"] = "POST"
        return response
    try:
        # The request first: a malformed or unknown one costs no password hash and no
        # throttle count, and a 401 challenge leaves its ID unclaimed for the retry.
        pending = sso.receive_soap(request.body)
        username, password = _credentials(request)
        user = authenticate(request, username=username, password=password)
        if user is None:
            # A lockout (now or before) is answered by idp.auth.lockout, through axes'
            # middleware, in SOAP: this door marked the request.
            error = (
                _locked_out()
                if getattr(request, "axes_locked_out", False)
                else SamlError(
                    "Wrong user name or password",
                    f"The IdP could not sign in {username[:150]!r} with that password, or the "
                    "user is inactive.",
                    f"Check both. After {settings.AXES_FAILURE_LIMIT} failures from one address "
                    "the user name is locked out for a while, as at the login page.",
                    status=401,
                )
            )
            raise sso.refuse(pending, error, username[:150])
        # A success clears the failure count, as a form login does (AXES_RESET_ON_SUCCESS);
        # no session is made, so the login signal (which writes one) is not sent. Not for a
        # user with a TOTP device: the count holds their wrong codes too (mfa_views), and a
        # password alone must not clear it between guesses.
        if not mfa.enrolled(user):
            AxesProxyHandler.user_logged_in(None, request, user)
        auth = sso.Authentication(user, "_" + secrets.token_hex(16), clock.system_now().timestamp())
        form = sso.respond(pending, auth)
    except SamlError as error:
        return fault_response(error)
    xml = base64.b64decode(form.fields["SAMLResponse"])
    response = HttpResponse(ecp.envelope(xml, form.action), content_type="text/xml; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response
