"""Thin HTTP views: each hands plain fields to sso.py and renders what comes back."""

import functools
from html import escape

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.http import content_disposition_header, urlencode
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from . import authn_context, identity, mfa, mfa_views, participants, portal, sso
from .conf import idp_settings
from .saml.bindings import PostForm
from .saml.errors import SamlError
from .signals import AUTHN_CLASS, AUTHN_INSTANT, PICKED_LOGIN, SESSION_INDEX


def shows_saml_errors(view):
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except SamlError as error:
            return render(request, "error.html", {"error": error}, status=error.status)

    return wrapper


# The auto-submit page, formatted rather than rendered from a template: it is on every
# sign-on, it needs none of the template engine's context (user, messages, nonce), and the
# engine cost a fifth of the view. Every value is HTML-escaped, quotes included, as
# Django's autoescape does. The script is a file so that the CSP allows no inline script.
# ASCII only (the ellipsis as a character reference): with one non-ASCII character Python
# holds the 12 KB page two bytes a character and encodes it slowly (10 µs).
_POST_FORM_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8"><title>Signing you in&#8230;</title>
  <script src="{script}" defer></script>
</head>
<body>
  <form method="post" action="{action}">
    {inputs}
    <noscript><p>JavaScript is off: press the button to continue.</p></noscript>
    <button type="submit">Continue to {action}</button>
  </form>
</body>
</html>
"""
_POST_FORM_INPUT = '<input type="hidden" name="{name}" value="{value}">\n    '


_HTML_SPECIAL = "&<>\"'"


def _escaped(value: str) -> str:
    # A 12 KB SAMLResponse is base64, with nothing to escape: five `in` tests cost under
    # a microsecond, where html.escape's five replacements copy it five times (40 µs).
    return escape(value) if any(special in value for special in _HTML_SPECIAL) else value


@functools.lru_cache(maxsize=8)
def _script_url(static_url: str) -> str:
    """The auto-submit script's URL (the storage's lookup costs 20 µs), per STATIC_URL."""
    return escape(static("idp/autosubmit.js"))


def post_form_page(form: PostForm) -> str:
    inputs = "".join(
        _POST_FORM_INPUT.format(name=_escaped(name), value=_escaped(value))
        for name, value in form.fields.items()
    )
    return _POST_FORM_PAGE.format(
        script=_script_url(settings.STATIC_URL), action=_escaped(form.action), inputs=inputs
    )


def _post_form(request: HttpRequest, form: PostForm) -> HttpResponse:
    # The SPs this sign-on reached go into the cookie too: the SLO reads them even before
    # another worker's batched record is written (participants.py).
    participants.keep_in_session(request.session)
    response = HttpResponse(post_form_page(form))
    response["Cache-Control"] = "no-store"
    return response


def _authentication(request: HttpRequest) -> sso.Authentication | None:
    if not request.user.is_authenticated:
        return None
    # Every signed-in session carries both (signals.py); sessions.py ends any that does not.
    session = request.session
    # A picked session proves nothing (picker.py); one from before classes were kept, a password.
    authn_class = authn_context.UNSPECIFIED if session.get(PICKED_LOGIN) else None
    return sso.Authentication(
        request.user,
        session[SESSION_INDEX],
        session[AUTHN_INSTANT],
        authn_class or session.get(AUTHN_CLASS, authn_context.PASSWORD_PROTECTED_TRANSPORT),
    )


def _answer(request: HttpRequest, pending: sso.PendingRequest) -> HttpResponse:
    """Respond if the IdP session suffices (ForceAuthn, RequestedAuthnContext, the SP's
    require_mfa); otherwise a sign-in that can meet it (login or TOTP enrolment, which come
    back here), NoPassive if the SP forbade asking, or NoAuthnContext if nothing can."""
    auth = _authentication(request)
    fresh = auth if auth is not None and auth.satisfies(pending) else None
    performed = fresh.authn_class if fresh is not None else None
    decision = sso.authn_decision(pending, performed)
    if isinstance(decision, authn_context.Satisfied):
        return _post_form(request, sso.respond(pending, fresh))
    signed_in = request.user if fresh is not None else None
    picker = idp_settings.IDP_LOGIN_MODE == "picker"
    decision = sso.authn_decision(pending, performed, mfa.achievable(signed_in, picker))
    if isinstance(decision, authn_context.Unmeetable):
        return _post_form(request, sso.refuse_authn_context(pending, decision.reason))
    if pending.is_passive:
        return _post_form(request, sso.refuse_passive(pending))
    next_url = reverse("sso-resume", args=[pending.to_token()])
    if fresh is None:
        return redirect(f"{reverse('login')}?{urlencode({'next': next_url})}")
    return mfa_views.step_up(request, next_url, decision.class_ref)


@csrf_exempt
@require_http_methods(["GET", "POST"])
@shows_saml_errors
def single_sign_on(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _answer(request, sso.receive_redirect(request.META.get("QUERY_STRING", "")))
    pending = sso.receive_post(request.POST.dict())
    # A cross-site POST carries no SameSite=Lax session cookie; the top-level GET
    # this redirect causes does, so the IdP session is seen there.
    response = HttpResponseRedirect(reverse("sso-resume", args=[pending.to_token()]))
    response.status_code = 303
    return response


@require_GET
@shows_saml_errors
def resume_sign_on(request: HttpRequest, token: str) -> HttpResponse:
    return _answer(request, sso.PendingRequest.from_token(token))


@require_GET
@login_required
@shows_saml_errors
def idp_initiated(request: HttpRequest) -> HttpResponse:
    entity_id = request.GET.get("sp", "")
    if not entity_id:
        raise SamlError(
            "Which service provider?",
            "The sp parameter is missing.",
            "Use /saml/init/?sp=<entity ID>, or pick a tile on the portal.",
        )
    try:
        form = sso.idp_initiated(
            _authentication(request),
            entity_id,
            role_arn=request.GET.get("role", ""),
            relay_state=request.GET.get("RelayState", ""),
        )
    except sso.MfaRequired:
        # The SP requires MFA: sign in with a code (or enrol first), then back here.
        return mfa_views.step_up(request, request.get_full_path(), authn_context.MFA)
    return _post_form(request, form)


@require_GET
@login_required
def portal_page(request: HttpRequest) -> HttpResponse:
    return render(request, "idp/portal.html", {"groups": portal.tiles(request.user)})


METADATA_FILENAME = "fedmock-metadata.xml"


@require_http_methods(["GET", "HEAD"])
@shows_saml_errors
def metadata(request: HttpRequest) -> HttpResponse:
    """The IdP metadata; ?signed=1 adds an enveloped signature by the active key.

    ?download=1 names the file, so a browser does not save it as "download". HEAD
    (monitors, curl -I) answers as GET would, without the body.
    """
    signed = request.GET.get("signed", "") in ("1", "true")
    xml = identity.metadata_xml(signed=signed)
    response = HttpResponse(
        b"" if request.method == "HEAD" else xml, content_type="application/samlmetadata+xml"
    )
    response["Content-Length"] = str(len(xml))
    if request.GET.get("download", "") in ("1", "true"):
        response["Content-Disposition"] = content_disposition_header(True, METADATA_FILENAME)
    return response
