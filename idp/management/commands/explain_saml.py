from django.core.management.base import BaseCommand

from idp import clock

from ._explain import explain_response, read_policy, report, saml_parameter
from .check_saml_response import instant, read_input


class Command(BaseCommand):
    help = (
        "Explain why AssumeRoleWithSAML accepts or refuses a SAMLResponse under a trust "
        "policy: which statement applies, which condition fails, the assertion's value "
        "against the policy's. Exits 0 when allowed, 1 when denied."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="the response (base64 or XML), or - for standard input")
        parser.add_argument("--trust-policy", required=True, help="the role's trust policy (JSON)")
        parser.add_argument("--role-arn", help="the role (default: the assertion's only one)")
        parser.add_argument("--principal-arn", help="the SAML provider paired with the role")
        parser.add_argument(
            "--metadata",
            help="the IdP metadata IAM holds: validate the response fully, as the local STS does",
        )
        parser.add_argument(
            "--now", type=instant, help="judge the time window as of this ISO 8601 instant"
        )

    def handle(self, *args, file, trust_policy, role_arn=None, principal_arn=None, **options):
        text = read_policy(trust_policy)
        response = saml_parameter(read_input(file))
        metadata = read_input(options["metadata"]) if options.get("metadata") else None
        explanation = explain_response(
            response,
            text,
            role_arn=role_arn,
            principal_arn=principal_arn,
            metadata=metadata,
            metadata_source="--metadata",
            now=options.get("now") or clock.now(),
        )
        report(self.stdout, explanation)
        if not explanation.allowed:
            raise SystemExit(1)
