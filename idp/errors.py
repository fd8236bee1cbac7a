"""Error pages for what Django itself refuses, in the same shape as SAML errors."""

from django.shortcuts import render

from .api.errors import json_response
from .saml.errors import SamlError


def _page(request, error: SamlError):
    if request.path.startswith("/api/"):
        return json_response(error)  # an API client reads JSON, never the HTML page
    return render(request, "error.html", {"error": error}, status=error.status)


def bad_request(request, exception=None):
    return _page(
        request, SamlError("Bad request", "The request could not be understood.", status=400)
    )


def forbidden(request, exception=None):
    return _page(request, SamlError("Forbidden", "You may not open this page.", status=403))


def not_found(request, exception=None):
    return _page(
        request,
        SamlError(
            "Page not found",
            f"Nothing is served at {request.path}.",
            "The API's endpoints are listed at /api/docs."
            if request.path.startswith("/api/")
            else "The portal is at /, the metadata at /saml/metadata/.",
            status=404,
        ),
    )


def server_error(request):
    return _page(
        request,
        SamlError(
            "Internal error",
            "The IdP failed while handling this request; the server log has the details.",
            status=500,
        ),
    )


def csrf_failure(request, reason=""):
    return _page(
        request,
        SamlError(
            "The form expired",
            "The page was open too long, or cookies are blocked, so the form's CSRF check failed.",
            "Reload the page and submit it again; allow cookies for this site.",
            status=403,
        ),
    )
