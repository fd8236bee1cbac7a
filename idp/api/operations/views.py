"""Operations: mint a sign-on, check a response, list the fault scenarios, reset to the
loaded fixture, and roll the signing keys over. Each is a thin door onto the function
the browser views, the admin and the commands call."""

import string
import time

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from idp import clock, fixtures, keys, scenarios, sso
from idp.api.errors import Conflict, error_responses
from idp.management.commands.rotate_key import JWT_NEXT_STEPS, NEXT_STEPS
from idp.models import LoadedFixture, SigningKey
from idp.oidc import issue, tokens
from idp.saml import aws
from idp.saml.errors import SamlError

from . import serializers as s


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class SignOns(APIView):
    # The preview's power: a signed response for any user, without their password.
    required_permissions = ["idp.preview_signed_response"]
    required_scope = "sign-on"

    @extend_schema(
        operation_id="mint_sign_on",
        summary="Mint a signed SAML response",
        description="Runs the browser's sign-on pipeline (idp/sso.py) for a user and a service "
        "provider, without a browser: the same claim rules, key, checks and audit. A fault "
        "scenario breaks the response on purpose. Needs the `idp.preview_signed_response` "
        "permission and the `sign-on` scope.",
        request=s.SignOnRequest,
        responses={201: s.SignOnResponse, **error_responses(400, 404, 409)},
        tags=["sign-ons"],
    )
    def post(self, request):
        data = _valid(s.SignOnRequest, request.data)
        minted = sso.mint(
            data["user"],
            data["sp"],
            role_arn=data["role"],
            relay_state=data["relay_state"],
            in_response_to=data["in_response_to"] or None,
            scenario=data["scenario"] or None,
            now=data["now"],
            authn_context_class=data["authn_context"],
        )
        return Response(s.SignOnResponse(minted).data, status=status.HTTP_201_CREATED)


class WebIdentityTokens(APIView):
    # A token any trust policy for the preset's subject accepts: the sign-ons' power.
    required_permissions = ["idp.preview_signed_response"]
    required_scope = "sign-on"

    @extend_schema(
        operation_id="mint_web_identity_token",
        summary="Mint a web-identity token (OIDC JWT)",
        description="What `manage.py mint_web_identity_token` does: a JWT signed with the "
        "active JWT key (issuer {IDP_BASE_URL}/oidc, keys at /oidc/jwks), shaped as GitHub "
        "Actions, EKS or GitLab CI would issue it, for AssumeRoleWithWebIdentity. A token "
        "fault (`fault`) breaks it on purpose: expired, wrong-audience, wrong-issuer, "
        "unknown-kid, alg-none, another-key. Needs the `idp.preview_signed_response` "
        "permission and the `sign-on` scope.",
        request=s.WebIdentityTokenRequest,
        responses={201: s.WebIdentityTokenResponse, **error_responses(400, 503)},
        tags=["sign-ons"],
    )
    def post(self, request):
        data = _valid(s.WebIdentityTokenRequest, request.data)
        options = tokens.Options(
            **{
                name: data[name]
                for name in (
                    "repo",
                    "ref",
                    "environment",
                    "pull_request",
                    "namespace",
                    "service_account",
                )
            }
        )
        try:
            minted = issue.issue(
                preset=data["preset"],
                options=options,
                sub=data["sub"],
                aud=data["aud"],
                claims=data["claims"],
                lifetime=data["lifetime"],
                now=data["now"],
                username=request.user.get_username(),
                fault=data["fault"],
            )
        except tokens.TokenError as error:
            raise SamlError(error.title, error.detail, error.hint, status=400) from error
        answer = {
            "token": minted.token,
            "claims": minted.claims,
            "kid": minted.kid,
            "expires_at": minted.expires_at,
            "fault": minted.fault,
        }
        return Response(s.WebIdentityTokenResponse(answer).data, status=status.HTTP_201_CREATED)


