"""The explainer that explain_saml, explain_web_identity and the admin's explainer page share.

Each door reads its inputs (files, a form) and calls `explain_token` or `explain_response`;
both return an `Explanation`, which the commands print (`report`) and the admin page
renders as HTML. So the page and the commands cannot disagree: the reading of the token
or assertion, the context, the evaluator (the local STS's) and the hints are one code.

Every input this module cannot use raises `Unexplainable`, a CommandError with a
one-line message: the commands print it as they print any refusal, the page shows it
above the form.

(The leading underscore keeps Django from taking this module for a command.)
"""

import base64
import datetime
import json
from dataclasses import dataclass

import requests
from django.core.management.base import CommandError
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from idp.sts import assertion, policy, web_identity
from idp.sts import jwks as sts_jwks
from idp.sts.errors import StsError
from idp.sts.web_identity_context import web_identity_context

from .check_saml_response import read_input

# A JWKS URL is fetched as the local STS fetches an issuer's (idp/sts/jwks.py): bounded,
# since it is whatever URL the operator pasted.
JWKS_TIMEOUT = 5.0
JWKS_MAX_BYTES = 256 * 1024


class Unexplainable(CommandError):
    """An input the explainer cannot read or use; the message is one line and says why."""


@dataclass(frozen=True)
class Explanation:
    """What the trust policy decides for one token or assertion, and why."""

    request: policy.PolicyRequest
    decision: policy.Decision
    notes: tuple[str, ...]  # how the input was read (signature checked or not, ignored claims)
    hints: tuple[str, ...]  # likely mistakes behind a refusal (empty when allowed)

    @property
    def allowed(self) -> bool:
        return self.decision.allowed

    @property
    def verdict(self) -> str:
        return "ALLOWED" if self.allowed else f"DENIED: {self.decision.denied_action}"

    def lines(self) -> list[str]:
        """The commands' output, line by line."""
        principal = json.dumps({k: list(v) for k, v in self.request.principal.items()})
        return [
            *(f"Note: {note}" for note in self.notes),
            f"Principal: {principal}",
            f"Actions: {', '.join(self.request.actions)}",
            "Context:",
            *(f"  {key} = {shown(value)}" for key, value in self.request.context.items()),
            self.verdict,
            *(f"  {line}" for line in self.decision.explanation),
            *(f"Hint: {hint}" for hint in self.hints),
        ]


