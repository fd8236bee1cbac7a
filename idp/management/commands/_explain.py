"""What explain_saml and explain_web_identity share: reading inputs, evaluating, printing.

(The leading underscore keeps Django from taking this module for a command.)
"""

import json

from django.core.management.base import CommandError

from idp.sts import policy
from idp.sts.errors import StsError

from .check_saml_response import read_input


def read_policy(path: str) -> str:
    data = read_input(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CommandError(f"The trust policy {path} is not UTF-8 text.") from error


def sts_error_line(error: StsError) -> str:
    return " ".join(f"{error.code}: {error.message} {' '.join(error.explanation)}".split())


def evaluate(text: str, request: policy.PolicyRequest) -> tuple[policy.Policy, policy.Decision]:
    try:
        parsed = policy.parse_policy(text)
        return parsed, policy.evaluate(parsed, request)
    except StsError as error:
        raise CommandError(f"The trust policy is refused: {sts_error_line(error)}") from error


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


def report(stdout, request: policy.PolicyRequest, parsed, decision, notes=()) -> None:
    for note in notes:
        stdout.write(f"Note: {note}")
    principal = json.dumps({k: list(v) for k, v in request.principal.items()})
    stdout.write(f"Principal: {principal}")
    stdout.write(f"Actions: {', '.join(request.actions)}")
    stdout.write("Context:")
    for key, value in request.context.items():
        stdout.write(f"  {key} = {json.dumps(value, ensure_ascii=False)}")
    if decision.allowed:
        stdout.write("ALLOWED")
    else:
        stdout.write(f"DENIED: {decision.denied_action}")
    for line in decision.explanation:
        stdout.write(f"  {line}")
    if not decision.allowed:
        for hint in hints(parsed, request.context):
            stdout.write(f"Hint: {hint}")
