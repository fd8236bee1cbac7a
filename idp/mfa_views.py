"""The second factor's pages: the code after a right password, and enrolment at the portal.

After a right password, a user with a confirmed TOTP device is not signed in yet: the
session holds who passed the password (for PENDING_MAX_AGE) and the code page signs them in
with the MFA class. A wrong code counts as a failed login for that user name in django-axes,
so the lockout (and its 429 page) covers codes as it covers passwords; django-otp's own
throttle slows guessing on the device as well.
"""

import base64
import io
import time
from urllib.parse import parse_qs, urlsplit

import segno
from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth import get_user_model, login, user_login_failed
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.urls import Resolver404, resolve, reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from . import authn_context, cache, mfa, sso
from .conf import idp_settings
from .saml.errors import SamlError
from .signals import AUTHN_CLASS, AUTHN_CLASS_ATTRIBUTE, PICKED_LOGIN, password_class

PENDING = "fedmock_mfa_pending"  # session: {user, backend, at, next} between password and code


def _safe_next(request: HttpRequest, next_url: str) -> str:
    if next_url and url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return next_url
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def after_password(request: HttpRequest, user, next_url: str) -> HttpResponse | None:
    """The login page calls this after a right password: a user with a confirmed device is
    asked for a code before the login completes. None: sign in now, as before."""
    if mfa.confirmed_device(user) is None:
        return None
    request.session[PENDING] = {
        "user": user.pk,
        "backend": getattr(user, "backend", "idp.auth.CachedModelBackend"),
        "at": time.time(),
        "next": _safe_next(request, next_url),
    }
    return redirect("login-code")


def _pending_user(request: HttpRequest):
    pending = request.session.get(PENDING)
    if not isinstance(pending, dict):
        return None, None
    if time.time() - pending.get("at", 0) > mfa.PENDING_MAX_AGE:
        request.session.pop(PENDING, None)
        raise SamlError(
            "The sign-in waited too long for its code",
            f"The password was right, but no right code came within {mfa.PENDING_MAX_AGE // 60} "
            "minutes.",
            "Sign in again: user name and password, then the code.",
            status=400,
        )
    user = get_user_model()._default_manager.filter(pk=pending.get("user"), is_active=True)
    return user.first(), pending


def _locked_out(request: HttpRequest, username: str) -> bool:
    return not AxesProxyHandler.is_allowed(request, {"username": username})


@never_cache
@require_http_methods(["GET", "POST"])
def code(request: HttpRequest) -> HttpResponse:
    """The second step of a password sign-in: the TOTP code."""
    try:
        user, pending = _pending_user(request)
    except SamlError as error:
        return render(request, "error.html", {"error": error}, status=error.status)
    if user is None:
        return redirect("login")
    device = mfa.confirmed_device(user)
    if device is None:  # removed meanwhile: the password alone was asked for
        request.session.pop(PENDING, None)
        return redirect(f"{reverse('login')}?{urlencode({'next': pending['next']})}")
    username = user.get_username()
    context = {"username": username, "problem": None}
    if request.method == "POST":
        credentials = {"username": username}
        if _locked_out(request, username):
            # axes' middleware answers with the lockout page (idp.auth.lockout), 429.
            request.axes_locked_out = True
            request.axes_credentials = credentials
            return render(request, "registration/otp_code.html", context, status=429)
        check = mfa.check_code(device, request.POST.get("otp_token", "")[:64])
        if check.ok:
            request.session.pop(PENDING, None)
            setattr(request, AUTHN_CLASS_ATTRIBUTE, authn_context.MFA)
            login(request, user, backend=pending["backend"])
            return redirect(_safe_next(request, pending["next"]))
        user_login_failed.send(sender=__name__, credentials=credentials, request=request)
        context["problem"] = check
        return render(request, "registration/otp_code.html", context, status=400)
    return render(request, "registration/otp_code.html", context)


def step_up(request: HttpRequest, next_url: str, class_ref: str) -> HttpResponse:
    """Where a sign-on that needs more goes: enrolment when it needs MFA and the signed-in
    user has no device, otherwise the login page (which says why)."""
    user = request.user
    if (
        class_ref == authn_context.MFA
        and user.is_authenticated
        and not mfa.enrolled(user)
        and user.is_active
    ):
        return redirect(f"{reverse('mfa')}?{urlencode({'next': next_url})}")
    return redirect(f"{reverse('login')}?{urlencode({'next': next_url})}")