class Checks(APIView):
    # It signs and stores nothing: any staff token with the read scope may use it.
    required_permissions: list[str] = []
    required_scope = "read"

    @extend_schema(
        operation_id="check_response",
        summary="Check a SAMLResponse against the AWS rules",
        description="What `manage.py check_saml_response` does: every finding against "
        "docs/aws-saml-rules.md, and a verdict. A response that cannot be judged at all (a "
        "signature-wrapping layout, a disallowed signature, unusable metadata) is refused "
        "with 400.",
        request=s.CheckRequest,
        responses={200: s.CheckResponse, **error_responses(400, 413)},
        tags=["checks"],
    )
    def post(self, request):
        data = _valid(s.CheckRequest, request.data)
        findings = aws.check_response_with_metadata(
            data["saml_response"].encode(),
            data["metadata"].encode() or None,
            now=data["now"] or clock.now(),
            decryption_key=data["key"].encode() or None,
        )
        verdict = "reject" if any(f.severity == "error" for f in findings) else "accept"
        note = None if data["metadata"] else f"Without metadata {aws.WITHOUT_METADATA}"
        return Response(
            s.CheckResponse({"verdict": verdict, "findings": findings, "note": note}).data
        )


class Scenarios(APIView):
    required_permissions: list[str] = []
    required_scope = "read"

    @extend_schema(
        operation_id="list_scenarios",
        summary="The catalogue of fault scenarios",
        description="Each scenario breaks a response on purpose; name one in POST "
        "/api/v1/sign-ons or set it as a service provider's fault profile.",
        responses={200: s.ScenarioSerializer(many=True), **error_responses()},
        tags=["sign-ons"],
    )
    def get(self, request):
        return Response(s.ScenarioSerializer(scenarios.CATALOGUE.values(), many=True).data)


# Restoring the fixture may add, change and delete any of these: the user needs every one
# of those permissions (a superuser has them all), as the admin would ask for each step.
RESET_PERMISSIONS = [
    f"{app}.{action}_{model}"
    for app, model in (
        ("users", "user"),
        ("users", "group"),
        ("idp", "serviceprovider"),
        ("idp", "claimrule"),
    )
    for action in ("add", "change", "delete")
]


def admin_accounts_in_the_fixture() -> list[str]:
    """The accounts with admin rights the loaded fixture names: a reset re-grants their
    flags and puts their fixture passwords back."""
    data = LoadedFixture.objects.filter(pk=1).values_list("data", flat=True).first() or {}
    return [
        str(entry.get("username"))
        for entry in data.get("users") or []
        if entry.get("is_staff") or entry.get("is_superuser")
    ]


class Reset(APIView):
    required_permissions = RESET_PERMISSIONS
    required_scope = "reset"

    def check_permissions(self, request):
        super().check_permissions(request)
        # The directory's own rule (UserViewSet): only a superuser changes an account with
        # admin rights. Otherwise a user-changer could reset the superuser's password to the
        # fixture's, and log in as them.
        if not request.user.is_superuser and (accounts := admin_accounts_in_the_fixture()):
            raise exceptions.PermissionDenied(
                f"The loaded fixture names accounts with admin rights ({', '.join(accounts)}), "
                "whose flags and passwords a reset restores; only a superuser's token may."
            )

    @extend_schema(
        operation_id="reset",
        summary="Restore the loaded fixture",
        description="Re-applies the fixture file fedmock last loaded, removing what it does "
        "not name: the state a test suite starts from. Needs the `reset` scope and the add, "
        "change and delete permissions on users, groups, service providers and claim rules; "
        "a superuser's token if the fixture names staff or superusers.",
        request=None,
        responses={200: s.ResetResponse, **error_responses(409)},
        tags=["fixtures"],
    )
    def post(self, request):
        return Response(s.ResetResponse(fixtures.reset()).data)


def _key_json(key: SigningKey, now) -> dict:
    """`key` carries `is_signer` (keys.is_signer_expression): signers are per use."""
    return {
        "fingerprint": key.fingerprint,
        "use": key.use,
        "state": key.state,
        "signs": key.is_signer,
        "published": key.state != SigningKey.State.RETIRED,
        "role": keys.role(key, key.is_signer),
        "not_valid_before": key.not_valid_before,
        "not_valid_after": key.not_valid_after,
        "days_left": (key.not_valid_after - now).days,
        "created_at": key.created_at,
        "state_changed_at": key.state_changed_at,
    }


def _with_signer(rows):
    return rows.annotate(is_signer=keys.is_signer_expression())


