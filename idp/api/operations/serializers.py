"""What the operations take and answer; drf-spectacular documents them from these."""

from rest_framework import serializers

from idp.api.errors import SEVERITIES, FindingSerializer
from idp.models import SigningKey
from idp.oidc import tokens
from idp.saml import aws, bindings

# A response up to four times AWS's limit is still read, so that the checker can say it is
# too long (R13) rather than the API refusing it unread.
MAX_CHECKED_RESPONSE = 4 * aws.MAX_ENCODED_RESPONSE
MAX_CHECK_METADATA = 256 * 1024  # an IdP's metadata is a few kB, even with several keys
MAX_DECRYPTION_KEY = 16_384  # R14: IAM's AddPrivateKey takes at most 16,384 characters of PEM
MAX_NAME = 1024  # user names, entity IDs, role ARNs, scenario names, request IDs


class SignOnRequest(serializers.Serializer):
    user = serializers.CharField(max_length=MAX_NAME, help_text="a directory user's username")
    sp = serializers.CharField(
        max_length=MAX_NAME,
        help_text="the service provider's entity ID (AWS: urn:amazon:webservices)",
    )
    role = serializers.CharField(
        max_length=MAX_NAME,
        required=False,
        allow_blank=True,
        default="",
        help_text="AWS: the role ARN to release alone; empty: every role the user has",
    )
    relay_state = serializers.CharField(
        max_length=bindings.MAX_RELAY_STATE, required=False, allow_blank=True, default=""
    )
    in_response_to = serializers.CharField(
        max_length=MAX_NAME,
        required=False,
        allow_null=True,
        default=None,
        help_text="the AuthnRequest ID this answers; empty: IdP-initiated",
    )
    scenario = serializers.CharField(
        max_length=MAX_NAME,
        required=False,
        allow_null=True,
        default=None,
        help_text="a fault scenario from GET /api/v1/scenarios, such as `expired` or "
        "`clock-skew:600`; empty: the SP's fault profile, if it has one",
    )
    now = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="the instant the response is issued at (ISO 8601; no zone means UTC); "
        "default: the IdP's clock",
    )
    authn_context = serializers.CharField(
        max_length=MAX_NAME,
        required=False,
        allow_blank=True,
        default="",
        help_text="how the user signed in, stated as AuthnContextClassRef: a class URI or short "
        "name (unspecified, Password, PasswordProtectedTransport, Kerberos, X509, MFA); "
        "default: PasswordProtectedTransport. An SP that requires MFA takes only MFA",
    )


class SignOnResponse(serializers.Serializer):
    saml_response = serializers.CharField(help_text="base64: exactly what the browser posts")
    acs_url = serializers.CharField(help_text="where the browser would post it")
    relay_state = serializers.CharField(allow_blank=True)
    xml = serializers.CharField(help_text="the response as sent, pretty-printed")
    decrypted_xml = serializers.CharField(
        allow_null=True, help_text="with an EncryptedAssertion: the response decrypted"
    )
    findings = FindingSerializer(many=True, help_text="the AWS checker's findings")
    scenario = serializers.CharField(allow_null=True, help_text="the fault scenario applied")
    response_id = serializers.CharField()


class CheckRequest(serializers.Serializer):
    saml_response = serializers.CharField(
        max_length=MAX_CHECKED_RESPONSE,
        trim_whitespace=False,
        help_text="the SAMLResponse form field (base64) or the decoded XML, from any IdP",
    )
    metadata = serializers.CharField(
        max_length=MAX_CHECK_METADATA,
        required=False,
        allow_blank=True,
        default="",
        trim_whitespace=False,
        help_text="the IdP metadata IAM imported: the signature and Issuer are checked against it",
    )
    key = serializers.CharField(
        max_length=MAX_DECRYPTION_KEY,
        required=False,
        allow_blank=True,
        default="",
        trim_whitespace=False,
        help_text="the SP's private key (PEM), to decrypt an EncryptedAssertion (R14)",
    )
    now = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="judge the time window (R12) as of this instant; default: now",
    )


class CheckResponse(serializers.Serializer):
    verdict = serializers.ChoiceField(
        ["accept", "reject"], help_text="reject if any finding is an error"
    )
    findings = FindingSerializer(many=True)
    note = serializers.CharField(
        allow_null=True, help_text="what was not checked (without metadata)"
    )


