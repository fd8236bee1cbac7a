"""fedmock's rules for django-oauth-toolkit (OAUTH2_VALIDATOR_CLASS): our issuer, our claims,
our keys, our audit, and refusals that say what to fix.

DOT and oauthlib run the protocol (codes, PKCE, client authentication, token storage). This
subclass decides what they ask a validator: which clients, grants, scopes and PKCE methods
are allowed, what a token says about a user, and who signs it. Each refusal is raised as the
oauthlib error the RFC names, with an error_description written for the person reading it.
"""

import base64
import binascii
import contextvars
import datetime
import re
import uuid
from urllib.parse import unquote_plus

from oauth2_provider.models import AbstractApplication, get_grant_model
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2.rfc6749 import errors
from oauthlib.oauth2.rfc6749.grant_types.authorization_code import code_challenge_method_s256

from idp import audit, cache, claims, clock
from idp.saml.errors import SamlError

from . import claim_shapes, jwks, tokens

FLOW = "oidc"
PKCE_METHOD = "S256"
GRANT_NAMES = {  # the token endpoint's grant_type -> the client's grant type (models.py)
    "authorization_code": AbstractApplication.GRANT_AUTHORIZATION_CODE,
    "client_credentials": AbstractApplication.GRANT_CLIENT_CREDENTIALS,
}
UNDECODABLE = "\x00undecodable"  # no client_id can hold a NUL
# No client_id or code holds a NUL, and PostgreSQL refuses one in a query (a 500 there):
# such a value is unknown without asking the database.
NUL = "\x00"


def _holds_nul(value) -> bool:
    return isinstance(value, str) and NUL in value


SHOWN = 80  # characters of a caller's value quoted back in an error
# RFC 7636 4.2: an S256 challenge is BASE64URL(SHA-256(verifier)) without padding, so
# exactly 43 characters; anything else can never match a verifier.
S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
CODE_RACED = (  # the grant went between two steps of one exchange: the other request won
    "The code was used by another request just now: a code is good once. Start the sign-in "
    "again for a new code."
)
NONCE_LIMIT = 255  # DOT's Grant.nonce column; PostgreSQL refuses a longer one with a 500

# The Django user of the authorization request being handled (views.Authorize sets it):
# oauthlib's request does not carry it, and prompt=none must know whether anyone is signed in.
session_user: contextvars.ContextVar = contextvars.ContextVar("session_user", default=None)


def shown(value) -> str:
    """A caller's value, quoted and cut short, for an error description (repr escapes
    NUL and the other control characters)."""
    text = str(value)
    return repr(text[:SHOWN] + ("…" if len(text) > SHOWN else ""))


def _unavailable(error: SamlError) -> errors.TemporarilyUnavailableError:
    # No active JWT key (or its file is gone): a 503 that says how to fix it, never a 500.
    return errors.TemporarilyUnavailableError(
        description=f"{error.title}: {error.detail} {error.hint}".strip(), status_code=503
    )


def user_claims(user, client, scopes) -> dict:
    """The claims of an ID token and of userinfo for `scopes`: the standard ones each scope
    names, then the client's claim rules on top (they may not set the registered claims)."""
    if user is None:
        raise errors.InsufficientScopeError(
            description="This token was issued to a client, with no user (client credentials), "
            "so it has no userinfo. Use a token from the authorization-code flow.",
        )
    entry = cache.directory_entry(user)
    fields = entry.fields
    # sub is the user name, not a number: trust policies and logs read it, as GitHub's and
    # GitLab's subs are readable (repo:acme/app:..., project_path:...).
    found: dict = {"sub": user.get_username()}
    if "profile" in scopes:
        name = " ".join(part for part in (fields["first_name"], fields["last_name"]) if part)
        found.update(
            name=name or fields["username"],
            given_name=fields["first_name"],
            family_name=fields["last_name"],
            preferred_username=fields["username"],
        )
    if "email" in scopes and fields["email"]:
        # The directory is the source of truth here; nobody verifies a test user's mail.
        found.update(email=fields["email"], email_verified=True)
    if "groups" in scopes:
        found["groups"] = list(entry.groups)  # nesting resolved, as SAML's groups
    try:
        ruled = claims.id_token_claims(user, client).claims
    except SamlError as error:  # a broken or conflicting claim rule: the operator's to fix
        raise errors.CustomOAuth2Error(
            "server_error",
            description=f"{error.title}: {error.detail} {error.hint}".strip(),
            status_code=error.status,
        ) from None
    # claims.py refuses rules for the registered claims; this keeps oauthlib's (aud, nonce,
    # at_hash) and ours (iss, exp, ...) whatever a rule says.
    found.update(
        {name: value for name, value in ruled.items() if name not in claim_shapes.RESERVED_CLAIMS}
    )
    return found


