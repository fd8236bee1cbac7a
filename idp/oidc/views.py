"""Discovery and JWKS: what IAM (CreateOpenIDConnectProvider) and the local STS fetch."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from idp.api import errors
from idp.saml.errors import SamlError

from . import jwks, tokens

# Verifiers cache what they fetch; five minutes bounds how long a staged key may take to
# reach them (stage, wait, activate), and is short enough for a mock.
MAX_AGE = 300


def _cached(payload: dict) -> JsonResponse:
    response = JsonResponse(payload)
    response["Cache-Control"] = f"public, max-age={MAX_AGE}"
    return response


def _failure(error: SamlError) -> JsonResponse:
    response = JsonResponse(errors.body(error), status=error.status)  # the API's one shape
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def configuration(request: HttpRequest) -> JsonResponse:
    issuer = jwks.issuer()
    return _cached(
        {
            "issuer": issuer,
            "jwks_uri": f"{issuer}/jwks",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [jwks.ALGORITHM],
            "claims_supported": tokens.claims_supported(),
        }
    )


@require_GET
def key_set(request: HttpRequest) -> JsonResponse:
    try:
        return _cached(jwks.public_set())
    except SamlError as error:  # a key file missing: say which, never a 500
        return _failure(error)
