from pathlib import Path

from django.core.management.base import BaseCommand

from ._explain import (
    Unexplainable,
    explain_token,
    is_url,
    jwks_from_json,
    jwks_from_url,
    read_policy,
    report,
)
from .check_saml_response import read_input


def read_token(value: str) -> str:
    """The token itself, a file holding it, or - for standard input."""
    if value == "-" or (value.count(".") != 2 and Path(value).is_file()):
        data = read_input(value)
        try:
            return data.decode("ascii").strip()
        except UnicodeDecodeError as error:
            raise Unexplainable(f"{value} does not hold a JWT (not ASCII).") from error
    return value.strip()


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
        keys = None
        if jwks:
            keys = jwks_from_url(jwks) if is_url(jwks) else jwks_from_json(read_input(jwks), jwks)
        explanation = explain_token(
            value, text, jwks=keys, jwks_source=jwks or "", provider_arn=provider_arn
        )
        report(self.stdout, explanation)
        if not explanation.allowed:
            raise SystemExit(1)