def access_token(request) -> str:
    """ACCESS_TOKEN_GENERATOR: a JWT signed with the active JWT key (idp/oidc/tokens.py), so
    a client-credentials token works where a machine token from Entra or Okta does, e.g.
    AssumeRoleWithWebIdentity with the client ID among the IAM OIDC provider's client IDs."""
    client = request.client
    user = None if request.grant_type == "client_credentials" else request.user
    body = {
        "sub": user.get_username() if user is not None else client.client_id,
        "aud": client.client_id,
        "client_id": client.client_id,
        "scope": " ".join(request.scopes or ()),
    }
    try:
        key, kid = jwks.signing_jwk()
    except SamlError as error:
        raise _unavailable(error) from None
    minted = tokens.mint(
        body,
        key,
        kid,
        issuer=jwks.issuer(),
        now=clock.now(),
        lifetime=oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS,
    )
    request.fedmock_access_token = minted  # for the audit in save_bearer_token
    return minted.token


class Validator(OAuth2Validator):
    # Scopes gate claims in user_claims(); DOT's table would drop every claim-rule claim.
    oidc_claim_scope = None

    # --- the issuer and its claims ---

    def get_oidc_issuer_endpoint(self, request) -> str:
        return jwks.issuer()  # the one discovery names, whatever IDP_BASE_URL is now

    def get_oidc_claims(self, token, token_handler, request) -> dict:
        return user_claims(request.user, request.client, set(request.scopes or ()))

    def get_discovery_claims(self, request) -> list[str]:
        return ["sub", "name", "given_name", "family_name", "preferred_username", "email"]

    def get_id_token_dictionary(self, token, token_handler, request):
        # As DOT's, on fedmock's clock (IDP_CLOCK_OFFSET moves tokens and assertions alike).
        found = self.get_oidc_claims(token, token_handler, request)
        now = clock.now()
        expires = now + datetime.timedelta(seconds=oauth2_settings.ID_TOKEN_EXPIRE_SECONDS)
        signed_in = request.user.last_login or now
        found.update(
            iss=self.get_oidc_issuer_endpoint(request),
            iat=int(now.timestamp()),
            exp=int(expires.timestamp()),
            auth_time=int(signed_in.timestamp()),
            jti=str(uuid.uuid4()),
        )
        return found, expires

    def finalize_id_token(self, id_token, token, token_handler, request):
        try:
            signed = super().finalize_id_token(id_token, token, token_handler, request)
        except SamlError as error:
            raise _unavailable(error) from None
        request.fedmock_id_token_jti = id_token.get("jti", "")
        return signed

    # --- clients, redirect URIs, grants, scopes, PKCE ---

    def _load_application(self, client_id, request):
        # DOT's one lookup of a client by client_id (validation and client authentication).
        if _holds_nul(client_id):
            return None
        return super()._load_application(client_id, request)

    def validate_client_id(self, client_id, request, *args, **kwargs) -> bool:
        if super().validate_client_id(client_id, request, *args, **kwargs):
            return True
        raise errors.InvalidClientIdError(
            description=f"No OIDC client has the client_id {shown(client_id)}. Register the "
            "client (admin: OIDC clients, /api/v1/oidc-clients or a fixture) or fix client_id.",
            request=request,
        )

    def validate_redirect_uri(self, client_id, redirect_uri, request, *args, **kwargs) -> bool:
        if super().validate_redirect_uri(client_id, redirect_uri, request, *args, **kwargs):
            return True
        registered = request.client.redirect_uris.split()
        raise errors.MismatchingRedirectURIError(
            description=f"{shown(redirect_uri)} is not a redirect URI of the client "
            f"{shown(client_id)}; it has {', '.join(registered) or 'none'}. Send one of "
            "those, or add this one to the client (it must match exactly).",
            request=request,
        )

    def validate_response_type(self, client_id, response_type, client, request, *a, **kw):
        if response_type != "code":
            raise errors.UnsupportedResponseTypeError(
                description=f"response_type {shown(response_type)} is not offered here: "
                "fedmock runs the authorization-code flow only. Send response_type=code.",
                request=request,
            )
        if client.allows_grant_type(AbstractApplication.GRANT_AUTHORIZATION_CODE):
            return True
        raise errors.UnauthorizedClientError(
            description=self._grant_refusal(client, AbstractApplication.GRANT_AUTHORIZATION_CODE),
            request=request,
        )

    def validate_grant_type(self, client_id, grant_type, client, request, *args, **kwargs):
        if grant_type not in (*GRANT_NAMES, "refresh_token"):
            raise errors.UnsupportedGrantTypeError(
                description=f"grant_type {shown(grant_type)} is not offered here: use "
                "authorization_code (with PKCE), client_credentials or refresh_token.",
                request=request,
            )
        if grant_type == "client_credentials" and client.client_type != client.CLIENT_CONFIDENTIAL:
            # RFC 6749 4.4: confidential clients only. A public client's client_id is no
            # secret, and a secret left from when it was confidential proves nothing now.
            raise errors.UnauthorizedClientError(
                description=f"The client {shown(client.client_id)} is public: client "
                "credentials are for confidential clients only. Make it confidential and use "
                "its secret, or use the authorization-code flow.",
                request=request,
            )
        if super().validate_grant_type(client_id, grant_type, client, request, *args, **kwargs):
            return True
        raise errors.UnauthorizedClientError(
            description=self._grant_refusal(client, GRANT_NAMES.get(grant_type, grant_type)),
            request=request,
        )

    @staticmethod
    def _grant_refusal(client, grant: str) -> str:
        return (
            f"The client {shown(client.client_id)} may not use {grant}; its grant types are "
            f"{', '.join(client.grant_types) or 'none'}. Add {grant} to the client's grant types."
        )

    def validate_scopes(self, client_id, scopes, client, request, *args, **kwargs) -> bool:
        refused = [scope for scope in scopes if scope not in client.allowed_scopes]
        if not refused:
            return True
        raise errors.InvalidScopeError(
            description=f"The client {shown(client.client_id)} may not ask for "
            f"{', '.join(shown(scope) for scope in refused)}; it may ask for "
            f"{' '.join(client.allowed_scopes)}. Drop the scope or allow it on the client.",
            request=request,
        )

    def get_default_scopes(self, client_id, request, *args, **kwargs) -> list[str]:
        return [s for s in oauth2_settings.DEFAULT_SCOPES if s in request.client.allowed_scopes]

    def is_pkce_required(self, client_id, request) -> bool:
        # oauthlib asks this at the authorization endpoint just before its own PKCE checks,
        # once the redirect URI is trusted, both for the request and for the consent form's
        # POST; answering here refuses a missing challenge or the plain method in words, and
        # what the grant would store but cannot (DOT's columns: challenge 128, nonce 255).
        if request.response_type:
            if request.code_challenge is None:
                raise errors.MissingCodeChallengeError(
                    description="PKCE is required: send code_challenge = BASE64URL(SHA-256("
                    "code_verifier)) and code_challenge_method=S256.",
                    request=request,
                )
            if request.code_challenge_method != PKCE_METHOD:
                method = request.code_challenge_method or "plain (the default)"
                raise errors.UnsupportedCodeChallengeMethodError(
                    description=f"code_challenge_method {shown(method)} is refused: only "
                    "S256 is accepted. Send code_challenge_method=S256 with the SHA-256 "
                    "challenge.",
                    request=request,
                )
            if not S256_CHALLENGE.fullmatch(request.code_challenge):
                raise errors.InvalidRequestError(
                    description=f"code_challenge {shown(request.code_challenge)} is not an "
                    "S256 challenge: send BASE64URL(SHA-256(code_verifier)) without padding, "
                    "43 characters of A-Z, a-z, 0-9, - and _.",
                    request=request,
                )
            nonce = request.nonce or ""
            if len(nonce) > NONCE_LIMIT or not nonce.isprintable():
                raise errors.InvalidRequestError(
                    description=f"nonce {shown(nonce)} is refused: send at most {NONCE_LIMIT} "
                    "printable characters (a random string, e.g. 32 hex digits).",
                    request=request,
                )
        return True

    def validate_silent_login(self, request) -> bool:
        # prompt=none (OIDC Core 3.1.2.1): answer login_required rather than a login page.
        user = session_user.get()
        return user is not None and user.is_authenticated

    def validate_silent_authorization(self, request) -> bool:
        # REQUEST_APPROVAL_PROMPT is DOT's "force": only a client that skips the consent page
        # can be answered without one; any other gets consent_required.
        return bool(request.client.skip_authorization)

    def get_authorization_code_scopes(self, client_id, code, redirect_uri, request):
        if _holds_nul(code):
            return []
        return super().get_authorization_code_scopes(client_id, code, redirect_uri, request)

    def get_authorization_code_nonce(self, client_id, code, redirect_uri, request):
        if _holds_nul(code):
            return None
        return super().get_authorization_code_nonce(client_id, code, redirect_uri, request)

    def validate_code(self, client_id, code, client, request, *args, **kwargs) -> bool:
        if _holds_nul(code) or not super().validate_code(
            client_id, code, client, request, *args, **kwargs
        ):
            raise errors.InvalidGrantError(
                description="The code is unknown, expired or already used: a code is good "
                f"once, for {oauth2_settings.AUTHORIZATION_CODE_EXPIRE_SECONDS} s, for the "
                "client it was issued to. Start the sign-in again for a new code.",
                request=request,
            )
        # oauthlib checks the verifier next, with no error_description; say it here.
        grant = get_grant_model().objects.filter(code=code, application=client).first()
        if grant is None:
            raise errors.InvalidGrantError(
                description=CODE_RACED,
                request=request,
            )
        self._refuse_inactive(grant.user, request)
        if not request.code_verifier:
            raise errors.MissingCodeVerifierError(
                description="Send the code_verifier whose S256 challenge went to /authorize.",
                request=request,
            )
        if not code_challenge_method_s256(request.code_verifier, grant.code_challenge):
            raise errors.InvalidGrantError(
                description="code_verifier does not match the code_challenge sent to "
                "/authorize: send the verifier the challenge was made from.",
                request=request,
            )
        return True

    @staticmethod
    def _refuse_inactive(user, request) -> None:
        # As a SAML sign-on refuses an inactive user: deactivating someone stops new tokens,
        # from a code issued before or from a refresh token.
        if user is not None and not user.is_active:
            raise errors.InvalidGrantError(
                description=f"The user {shown(user.get_username())} is inactive and gets no "
                "new tokens. Activate the user in the directory admin, then sign in again.",
                request=request,
            )

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs) -> bool:
        if not super().validate_refresh_token(refresh_token, client, request, *args, **kwargs):
            return False
        self._refuse_inactive(request.user, request)
        return True

    def validate_bearer_token(self, token, scopes, request) -> bool:
        # userinfo: an access token issued before its user was deactivated answers no more.
        if not super().validate_bearer_token(token, scopes, request):
            return False
        return request.user is None or request.user.is_active

    def get_original_scopes(self, refresh_token, request, *args, **kwargs) -> list[str]:
        # A refresh keeps the scopes the user allowed, less those the client may no longer
        # ask for (oauthlib's refresh grant never calls validate_scopes).
        original = super().get_original_scopes(refresh_token, request, *args, **kwargs)
        if isinstance(original, str):
            original = original.split()
        return [scope for scope in original if scope in request.client.allowed_scopes]

    def confirm_redirect_uri(self, client_id, code, redirect_uri, client, *args, **kwargs):
        try:
            confirmed = super().confirm_redirect_uri(
                client_id, code, redirect_uri, client, *args, **kwargs
            )
        except get_grant_model().DoesNotExist:
            raise errors.InvalidGrantError(
                description=CODE_RACED,
            ) from None
        if confirmed:
            return True
        raise errors.MismatchingRedirectURIError(
            description=f"redirect_uri {shown(redirect_uri)} is not the one the code was issued "
            "for: send the same redirect_uri as to /authorize.",
        )

    def authenticate_client(self, request, *args, **kwargs) -> bool:
        if super().authenticate_client(request, *args, **kwargs):
            return True
        client_id, secret = self._offered_credentials(request)
        if client_id == UNDECODABLE:
            problem = "The HTTP Basic credentials are not base64 of client_id:client_secret."
        elif client_id is None:
            problem = (
                "No client credentials: send client_id and client_secret with HTTP Basic "
                "(client_secret_basic) or in the form body (client_secret_post)."
            )
        elif self._load_application(client_id, request) is None:
            problem = f"No OIDC client has the client_id {shown(client_id)}. Register it or fix it."
        elif request.client.client_type != request.client.CLIENT_CONFIDENTIAL:
            # Only client credentials ask a public client to authenticate (a code or refresh
            # exchange takes its client_id alone).
            problem = (
                f"The client {shown(client_id)} is public: it has no secret, and client "
                "credentials are for confidential clients only. Use the authorization-code "
                "flow, or make the client confidential."
            )
        elif not secret:
            problem = f"The client {shown(client_id)} is confidential: send its client_secret."
        else:
            problem = (
                f"The client secret is not that of {shown(client_id)}. Use the secret shown "
                "once when the client was made (fedmock keeps only its hash)."
            )
        raise errors.InvalidClientError(description=problem, request=request)

    def _offered_credentials(self, request) -> tuple[str | None, str]:
        """The client_id and secret a refused client sent, to say which was wrong."""
        encoded = self._extract_basic_auth(request)
        if encoded:
            try:
                client_id, _, secret = (
                    base64.b64decode(encoded, validate=True).decode().partition(":")
                )
            except (binascii.Error, UnicodeDecodeError, ValueError):
                return UNDECODABLE, ""
            return unquote_plus(client_id), unquote_plus(secret)
        if request.client_id:
            return request.client_id, getattr(request, "client_secret", "") or ""
        return None, ""

    # --- every token issued is audited ---

    def save_bearer_token(self, token, request, *args, **kwargs):
        saved = super().save_bearer_token(token, request, *args, **kwargs)
        minted = getattr(request, "fedmock_access_token", None)
        user = None if request.grant_type == "client_credentials" else request.user
        details = [
            f"grant={request.grant_type}",
            f"scope={token.get('scope', '')}",
            f"kid={minted.kid if minted else '-'}",
        ]
        if "id_token" in token:
            details.append(f"id_token={getattr(request, 'fedmock_id_token_jti', '')}")
        audit.record(
            flow=FLOW,
            username=user.get_username() if user is not None else "",
            sp_entity_id=request.client.client_id,
            response_id=(minted.claims["jti"] if minted else "")[:64],
            outcome="sent",
            detail=" ".join(details),
        )
        return saved
