"""Thin HTTP views: each hands plain fields to sso.py and renders what comes back."""

import functools

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header, urlencode
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from . import identity, portal, sso
from .saml.bindings import PostForm
from .saml.errors import SamlError
from .signals import AUTHN_INSTANT, SESSION_INDEX


def shows_saml_errors(view):
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except SamlError as error:
            return render(request, "error.html", {"error": error}, status=error.status)

    return wrapper


def _post_form(request: HttpRequest, form: PostForm) -> HttpResponse:
    response = render(request, "saml/post_form.html", {"form": form})
    response["Cache-Control"] = "no-store"
    return response


def _authentication(request: HttpRequest) -> sso.Authentication | None:
    if not request.user.is_authenticated:
        return None
    # Every signed-in session carries both (signals.py); sessions.py ends any that does not.
    session = request.session
    return sso.Authentication(request.user, session[SESSION_INDEX], session[AUTHN_INSTANT])


def _answer(request: HttpRequest, pending: sso.PendingRequest) -> HttpResponse:
    """Respond if the IdP session suffices; otherwise NoPassive, or a login that comes back."""
    auth = _authentication(request)
    if auth is not None and auth.satisfies(pending):
        return _post_form(request, sso.respond(pending, auth))
    if pending.is_passive:
        return _post_form(request, sso.refuse_passive(pending))
    next_url = reverse("sso-resume", args=[pending.to_token()])
    return redirect(f"{reverse('login')}?{urlencode({'next': next_url})}")


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
    form = sso.idp_initiated(
        _authentication(request),
        entity_id,
        role_arn=request.GET.get("role", ""),
        relay_state=request.GET.get("RelayState", ""),
    )
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
