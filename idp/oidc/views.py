"""The issuer's doors: discovery and JWKS (ours), and django-oauth-toolkit's authorize,
token, userinfo and revoke views with fedmock's error pages and audit of refusals.

The protocol itself is DOT's and oauthlib's; the decisions are idp/oidc/validator.py's.
"""

import base64
import binascii
import json
from urllib.parse import unquote_plus

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET
from oauth2_provider import views as dot
from oauth2_provider.exceptions import OAuthToolkitError
from oauth2_provider.models import get_application_model
from oauth2_provider.views.mixins import OAuthLibMixin

from idp import audit
from idp.api import errors
from idp.saml.errors import SamlError

from . import jwks, tokens, validator

# Verifiers cache what they fetch; five minutes bounds how long a staged key may take to
# reach them (stage, wait, activate), and is short enough for a mock.
MAX_AGE = 300
STANDARD_CLAIMS = (
    "name",
    "given_name",
    "family_name",
    "preferred_username",
    "email",
    "email_verified",
    "groups",
    "auth_time",
    "nonce",
)


def _cached(payload: dict) -> JsonResponse:
    response = JsonResponse(payload)
    response["Cache-Control"] = f"public, max-age={MAX_AGE}"
    return response


def _failure(error: SamlError) -> JsonResponse:
    response = JsonResponse(errors.body(error), status=error.status)  # the API's one shape
    response["Cache-Control"] = "no-store"
    return response


def endpoint(issuer: str, name: str) -> str:
    """An endpoint's URL under the issuer: the issuer is {IDP_BASE_URL}/oidc, and the
    route's path below /oidc/ is what DOT's own reverse() would give."""
    mount = reverse("oidc-jwks").removesuffix("jwks")  # /oidc/, or below a script prefix
    return issuer + "/" + reverse(f"oauth2_provider:{name}").removeprefix(mount)


@require_GET
def configuration(request: HttpRequest) -> JsonResponse:
    issuer = jwks.issuer()
    return _cached(
        {
            "issuer": issuer,
            "authorization_endpoint": endpoint(issuer, "authorize"),
            "token_endpoint": endpoint(issuer, "token"),
            "userinfo_endpoint": endpoint(issuer, "user-info"),
            "revocation_endpoint": endpoint(issuer, "revoke-token"),
            "jwks_uri": f"{issuer}/jwks",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
            "code_challenge_methods_supported": [validator.PKCE_METHOD],
            "scopes_supported": list(validator.oauth2_settings.SCOPES),
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "revocation_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
            ],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [jwks.ALGORITHM],
            "claims_supported": sorted({*tokens.claims_supported(), *STANDARD_CLAIMS}),
        }
    )


@require_GET
def key_set(request: HttpRequest) -> JsonResponse:
    try:
        return _cached(jwks.public_set())
    except SamlError as error:  # a key file missing: say which, never a 500
        return _failure(error)


# --- the authorization endpoint ---

TITLES = {
    "invalid_request": "The sign-in request is malformed",
    "invalid_client": "Unknown client",
    "unauthorized_client": "The client may not do this",
    "invalid_scope": "A scope is not allowed",
    "unsupported_response_type": "Unsupported response type",
}
WHO_FIXES = "The application that sent you here made this request; its developer can fix it."


def _page(request: HttpRequest, title: str, detail: str, hint: str, status: int) -> HttpResponse:
    error = SamlError(title, detail, hint, status=status)
    response = render(request, "error.html", {"error": error}, status=status)
    response["Cache-Control"] = "no-store"
    return response


class Authorize(dot.AuthorizationView):
    """DOT's authorize view: login through LOGIN_URL, our consent page, our error page."""

    template_name = "oauth2_provider/authorize.html"

    def dispatch(self, request, *args, **kwargs):
        # For prompt=none: the validator asks whether anyone is signed in (validator.py).
        token = validator.session_user.set(request.user)
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            validator.session_user.reset(token)

    def handle_no_permission(self):
        # Check the request before the login page: a wrong client_id or redirect_uri is the
        # client's bug, and nobody should sign in only to learn of it.
        try:
            self.validate_authorization_request(self.request)
        except OAuthToolkitError as error:
            return self.error_response(error, application=None)
        return super().handle_no_permission()

    def error_response(self, error, application, **kwargs):
        redirect, answer = OAuthLibMixin.error_response(self, error, **kwargs)
        if redirect:  # RFC 6749 4.1.2.1: once the redirect URI is trusted, errors go there
            return self.redirect(answer["url"], application)
        oauth_error = answer["error"]
        _refused(
            self.request,
            self.request.GET.get("client_id", ""),
            oauth_error.error,
            oauth_error.description,
        )
        return _page(
            self.request,
            TITLES.get(oauth_error.error, "The sign-in request was refused"),
            f"{oauth_error.description} ({oauth_error.error})",
            WHO_FIXES,
            oauth_error.status_code if 400 <= oauth_error.status_code < 500 else 400,
        )

    def form_valid(self, form):
        client_id = form.cleaned_data["client_id"]
        if not get_application_model().objects.filter(client_id=client_id).exists():
            return _page(
                self.request,
                "Unknown client",
                f"No OIDC client has the client_id {validator.shown(client_id)}.",
                "Start the sign-in again from the application.",
                400,
            )
        return super().form_valid(form)

    def form_invalid(self, form):
        return _page(
            self.request,
            "The consent form was incomplete",
            "The form lacked fields the sign-in needs: "
            f"{', '.join(sorted(form.errors)) or 'unknown'}.",
            "Start the sign-in again from the application.",
            400,
        )


# --- the token endpoint: RFC 6749 JSON errors, each with an error_description ---

DESCRIPTIONS = {
    "unsupported_grant_type": "Send grant_type=authorization_code (with PKCE) or "
    "client_credentials.",
    "invalid_request": "The request lacks a parameter or repeats one; see the OAuth 2.0 spec.",
    "invalid_client": "Send client_id and client_secret (HTTP Basic or the form body).",
    "invalid_grant": "The code, refresh token or verifier is wrong; start the sign-in again.",
    "invalid_scope": "A refresh may ask for the scopes the user allowed, or fewer; omit scope "
    "to keep them all.",
}


def _client_id(request: HttpRequest) -> str:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme == "Basic":
        try:
            return unquote_plus(base64.b64decode(credentials).decode().split(":", 1)[0])
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return "(undecodable Basic credentials)"
    return request.POST.get("client_id", "")


def _clean(text: str, limit: int) -> str:
    return text.replace("\x00", "\\x00")[:limit]  # PostgreSQL refuses NUL in text


def _refused(request: HttpRequest, client_id: str, error: str, description: str) -> None:
    audit.record(
        flow=validator.FLOW,
        username=request.user.get_username() if request.user.is_authenticated else "",
        sp_entity_id=_clean(client_id, 1024),
        outcome="refused",
        detail=_clean(f"{request.path}: {error}: {description}", 2000),
    )


class Token(dot.TokenView):
    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        if response.status_code < 400:
            return response
        try:
            body = json.loads(response.content)
        except ValueError:
            return response
        if not isinstance(body, dict):
            return response
        if not body.get("error_description"):
            body["error_description"] = DESCRIPTIONS.get(body.get("error"), WHO_FIXES)
            response.content = json.dumps(body)
        # An error DOT catches itself (one raised while a token is made) comes bare.
        response["Content-Type"] = "application/json"
        response["Cache-Control"] = "no-store"
        _refused(
            request, _client_id(request), str(body.get("error")), str(body.get("error_description"))
        )
        return response