class ScenarioSerializer(serializers.Serializer):
    name = serializers.CharField()
    breaks = serializers.CharField(help_text="what it breaks")
    aws_rule = serializers.CharField(
        allow_null=True, help_text="what the AWS checker reports: R1 to R21, SAML, or null"
    )
    aws_severity = serializers.ChoiceField(
        SEVERITIES, help_text="warning: the checker warns; AWS's answer is undocumented"
    )
    aws_error = serializers.CharField(allow_null=True, help_text="AWS's error text")
    sp_rule = serializers.CharField(
        allow_null=True, help_text="the SAML core or profile section an SP must enforce"
    )
    parameter = serializers.CharField(
        allow_null=True, help_text="what the value means; written name:value, as clock-skew:600"
    )
    default = serializers.CharField(allow_null=True, help_text="the value when the name is alone")
    refused_by = serializers.ListField(
        child=serializers.CharField(), help_text="the SP libraries fedmock's tests see refuse it"
    )
    sp_note = serializers.CharField(
        allow_blank=True, help_text="where no tested library enforces the SP rule"
    )


class CountsSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    deleted = serializers.IntegerField()


class ResetResponse(serializers.Serializer):
    source = serializers.CharField(help_text="the fixture file restored")
    users = CountsSerializer()
    groups = CountsSerializer()
    service_providers = CountsSerializer()
    claim_rules = CountsSerializer()


class SigningKeySerializer(serializers.Serializer):
    fingerprint = serializers.CharField(help_text="SHA-256 of the certificate (hex)")
    use = serializers.ChoiceField(
        SigningKey.Use.values,
        help_text="saml: SAML metadata and assertions; jwt: /oidc/jwks and the tokens fedmock "
        "signs. Each use has its own rollover.",
    )
    state = serializers.ChoiceField(["next", "active", "retired"])
    signs = serializers.BooleanField(
        help_text="the key that signs now for its use (assertions, or tokens)"
    )
    published = serializers.BooleanField(
        help_text="next and active keys: in the SAML metadata (saml) or /oidc/jwks (jwt)"
    )
    role = serializers.CharField(
        help_text="what the key does, as the admin's list says: `signs assertions`, `signs "
        "tokens`, `published in the SAML metadata`, `published in /oidc/jwks`, `retired: "
        "published nowhere`"
    )
    not_valid_before = serializers.DateTimeField()
    not_valid_after = serializers.DateTimeField()
    days_left = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    state_changed_at = serializers.DateTimeField()


class KeyStepResponse(serializers.Serializer):
    key = SigningKeySerializer()
    next_step = serializers.CharField(help_text="what to do next, as `rotate_key` says")


class StageRequest(serializers.Serializer):
    days = serializers.IntegerField(
        min_value=1, max_value=36500, default=3650, help_text="the certificate's lifetime"
    )
    use = serializers.ChoiceField(
        SigningKey.Use.values,
        default=SigningKey.Use.SAML,
        help_text="which rollover: saml (the metadata; default) or jwt (/oidc/jwks), as "
        "`rotate_key stage --use`",
    )


class WebIdentityTokenRequest(serializers.Serializer):
    preset = serializers.ChoiceField(
        choices=sorted(tokens.PRESETS),
        required=False,
        allow_null=True,
        default=None,
        help_text="whose token to imitate; none: only sub, aud and claims",
    )
    repo = serializers.CharField(
        max_length=MAX_NAME,
        required=False,
        default="",
        help_text="github: ORG/REPO; gitlab: GROUP/PROJECT",
    )
    ref = serializers.CharField(
        max_length=MAX_NAME, required=False, default="", help_text="refs/heads/main"
    )
    environment = serializers.CharField(max_length=MAX_NAME, required=False, default="")
    pull_request = serializers.BooleanField(required=False, default=False)
    namespace = serializers.CharField(max_length=MAX_NAME, required=False, default="default")
    service_account = serializers.CharField(max_length=MAX_NAME, required=False, default="default")
    sub = serializers.CharField(max_length=MAX_NAME, required=False, default="")
    aud = serializers.CharField(max_length=MAX_NAME, required=False, default="")
    claims = serializers.DictField(
        required=False, default=dict, help_text="extra claims (iss, iat, nbf, exp are reserved)"
    )
    lifetime = serializers.IntegerField(
        min_value=1, max_value=tokens.MAX_LIFETIME, required=False, allow_null=True, default=None
    )
    now = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="the issue time; default: the clock",
    )
    fault = serializers.ChoiceField(
        choices=list(tokens.FAULTS),
        required=False,
        allow_null=True,
        default=None,
        help_text="break the token on purpose (docs/scenarios.md, token faults): "
        + "; ".join(f"`{f.name}`: {f.breaks}" for f in tokens.FAULTS.values()),
    )


class WebIdentityTokenResponse(serializers.Serializer):
    token = serializers.CharField(help_text="the JWT (RS256, header kid)")
    claims = serializers.DictField(help_text="the token's claims, as signed")
    kid = serializers.CharField(
        help_text="the header's kid: the key's id in /oidc/jwks (unknown-kid: one it lacks)"
    )
    expires_at = serializers.DateTimeField()
    fault = serializers.CharField(allow_null=True, help_text="the token fault applied")