def shown(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def report(stdout, explanation: Explanation) -> None:
    for line in explanation.lines():
        stdout.write(line)


def read_policy(path: str) -> str:
    data = read_input(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Unexplainable(f"The trust policy {path} is not UTF-8 text.") from error


def sts_error_line(error: StsError) -> str:
    return " ".join(f"{error.code}: {error.message} {' '.join(error.explanation)}".split())


def evaluate(text: str, request: policy.PolicyRequest) -> tuple[policy.Policy, policy.Decision]:
    try:
        parsed = policy.parse_policy(text)
        return parsed, policy.evaluate(parsed, request)
    except StsError as error:
        raise Unexplainable(f"The trust policy is refused: {sts_error_line(error)}") from error


def _explained(text: str, request: policy.PolicyRequest, notes) -> Explanation:
    parsed, decision = evaluate(text, request)
    found = () if decision.allowed else tuple(hints(parsed, request.context))
    return Explanation(request, decision, tuple(notes), found)


def _lookup(context, key: str):
    for name, value in context.items():
        if name.lower() == key.lower():
            return value
    return None


def hints(parsed: policy.Policy, context) -> list[str]:
    """Likely mistakes behind a refusal: the evaluator says what failed, these say why."""
    found = []
    for statement in parsed.statements:
        for condition in statement.conditions:
            value = _lookup(context, condition.key)
            values = [value] if isinstance(value, str) else list(value or [])
            if condition.base in ("StringEquals", "StringNotEquals") and values:
                wild = [p for p in condition.values if "*" in p or "?" in p]
                if wild and any(
                    policy.GlobSet(wild).match(v) and v not in condition.values for v in values
                ):
                    found.append(
                        f"{statement.label}: {condition.operator} compares {json.dumps(wild)} "
                        "literally: `*` and `?` are wildcards only under StringLike (use "
                        "StringLike)."
                    )
            if condition.base in ("StringEquals", "StringLike") and values:
                lowered = {p.lower() for p in condition.values}
                near = [v for v in values if v not in condition.values and v.lower() in lowered]
                if near:
                    found.append(
                        f"{statement.label}: {condition.key} is {json.dumps(near)}, which differs "
                        "from the policy's value only in case; values are case-sensitive "
                        "(condition key names are not)."
                    )
            if value is None and not condition.if_exists and condition.base != "Null":
                keys = sorted(k for k in context if ":" in k)
                found.append(
                    f"{statement.label}: the request has no {condition.key}; it has "
                    f"{', '.join(keys)}."
                )
    return found


# --- web identity ---------------------------------------------------------------------


def jwks_from_json(data: bytes | str, source: str) -> KeySet:
    try:
        return KeySet.import_key_set(json.loads(data))
    except ValueError as error:
        raise Unexplainable(f"{source} is not a JWKS (JSON): {error}") from error
    except (JoseError, TypeError, KeyError, AttributeError) as error:
        raise Unexplainable(f"{source} is not a usable JWKS: {error}") from error


def jwks_from_url(url: str) -> KeySet:
    own = sts_jwks.own_key_set(url)
    if own is not None:  # fedmock's own /oidc/jwks: the admin page must not wait on itself
        return jwks_from_json(json.dumps(own), f"The JWKS at {url}")
    try:
        with requests.get(url, timeout=JWKS_TIMEOUT, stream=True, allow_redirects=False) as answer:
            if answer.status_code != 200:
                raise Unexplainable(f"Cannot fetch the JWKS at {url}: HTTP {answer.status_code}.")
            body = answer.raw.read(JWKS_MAX_BYTES + 1, decode_content=True)
    except (requests.RequestException, ValueError, OSError) as error:
        raise Unexplainable(f"Cannot fetch the JWKS at {url}: {error}") from error
    if len(body) > JWKS_MAX_BYTES:
        raise Unexplainable(f"The JWKS at {url} exceeds {JWKS_MAX_BYTES} bytes.")
    return jwks_from_json(body, f"The JWKS at {url}")


def is_url(text: str) -> bool:
    return text.startswith(("https://", "http://"))


def explain_token(
    token: str,
    policy_text: str,
    *,
    jwks: KeySet | None = None,
    jwks_source: str = "",
    provider_arn: str | None = None,
) -> Explanation:
    """The trust policy's decision for AssumeRoleWithWebIdentity with this JWT."""
    token = token.strip()
    notes = []
    try:
        compact = jws.extract_compact(token.encode("ascii"))
        # The STS's algorithms, checked with or without a JWKS: a token STS refuses
        # unread (alg none, HS256, PS256) is never explained as allowed.
        algorithm = compact.protected.get("alg")
        if algorithm not in web_identity.ALGORITHMS:
            raise Unexplainable(
                "STS would refuse the token: "
                f"{web_identity.BAD_ALGORITHM.code}: {web_identity.BAD_ALGORITHM.text} "
                f"(header alg {algorithm!r}; AWS takes {', '.join(web_identity.ALGORITHMS)})."
            )
        if jwks is not None:
            claims = jwt.decode(token, jwks, algorithms=list(web_identity.ALGORITHMS)).claims
            notes.append(f"signature verified against {jwks_source or 'the JWKS'}")
        else:
            claims = json.loads(compact.payload)
            notes.append("signature not checked (no JWKS)")
    except (JoseError, ValueError, UnicodeError, TypeError) as error:
        raise Unexplainable(f"The token is not a valid JWT: {error}") from error
    if not isinstance(claims, dict):
        raise Unexplainable("The token's payload is not a JSON object.")
    try:
        built = web_identity_context(claims)
    except ValueError as error:
        raise Unexplainable(f"The token cannot be used: {error}.") from error
    arn = provider_arn or provider_from_policy(policy_text, built.provider)
    built = web_identity_context(claims, provider_arn=arn)
    request = policy.PolicyRequest(
        principal={"Federated": [arn]}, actions=built.actions, context=built.context
    )
    return _explained(policy_text, request, [*notes, *built.notes])


def provider_from_policy(text: str, provider: str) -> str:
    """The policy's oidc-provider ARN for this issuer; else one in the account it names."""
    try:
        document = json.loads(text)
    except ValueError as error:
        raise Unexplainable(f"The trust policy is not valid JSON: {error}.") from error
    statements = document.get("Statement", []) if isinstance(document, dict) else []
    arns = []
    for statement in statements if isinstance(statements, list) else [statements]:
        principal = statement.get("Principal") if isinstance(statement, dict) else None
        federated = principal.get("Federated") if isinstance(principal, dict) else None
        arns += [federated] if isinstance(federated, str) else list(federated or [])
    oidc = [a for a in arns if isinstance(a, str) and ":oidc-provider/" in a]
    for arn in oidc:
        if arn.endswith(f":oidc-provider/{provider}"):
            return arn
    account = oidc[0].split(":")[4] if oidc else "000000000000"
    return f"arn:aws:iam::{account}:oidc-provider/{provider}"


# --- SAML -----------------------------------------------------------------------------


def saml_parameter(data: bytes | str) -> str:
    """The STS's SAMLAssertion parameter (base64) from base64 or the decoded XML."""
    data = (data.encode("utf-8") if isinstance(data, str) else data).strip()
    if data.startswith(b"<"):  # the STS parameter is base64; XML is read the same way
        data = base64.b64encode(data)
    return data.decode("ascii", "replace")


def explain_response(
    response: str,
    policy_text: str,
    *,
    role_arn: str | None = None,
    principal_arn: str | None = None,
    metadata: bytes | None = None,
    metadata_source: str = "the metadata",
    now: datetime.datetime,
) -> Explanation:
    """The trust policy's decision for AssumeRoleWithSAML with this SAMLResponse (base64)."""
    try:
        role_arn, principal_arn = role_pair(response, role_arn, principal_arn)
        if metadata is None:
            read = assertion.read_unverified(
                response, role_arn=role_arn, principal_arn=principal_arn, now=now
            )
            notes = ["signature not checked (no metadata): the assertion's values as sent"]
        else:
            read = assertion.validate(
                response,
                role_arn=role_arn,
                principal_arn=principal_arn,
                provider_metadata=metadata,
                duration_seconds=None,
                role_max_session_duration=assertion.MAX_DURATION,
                now=now,
            )
            notes = [
                f"signature, Issuer, time window and audience checked against {metadata_source}"
            ]
    except StsError as error:
        raise Unexplainable(f"STS would refuse the response: {sts_error_line(error)}") from error
    request = policy.PolicyRequest(
        principal={"Federated": [principal_arn]},
        actions=read.required_actions,
        context=read.policy_context(),
    )
    return _explained(policy_text, request, notes)


def role_pair(response: str, role_arn: str | None, principal_arn: str | None) -> tuple[str, str]:
    if role_arn and principal_arn:
        return role_arn, principal_arn
    pairs = assertion.role_pairs(response)
    matching = [
        p
        for p in pairs
        if (role_arn in (None, p.role_arn)) and (principal_arn in (None, p.provider_arn))
    ]
    if len(matching) != 1:
        offered = "; ".join(f"{p.role_arn} with {p.provider_arn}" for p in pairs) or "none"
        raise Unexplainable(
            f"Name the role and its SAML provider (--role-arn and --principal-arn; on the "
            f"admin page, Role ARN and Provider ARN): the assertion offers {offered}."
        )
    return matching[0].role_arn, matching[0].provider_arn
