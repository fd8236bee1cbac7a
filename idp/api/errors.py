"""Every refusal of the API as one JSON shape: the error page's words, never HTML or a 500.

    {"title": ..., "message": ..., "hint": ..., "status": 4xx, "fields"?: {...}, "findings"?: [...]}

`message` is the error page's detail; `fields` names each invalid field (validation errors);
`findings` are the AWS checker's (a response the SP's policy blocked).
"""

import math

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from idp.saml.errors import SamlError


def body(error: SamlError, **extra) -> dict:
    return {
        "title": error.title,
        "message": error.detail,
        "hint": error.hint,
        "status": error.status,
        **extra,
    }


def finding_json(finding) -> dict:
    return {"rule": finding.rule, "severity": finding.severity, "message": finding.message}


def respond(error: SamlError, **extra) -> Response:
    return Response(body(error, **extra), status=error.status)


def json_response(error: SamlError) -> JsonResponse:
    """The same shape outside DRF: Django's own 404 and 500 under /api/."""
    return JsonResponse(body(error), status=error.status)


# One enum in the OpenAPI document (settings' ENUM_NAME_OVERRIDES), however many fields use it.
SEVERITIES = ["error", "warning"]


class FindingSerializer(serializers.Serializer):
    rule = serializers.CharField(help_text="the AWS rule id, R1 to R21 (docs/aws-saml-rules.md)")
    severity = serializers.ChoiceField(SEVERITIES)
    message = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    """Every refusal: the error page's words, as JSON."""

    title = serializers.CharField()
    message = serializers.CharField()
    hint = serializers.CharField(allow_blank=True)
    status = serializers.IntegerField()
    fields = serializers.DictField(required=False, help_text="each invalid field's problem")
    findings = FindingSerializer(many=True, required=False)


_ERROR_MEANINGS = {
    400: "the body is malformed or a field is invalid (`fields` says which)",
    401: "no token, or an unknown, revoked or expired one",
    403: "the token's user is not staff, lacks the model permission, or the token the scope",
    404: "no such object",
    409: "the step cannot happen now (`Retry-After` says when to retry, if it is a wait)",
    413: "the body is too large",
}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """The refusals an operation can answer, for extend_schema(responses=...)."""
    return {
        code: OpenApiResponse(ErrorSerializer, description=_ERROR_MEANINGS.get(code, "refused"))
        for code in (401, 403, *codes)
    }


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."


class Conflict(exceptions.APIException):
    """A step that cannot happen now; `wait` (seconds) becomes Retry-After."""

    status_code = status.HTTP_409_CONFLICT

    def __init__(self, detail: str, wait: float | None = None):
        super().__init__(detail)
        self.wait = wait


_DRF_TITLES = {
    status.HTTP_400_BAD_REQUEST: (
        "Malformed request",
        "Send a JSON object with `Content-Type: application/json`; /api/docs shows each body.",
    ),
    status.HTTP_401_UNAUTHORIZED: (
        "Authentication required",
        "Send `Authorization: Bearer <token>`; `python manage.py create_api_token USERNAME` "
        "prints one for a staff user, or issue one in the admin under API tokens.",
    ),
    status.HTTP_403_FORBIDDEN: (
        "Permission denied",
        "Ask an operator to grant the token's user the model permission in the admin "
        "(Authentication and Authorization → Users), or use a token with that scope.",
    ),
    status.HTTP_404_NOT_FOUND: ("Not found", "Check the name in the URL; list the collection."),
    status.HTTP_405_METHOD_NOT_ALLOWED: ("Method not allowed", "See /api/docs for the methods."),
    status.HTTP_409_CONFLICT: ("Not now", "Do what the message says, then try again."),
    status.HTTP_413_REQUEST_ENTITY_TOO_LARGE: (
        "Request too large",
        "Send a smaller body; see /api/docs for each field's limit.",
    ),
    status.HTTP_406_NOT_ACCEPTABLE: ("Not acceptable", "Accept application/json."),
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: (
        "Unsupported media type",
        "Send a JSON body with `Content-Type: application/json`.",
    ),
    status.HTTP_429_TOO_MANY_REQUESTS: ("Too many requests", "Wait and try again."),
}


def _validation_fields(detail) -> dict:
    if isinstance(detail, dict):
        return {name: _validation_fields(value) for name, value in detail.items()}
    if isinstance(detail, list):
        flat = [_validation_fields(item) for item in detail]
        return (
            " ".join(item for item in flat if isinstance(item, str))
            if all(isinstance(item, str) for item in flat)
            else flat
        )
    return str(detail)


def _message(fields) -> str:
    if isinstance(fields, str):
        return fields
    if isinstance(fields, dict):
        return "; ".join(f"{name}: {_message(value)}" for name, value in fields.items())
    return "; ".join(_message(item) for item in fields)


def exception_handler(exc, context) -> Response | None:
    """DRF's hook: SamlError, Django's and DRF's exceptions, all in the one shape."""
    if isinstance(exc, SamlError):
        extra = {}
        if findings := getattr(exc, "findings", None):
            extra["findings"] = [finding_json(f) for f in findings]
        return respond(exc, **extra)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "No such object.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        # DRF reads JSON through request.body, which Django bounds before parsing.
        exc = RequestTooLarge(
            f"The body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes, the limit."
        )
    if not isinstance(exc, exceptions.APIException):
        return None  # a real bug: Django's 500 handler logs it and answers in JSON
    if isinstance(exc, exceptions.ValidationError):
        fields = _validation_fields(exc.detail)
        fields = fields if isinstance(fields, dict) else {"non_field_errors": fields}
        error = SamlError(
            "The request is not valid",
            _message(fields),
            "Correct the fields named in `fields`; /api/docs lists each one.",
            status=exc.status_code,
        )
        return respond(error, fields=fields)
    title, hint = _DRF_TITLES.get(exc.status_code, ("Request refused", ""))
    response = respond(SamlError(title, str(exc.detail), hint, status=exc.status_code))
    if auth_header := getattr(exc, "auth_header", None):
        response["WWW-Authenticate"] = auth_header
    if wait := getattr(exc, "wait", None):
        # Whole seconds, rounded up: a client that waits exactly this long is not early.
        response["Retry-After"] = str(math.ceil(wait))
    return response
