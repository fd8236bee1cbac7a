import base64

from django.core.management.base import BaseCommand, CommandError

from idp import clock
from idp.sts import assertion, policy
from idp.sts.errors import StsError

from ._explain import evaluate, read_policy, report, sts_error_line
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
        data = read_input(file).strip()
        if data.startswith(b"<"):  # the STS parameter is base64; XML is read the same way
            data = base64.b64encode(data)
        response = data.decode("ascii", "replace")
        metadata = read_input(options["metadata"]) if options.get("metadata") else None
        now = options.get("now") or clock.now()
        try:
            role_arn, principal_arn = _pair(response, role_arn, principal_arn)
            if metadata is None:
                read = assertion.read_unverified(
                    response, role_arn=role_arn, principal_arn=principal_arn, now=now
                )
                notes = ["signature not checked (no --metadata): the assertion's values as sent"]
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
                notes = ["signature, Issuer, time window and audience checked against --metadata"]
        except StsError as error:
            raise CommandError(f"STS would refuse the response: {sts_error_line(error)}") from error
        request = policy.PolicyRequest(
            principal={"Federated": [principal_arn]},
            actions=read.required_actions,
            context=read.policy_context(),
        )
        parsed, decision = evaluate(text, request)
        report(self.stdout, request, parsed, decision, notes)
        if not decision.allowed:
            raise SystemExit(1)


def _pair(response: str, role_arn: str | None, principal_arn: str | None) -> tuple[str, str]:
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
        raise CommandError(
            f"Name the role with --role-arn and --principal-arn: the assertion offers {offered}."
        )
    return matching[0].role_arn, matching[0].provider_arn