class KeyStep(APIView):
    sleep = staticmethod(time.sleep)  # tests replace it, so that they never sleep

    def step(self, name: str, run) -> Response:
        try:
            # A step waits for every live worker's acknowledgement of the previous one, as
            # the admin and `rotate_key` do; past the patience it answers 409 with
            # Retry-After rather than hold a worker.
            key = keys.wait_and_retry(run, sleep=self.sleep, patience=keys.HTTP_PATIENCE_SECONDS)
        except keys.KeyLifecycleError as error:
            wait = 1.0 if error.behind else None
            raise Conflict(str(error), wait=wait) from error
        key = _with_signer(SigningKey.objects.filter(pk=key.pk)).get()
        steps = JWT_NEXT_STEPS if key.use == SigningKey.Use.JWT else NEXT_STEPS
        body = {"key": _key_json(key, timezone.now()), "next_step": steps[name]}
        return Response(s.KeyStepResponse(body).data)


class SigningKeys(KeyStep):
    required_permissions = {
        "GET": ["idp.view_signingkey"],
        "HEAD": ["idp.view_signingkey"],
        # Staging creates a SigningKey row: the model's add permission, as in the admin.
        "POST": ["idp.add_signingkey"],
    }

    @extend_schema(
        operation_id="list_signing_keys",
        summary="The signing keys and their states",
        description="As `rotate_key status`: every key, oldest first, with its use (`saml`: "
        "the metadata and assertions; `jwt`: /oidc/jwks and tokens), which one signs for "
        "each use and which are published.",
        responses={200: s.SigningKeySerializer(many=True), **error_responses()},
        tags=["signing-keys"],
    )
    def get(self, request):
        now = timezone.now()
        rows = _with_signer(SigningKey.objects.order_by("created_at"))
        return Response(s.SigningKeySerializer([_key_json(k, now) for k in rows], many=True).data)

    @extend_schema(
        operation_id="stage_signing_key",
        summary="Stage a next key",
        description="As `rotate_key stage [--use jwt]`: a new key is published beside the "
        "active one of its use (`use`: saml, the default, or jwt); it does not sign yet. 409 "
        "if a next key of that use is already staged.",
        request=s.StageRequest,
        responses={201: s.KeyStepResponse, **error_responses(400, 409)},
        tags=["signing-keys"],
    )
    def post(self, request):
        data = _valid(s.StageRequest, request.data or {})
        response = self.step("stage", lambda: keys.stage(valid_days=data["days"], use=data["use"]))
        response.status_code = status.HTTP_201_CREATED
        return response


_FINGERPRINT = OpenApiParameter(
    "fingerprint",
    str,
    OpenApiParameter.PATH,
    description="the key's SHA-256 fingerprint, or a prefix of it that names one key",
)
_WAIT = (
    "Waits up to 5 s for every live worker on every host to report, by its heartbeat, the "
    "keys of the previous step; past that it answers 409 naming the workers behind, with "
    "`Retry-After`."
)


class KeyAction(KeyStep):
    # Activating and retiring change a SigningKey row: the admin's actions ask the same.
    required_permissions = ["idp.change_signingkey"]
    action = ""

    def post(self, request, fingerprint: str):
        fingerprint = fingerprint.lower()
        # Fingerprints are hex: anything else matches none, and PostgreSQL refuses a NUL.
        hexadecimal = all(char in string.hexdigits for char in fingerprint)
        if not (
            hexadecimal and SigningKey.objects.filter(fingerprint__startswith=fingerprint).exists()
        ):
            raise exceptions.NotFound(
                f"No signing key's fingerprint starts with {fingerprint}; GET "
                "/api/v1/signing-keys lists them."
            )
        lifecycle_step = getattr(keys, self.action)
        return self.step(self.action, lambda: lifecycle_step(fingerprint))


@extend_schema_view(
    post=extend_schema(
        operation_id="activate_signing_key",
        summary="Activate the next key",
        description=f"As `rotate_key activate`: the staged key starts signing; the old one "
        f"stays published until retired. The fingerprint names the key, so its use too (a "
        f"SAML or a JWT key). {_WAIT}",
        parameters=[_FINGERPRINT],
        request=None,
        responses={200: s.KeyStepResponse, **error_responses(404, 409)},
        tags=["signing-keys"],
    )
)
class ActivateKey(KeyAction):
    action = "activate"


@extend_schema_view(
    post=extend_schema(
        operation_id="retire_signing_key",
        summary="Retire a key",
        description=f"As `rotate_key retire`: the key is no longer published. The key that "
        f"signs for its use cannot be retired; the fingerprint names the key and its use. "
        f"{_WAIT}",
        parameters=[_FINGERPRINT],
        request=None,
        responses={200: s.KeyStepResponse, **error_responses(404, 409)},
        tags=["signing-keys"],
    )
)
class RetireKey(KeyAction):
    action = "retire"
