"""The admin's trust-policy explainer: `explain_web_identity` and `explain_saml` on a page.

Paste a JWT or a SAMLResponse (which one is read from its shape), a trust policy or a
local IAM role, and optionally what verifies the signature (a JWKS URL or JSON; the IdP's
SAML metadata). The answer is the commands' own: both call _explain.py, and the page only
renders its Explanation.

Permission: `sts.view_role`. The page reads and evaluates trust policies (a role's, if
picked) and writes nothing, which is what viewing roles grants; staff status alone is not
enough (DESIGN.md). The form posts with Django's CSRF token, as every admin form.

Sizes are capped per field (FIELD_LIMITS), each at what the STS itself takes or fetches,
so no paste makes the page do more work than an STS call would.
"""

from django import forms
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

from idp import clock
from idp.management.commands import _explain
from idp.saml.aws import MAX_ENCODED_RESPONSE

from . import policy, web_identity
from .models import Role

# Each cap is what AWS's API takes for the same input, so the page refuses nothing the STS
# would accept: a SAMLAssertion parameter (R13) of 100,000 characters, whose XML is
# smaller; a trust policy document (botocore's limit; the parser then applies IAM's
# 4,096); a JWKS as idp/sts/jwks.py fetches one. SAML metadata: IAM takes up to
# 10,000,000 characters, but a form is not the place for that; 1,000,000 holds any
# metadata with its 10 certificates many times over.
CREDENTIAL_MAX = MAX_ENCODED_RESPONSE
POLICY_MAX = policy.POLICY_DOCUMENT_MAX_TEXT
JWKS_MAX = _explain.JWKS_MAX_BYTES
METADATA_MAX = 1_000_000
ARN_MAX = 2048  # IAM's ARN type


def _text(label: str, limit: int, help_text: str, rows: int = 6, **extra) -> forms.CharField:
    return forms.CharField(
        label=label,
        max_length=limit,
        required=False,
        strip=True,
        widget=forms.Textarea(attrs={"rows": rows, "cols": 100, "spellcheck": "false"}),
        help_text=f"{help_text} At most {limit:,} characters.",
        **extra,
    )


class ExplainForm(forms.Form):
    credential = _text(
        "JWT or SAMLResponse",
        CREDENTIAL_MAX,
        "A web-identity token (header.payload.signature) copied from a failing CI run, or "
        "a SAMLResponse (the form field's base64, or the decoded XML).",
        rows=8,
    )
    role = forms.ModelChoiceField(
        Role.objects.order_by("account_id", "name"),
        required=False,
        empty_label="— the trust policy below —",
        label="Local IAM role",
        help_text="Take the trust policy from a role of the local IAM (and, for SAML, the role "
        "ARN).",
    )
    trust_policy = _text(
        "Trust policy (JSON)", POLICY_MAX, "The role's trust policy, if no role is picked.", 10
    )
    jwks = _text(
        "JWKS (optional, JWT)",
        JWKS_MAX,
        "An https:// or http:// URL to fetch (5 s, no redirects), or the JWKS JSON: the "
        "token's signature is verified with it.",
        rows=3,
    )
    metadata = _text(
        "IdP metadata (optional, SAML)",
        METADATA_MAX,
        "The metadata IAM holds for the SAML provider: the response is validated fully "
        "(signature, Issuer, time window, audience), as the local STS does.",
        rows=3,
    )
    provider_arn = forms.CharField(
        label="Provider ARN (optional)",
        max_length=ARN_MAX,
        required=False,
        help_text="JWT: the IAM OIDC provider (default: the policy's oidc-provider for the "
        "token's issuer). SAML: the SAML provider paired with the role (default: the "
        "assertion's pair).",
    )
    role_arn = forms.CharField(
        label="Role ARN (optional, SAML)",
        max_length=ARN_MAX,
        required=False,
        help_text="Which of the assertion's roles (default: the picked role, or the "
        "assertion's only one).",
    )

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        if not data.get("credential"):
            self.add_error("credential", "Paste the JWT or the SAMLResponse to explain.")
        role = data.get("role")
        if role is None and not data.get("trust_policy"):
            self.add_error("trust_policy", "Paste a trust policy, or pick a local IAM role.")
        if role is not None and data.get("trust_policy"):
            self.add_error(
                "trust_policy", "Pick a role or paste a policy, not both: which one should count?"
            )
        return data


def kind_of(credential: str) -> str:
    """'jwt' or 'saml': XML starts with '<'; base64 has no '.', a compact JWT has two."""
    if credential.startswith("<"):
        return "saml"
    return "jwt" if credential.count(".") == 2 else "saml"


def explain(data: dict) -> tuple[str, _explain.Explanation]:
    """The form's inputs, through the commands' code."""
    credential = data["credential"]
    role = data.get("role")
    policy_text = role.trust_policy if role is not None else data["trust_policy"]
    kind = kind_of(credential)
    if kind == "jwt":
        if len(credential) > web_identity.TOKEN_MAX:
            raise _explain.Unexplainable(
                f"The token has {len(credential)} characters; STS takes at most "
                f"{web_identity.TOKEN_MAX}."
            )
        source = data.get("jwks") or ""
        keys = None
        if source:
            keys = (
                _explain.jwks_from_url(source)
                if _explain.is_url(source)
                else _explain.jwks_from_json(source, "The pasted JWKS")
            )
        explanation = _explain.explain_token(
            credential,
            policy_text,
            jwks=keys,
            jwks_source="the pasted JWKS" if keys and not _explain.is_url(source) else source,
            provider_arn=data.get("provider_arn") or None,
        )
        return kind, explanation
    metadata = data.get("metadata")
    explanation = _explain.explain_response(
        _explain.saml_parameter(credential),
        policy_text,
        role_arn=data.get("role_arn") or (role.arn if role is not None else None),
        principal_arn=data.get("provider_arn") or None,
        metadata=metadata.encode("utf-8") if metadata else None,
        metadata_source="the pasted metadata",
        now=clock.now(),
    )
    return kind, explanation


def may_explain(request) -> bool:
    opts = Role._meta
    return request.user.has_perm(f"{opts.app_label}.{get_permission_codename('view', opts)}")


def explain_view(model_admin, request):
    if not may_explain(request):
        raise PermissionDenied
    initial = {}
    if request.method != "POST" and (picked := request.GET.get("role", "")).isdigit():
        initial["role"] = picked  # the role page's "Explain" link
    form = ExplainForm(request.POST or None, initial=initial)
    kind = explanation = problem = None
    if request.method == "POST" and form.is_valid():
        try:
            kind, explanation = explain(form.cleaned_data)
        except _explain.Unexplainable as error:
            problem = str(error)
    return TemplateResponse(
        request,
        "admin/sts/explain.html",
        {
            **model_admin.admin_site.each_context(request),
            "title": "Explain a trust policy's decision",
            "opts": Role._meta,
            "form": form,
            "kind": {
                "jwt": "a JWT (AssumeRoleWithWebIdentity)",
                "saml": "a SAMLResponse (AssumeRoleWithSAML)",
            }.get(kind),
            "explanation": explanation,
            "context_rows": [
                (key, _explain.shown(value)) for key, value in explanation.request.context.items()
            ]
            if explanation
            else [],
            "printed": "\n".join(explanation.lines()) if explanation else "",
            "problem": problem,
        },
    )
