"""Thin HTTP views: each hands plain fields to sso.py and renders what comes back."""

import functools
import secrets

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from . import identity, portal, sso
from .saml import constants as c
from .saml.bindings import PostForm
from .saml.errors import SamlError
from .signals import AUTHN_INSTANT, SESSION_INDEX

PENDING = "fedmock_pending_requests"
MAX_PENDING = 10


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
    session = request.session
    if SESSION_INDEX not in session:  # signed in before this IdP tracked sessions
        session[SESSION_INDEX] = "_" + secrets.token_hex(16)
        session[AUTHN_INSTANT] = 0.0
    return sso.Authentication(request.user, session[SESSION_INDEX], session[AUTHN_INSTANT])


def _login_redirect(request: HttpRequest, next_url: str) -> HttpResponse:
    return redirect(f"{reverse('login')}?{urlencode({'next': next_url})}")


def _answer(request: HttpRequest, pending: sso.PendingRequest) -> HttpResponse:
    auth = _authentication(request)
    if auth is not None and auth.satisfies(pending):
        return _post_form(request, sso.respond(pending, auth))
    if pending.is_passive:
        return _post_form(request, sso.refuse_passive(pending))
    stash = request.session.get(PENDING, {})
    key = secrets.token_urlsafe(12)
    stash[key] = pending.to_session()
    request.session[PENDING] = dict(list(stash.items())[-MAX_PENDING:])
    return _login_redirect(request, reverse("sso-resume", args=[key]))


@csrf_exempt
@require_http_methods(["GET", "POST"])
@shows_saml_errors
def single_sign_on(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        binding, fields = c.BINDING_REDIRECT, request.GET
    else:
        binding, fields = c.BINDING_POST, request.POST
    pending = sso.receive(binding, fields.dict(), request.META.get("QUERY_STRING", ""))
    return _answer(request, pending)


@require_GET
@shows_saml_errors
def resume_sign_on(request: HttpRequest, key: str) -> HttpResponse:
    data = request.session.get(PENDING, {}).get(key)
    if data is None:
        raise SamlError(
            "This sign-on request is no longer pending",
            "It was already answered, or the IdP session that held it ended.",
            "Go back to the service provider and start the sign-on again.",
        )
    pending = sso.PendingRequest.from_session(data)
    auth = _authentication(request)
    if auth is None or not auth.satisfies(pending):
        return _login_redirect(request, request.get_full_path())
    stash = request.session[PENDING]
    del stash[key]
    request.session.modified = True
    return _post_form(request, sso.respond(pending, auth))


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


@require_GET
@shows_saml_errors
def metadata(request: HttpRequest) -> HttpResponse:
    return HttpResponse(identity.metadata_xml(), content_type="application/samlmetadata+xml")