def _current_class(request: HttpRequest) -> str | None:
    if not request.user.is_authenticated:
        return None
    if request.session.get(PICKED_LOGIN):
        return authn_context.UNSPECIFIED
    return request.session.get(AUTHN_CLASS, authn_context.PASSWORD_PROTECTED_TRANSPORT)


def step_up_notice(request: HttpRequest, next_url: str) -> str:
    """Why the login page (or enrolment) asks again, naming the SP; "" for a plain login."""
    try:
        match = resolve(next_url.split("?", 1)[0]) if next_url.startswith("/") else None
    except Resolver404:
        return ""
    if match is None:
        return ""
    try:
        if match.url_name == "sso-resume":
            pending = sso.PendingRequest.from_token(match.kwargs["token"])
            sp = cache.service_provider(pending.sp_entity_id)
            if sp is None or (pending.requested_authn_context is None and not sp.require_mfa):
                return ""
            decision = sso.authn_decision(
                pending,
                _current_class(request),
                mfa.achievable(request.user, idp_settings.IDP_LOGIN_MODE == "picker"),
            )
            if isinstance(decision, authn_context.Satisfied):
                return ""
            return f"{sp} asks for a stronger sign-in: {decision.reason}"
        if match.url_name == "idp-initiated":
            entity_id = parse_qs(urlsplit(next_url).query).get("sp", [""])[0]
            sp = cache.service_provider(entity_id) if entity_id.isprintable() else None
            if sp is not None and sp.require_mfa:
                return f"{sp} asks for a stronger sign-in: it requires a password and a TOTP code."
    except SamlError:
        return ""
    return ""


def _qr_data_uri(uri: str) -> str:
    """The otpauth:// URI as an SVG QR code in a data: URI (the CSP allows data: images and
    no inline script; segno writes plain SVG, no script)."""
    svg = io.BytesIO()
    segno.make(uri, error="m").save(svg, kind="svg", scale=4, border=2)
    return "data:image/svg+xml;base64," + base64.b64encode(svg.getvalue()).decode()


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def enrol(request: HttpRequest) -> HttpResponse:
    """/accounts/mfa/: enrol a TOTP device (confirm with a code), or remove it (with a code)."""
    next_url = request.POST.get("next") or request.GET.get("next", "")
    next_url = next_url if next_url and _safe_next(request, next_url) == next_url else ""
    device = mfa.confirmed_device(request.user)
    context = {"next": next_url, "problem": None, "notice": step_up_notice(request, next_url)}
    if request.method == "POST":
        action = request.POST.get("action", "")
        target = device if device is not None else mfa.start_enrolment(request.user)
        if action not in ("confirm", "remove") or (action == "remove") != (device is not None):
            nothing = SamlError(
                "Nothing to do",
                "The form asked to confirm a device that is already confirmed, or to remove "
                "one that does not exist.",
                "Reload the two-step sign-in page and use its form.",
                status=400,
            )
            return render(request, "error.html", {"error": nothing}, status=400)
        check = mfa.check_code(target, request.POST.get("otp_token", "")[:64])
        if not check.ok:
            context["problem"] = check
            return _enrol_page(request, context, target, status=400)
        if action == "remove":
            mfa.remove(request.user)
            if request.session.get(AUTHN_CLASS) == authn_context.MFA:
                request.session[AUTHN_CLASS] = password_class(request.user)
            return redirect("mfa")
        target.confirmed = True
        target.save(update_fields=["confirmed"])
        if not request.session.get(PICKED_LOGIN):
            # A password earlier in this session and a code now: multi-factor.
            request.session[AUTHN_CLASS] = authn_context.MFA
        return redirect(next_url or "mfa")
    return _enrol_page(request, context, device or mfa.start_enrolment(request.user))


def _enrol_page(request, context: dict, device, status: int = 200) -> HttpResponse:
    context["device"] = device
    if not device.confirmed:
        uri = device.config_url
        context |= {"secret": mfa.base32_secret(device), "uri": uri, "qr": _qr_data_uri(uri)}
    return render(request, "idp/mfa.html", context, status=status)
