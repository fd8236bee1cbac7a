"""The portal's broker actions: POST a role, get a console sign-in or CLI credentials.

Both are POST forms with Django's CSRF token, for a signed-in user, and both assume only a
role the user's claim rules give (roles.py), whatever the form says. The credentials are
shown once, on a page no cache may keep, and stored nowhere by the broker.
"""

import shlex

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from idp import audit, authn_context
from idp.conf import idp_settings
from idp.models import AuditEvent
from idp.signals import AUTHN_CLASS, PICKED_LOGIN
from idp.sts import federation

from . import Refusal, roles, signin, sts


def sts_endpoint() -> tuple[str | None, bool]:
    """(the endpoint URL, or None for boto3's own resolution; whether it is fedmock's)."""
    value = idp_settings.IDP_BROKER_STS_ENDPOINT
    if value == "local":
        return f"{idp_settings.IDP_BASE_URL}/aws/", True
    if value == "aws":
        return None, False
    return value, False


def federation_url() -> str:
    value = idp_settings.IDP_BROKER_FEDERATION_URL
    if value == "local":
        return f"{idp_settings.IDP_BASE_URL}/aws/federation"
    if value == "aws":
        return signin.AWS_FEDERATION_URL
    return value


def _page(request: HttpRequest, error, username: str, role_arn: str) -> HttpResponse:
    _audit(username, role_arn, AuditEvent.Outcome.REFUSED, f"{error.title}: {error.detail}")
    response = render(request, "error.html", {"error": error}, status=error.status)
    response["Cache-Control"] = "no-store"
    return response


def _audit(username: str, role_arn: str, outcome: str, detail: str) -> None:
    # The role is the form's, whatever a user typed: escaped, since PostgreSQL refuses a
    # NUL in the audit's text, and one refused row would hold back the whole batch.
    audit.record(
        flow="broker",
        username=username[:150],
        sp_entity_id="broker:AssumeRole",
        request_id="",
        roles=[federation.escaped(role_arn[:2048])] if role_arn else [],
        outcome=outcome,
        detail=federation.escaped(detail),
    )


def _signed_in(view):
    """A POST from someone not signed in goes to the login, then back to the portal."""

    def wrapper(request: HttpRequest) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect(f"{reverse('login')}?{urlencode({'next': reverse('portal')})}")
        return view(request)

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


def _multi_factor(request: HttpRequest) -> bool:
    """Whether this session's sign-in was a password and a TOTP code (signals.py)."""
    session = request.session
    return not session.get(PICKED_LOGIN) and session.get(AUTHN_CLASS) == authn_context.MFA


def _assume(request: HttpRequest) -> tuple[sts.Brokered, str]:
    username = request.user.get_username()
    role_arn = request.POST.get("role", "")
    multi_factor = _multi_factor(request)
    if roles.allowed(role_arn, roles.brokerable(request.user, multi_factor)) is None:
        if not multi_factor and roles.allowed(role_arn, roles.brokerable(request.user, True)):
            raise sts.BrokerError(
                "This role needs a multi-factor sign-in",
                f"{role_arn[:300]!r} comes from a service provider that requires MFA, and "
                "this session was signed in without a TOTP code",
                "sign in again at /accounts/login/ with your password and your TOTP code "
                "(enrol a device at /accounts/mfa/ first), then pick the role again",
                status=403,
            )
        raise sts.BrokerError(
            "Not one of your roles",
            f"{username}'s claim rules give no AWS role {role_arn[:300]!r}",
            "pick a role on the portal; an operator grants roles with AWS groups or Role "
            "claim rules",
            status=403,
        )
    endpoint, local = sts_endpoint()
    brokered = sts.assume_role(
        role_arn, roles.session_name(username), endpoint=endpoint, local=local
    )
    _audit(
        username,
        role_arn,
        AuditEvent.Outcome.SENT,
        f"AssumeRole as {brokered.assumed_role_arn} "
        f"(key {brokered.credentials.access_key_id}, expiring "
        f"{brokered.expiration:%Y-%m-%dT%H:%M:%SZ}; SourceIdentity "
        f"{brokered.source_identity or 'not allowed by the trust policy'})",
    )
    return brokered, role_arn


@require_POST
@_signed_in
def console(request: HttpRequest) -> HttpResponse:
    """AssumeRole, getSigninToken, then the browser goes to the login URL."""
    try:
        brokered, _ = _assume(request)
        url = federation_url()
        token = signin.get_signin_token(url, brokered.credentials)
    except Refusal as error:
        return _page(request, error, request.user.get_username(), request.POST.get("role", ""))
    response = redirect(
        signin.login_url(
            url,
            token,
            issuer=f"{idp_settings.IDP_BASE_URL}/",
            destination=idp_settings.IDP_BROKER_DESTINATION,
        )
    )
    response.status_code = 303  # after a POST, the login is a GET
    response["Cache-Control"] = "no-store"
    return response


def profile_name(role_arn: str) -> str:
    account, name = role_arn.split(":")[4], role_arn.rsplit("/", 1)[-1]
    return f"{name}-{account}"


@require_POST
@_signed_in
def credentials(request: HttpRequest) -> HttpResponse:
    """AssumeRole, and the credentials on a page shown once and kept by no cache."""
    try:
        brokered, role_arn = _assume(request)
    except sts.BrokerError as error:
        return _page(request, error, request.user.get_username(), request.POST.get("role", ""))
    keys = brokered.credentials
    expiration = f"{brokered.expiration:%Y-%m-%dT%H:%M:%SZ}"
    exports = "\n".join(
        f"export {name}={shlex.quote(value)}"
        for name, value in (
            ("AWS_ACCESS_KEY_ID", keys.access_key_id),
            ("AWS_SECRET_ACCESS_KEY", keys.secret_access_key),
            ("AWS_SESSION_TOKEN", keys.session_token),
            ("AWS_CREDENTIAL_EXPIRATION", expiration),
        )
    )
    profile = profile_name(role_arn)
    credentials_file = "\n".join(
        (
            f"[{profile}]",
            f"aws_access_key_id = {keys.access_key_id}",
            f"aws_secret_access_key = {keys.secret_access_key}",
            f"aws_session_token = {keys.session_token}",
        )
    )
    endpoint, local = sts_endpoint()
    response = render(
        request,
        "broker/credentials.html",
        {
            "role_arn": role_arn,
            "session_arn": brokered.assumed_role_arn,
            "source_identity": brokered.source_identity,
            "expiration": expiration,
            "exports": exports,
            "credentials_file": credentials_file,
            "profile": profile,
            "local_endpoint": endpoint if local else "",
        },
    )
    # Shown once: no browser or proxy cache keeps the page, and Back does not show it again.
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response
