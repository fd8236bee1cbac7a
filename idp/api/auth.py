"""Bearer tokens: `Authorization: Bearer fm_<prefix>_<secret>`.

No header (or another scheme): anonymous, which the permissions answer with 401.
A token that is malformed, unknown, revoked or expired, or whose user is inactive: 401,
since the credential itself no longer proves anything (as DRF's TokenAuthentication
treats an inactive user). A valid token of a user who is not staff: 403, from the
permissions, since the user is known and only lacks the right.

Tokens expire by the system clock, not idp.clock: IDP_CLOCK_OFFSET fakes SAML time for
tests, and must not stretch a credential's life.
"""

import re

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from .models import MAX_TOKEN_LENGTH, ApiToken, digest

_TOKEN = re.compile(r"fm_[0-9a-f]{8}_[A-Za-z0-9_-]{20,80}")
_HINT = "Create one with `python manage.py create_api_token USERNAME`, or in the admin."


class BearerTokenAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2 or len(parts[1]) > MAX_TOKEN_LENGTH:
            raise exceptions.AuthenticationFailed(
                f"The Authorization header must read `Bearer <token>`. {_HINT}"
            )
        try:
            text = parts[1].decode("ascii")
        except UnicodeDecodeError:
            text = ""
        if not _TOKEN.fullmatch(text):
            raise exceptions.AuthenticationFailed(
                f"That is not a fedmock API token (they read fm_<8 hex>_<secret>). {_HINT}"
            )
        # The lookup compares SHA-256 digests, not the token: its timing could reveal only
        # how much of a digest matched, and no one can pick a token whose digest starts
        # with chosen bytes, so a constant-time comparison would protect nothing here.
        token = ApiToken.objects.select_related("user").filter(digest=digest(text)).first()
        if token is None:
            raise exceptions.AuthenticationFailed(f"This token is unknown to fedmock. {_HINT}")
        if problem := token.refusal():
            raise exceptions.AuthenticationFailed(f"{problem} {_HINT}")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(
                f"The token's user {token.user.username} is inactive."
            )
        return token.user, token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="fedmock"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Tells drf-spectacular (and so the docs' Authorize button) about the bearer scheme."""

    target_class = "idp.api.auth.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A fedmock API token: `python manage.py create_api_token USERNAME`.",
        }
