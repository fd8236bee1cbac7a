import json
from pathlib import Path

import requests
from django.core.management.base import BaseCommand, CommandError
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from idp.sts import policy
from idp.sts.web_identity_context import web_identity_context

from ._explain import evaluate, read_policy, report
from .check_saml_response import read_input

ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"]


def read_token(value: str) -> str:
    """The token itself, a file holding it, or - for standard input."""
    if value == "-" or (value.count(".") != 2 and Path(value).is_file()):
        data = read_input(value)
        try:
            return data.decode("ascii").strip()
        except UnicodeDecodeError as error:
            raise CommandError(f"{value} does not hold a JWT (not ASCII).") from error
    return value.strip()


def read_jwks(source: str) -> KeySet:
    if source.startswith(("https://", "http://")):
        try:
            answer = requests.get(source, timeout=10)
            answer.raise_for_status()
            data = answer.json()
        except (requests.RequestException, ValueError) as error:
            raise CommandError(f"Cannot fetch the JWKS at {source}: {error}") from error
    else:
        try:
            data = json.loads(read_input(source))
        except ValueError as error:
            raise CommandError(f"{source} is not a JWKS (JSON): {error}") from error
    try:
        return KeySet.import_key_set(data)
    except (JoseError, ValueError, TypeError, KeyError) as error:
        raise CommandError(f"{source} is not a usable JWKS: {error}") from error


class Command(BaseCommand):
    help = (
        "Explain why AssumeRoleWithWebIdentity accepts or refuses a JWT under a trust policy: "
        "which statement applies, which condition fails, the token's value against the "
        "policy's. Exits 0 when allowed, 1 when denied."
    )

    def add_arguments(self, parser):
        parser.add_argument("token", help="the JWT, a file holding it, or - for standard input")
        parser.add_argument("--trust-policy", required=True, help="the role's trust policy (JSON)")
        parser.add_argument("--jwks", help="a JWKS URL or file: verify the token's signature")
        parser.add_argument(
            "--provider-arn",
            help="the IAM OIDC provider's ARN (default: the policy's Federated oidc-provider "
            "for the token's issuer)",
        )

    def handle(self, *args, token, trust_policy, jwks=None, provider_arn=None, **options):
        text = read_policy(trust_policy)
        value = read_token(token)
        notes = []
        try:
            if jwks:
                claims = jwt.decode(value, read_jwks(jwks), algorithms=ALGORITHMS).claims
                notes.append(f"signature verified against {jwks}")
            else:
                claims = json.loads(jws.extract_compact(value.encode("ascii")).payload)
                notes.append("signature not checked (no --jwks)")
        except (JoseError, ValueError, UnicodeError) as error:
            raise CommandError(f"The token is not a valid JWT: {error}") from error
        if not isinstance(claims, dict):
            raise CommandError("The token's payload is not a JSON object.")
        try:
            built = web_identity_context(claims)
        except ValueError as error:
            raise CommandError(f"The token cannot be used: {error}.") from error
        arn = provider_arn or _provider_from_policy(text, built.provider)
        built = web_identity_context(claims, provider_arn=arn)
        request = policy.PolicyRequest(
            principal={"Federated": [arn]}, actions=built.actions, context=built.context
        )
        parsed, decision = evaluate(text, request)
        report(self.stdout, request, parsed, decision, [*notes, *built.notes])
        if not decision.allowed:
            raise SystemExit(1)


def _provider_from_policy(text: str, provider: str) -> str:
    """The policy's oidc-provider ARN for this issuer; else one in the account it names."""
    try:
        document = json.loads(text)
    except ValueError as error:
        raise CommandError(f"The trust policy is not valid JSON: {error}.") from error
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
