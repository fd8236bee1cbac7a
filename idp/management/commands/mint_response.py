import dataclasses
import json

from django.core.management.base import BaseCommand, CommandError

from idp import scenarios, sso
from idp.saml.errors import SamlError

from .check_saml_response import instant


class Command(BaseCommand):
    help = (
        "Mint a signed SAMLResponse for USER at SP, as their browser sign-on would get it "
        "(the same claim rules, key, checks and audit), optionally broken on purpose by a "
        "fault scenario (docs/scenarios.md). Prints the base64 SAMLResponse; the AWS checker's "
        "findings go to stderr."
    )

    def add_arguments(self, parser):
        parser.add_argument("user", help="the directory user name")
        parser.add_argument("sp", help="the service provider's entity ID")
        parser.add_argument("--role", default="", help="only this role ARN (AWS)")
        parser.add_argument(
            "--scenario",
            help=f"a fault scenario, name or name:value ({', '.join(scenarios.CATALOGUE)})",
        )
        parser.add_argument("--relay-state", default="", help="the RelayState to post with it")
        parser.add_argument(
            "--in-response-to",
            help="the ID of the SP's AuthnRequest (default: an IdP-initiated response)",
        )
        parser.add_argument(
            "--now", type=instant, help="issue it as of this ISO 8601 instant (default: now)"
        )
        parser.add_argument(
            "--authn-context",
            default="",
            help="how the user signed in: a class URI or short name (Password, X509, Kerberos, "
            "MFA, ...); default PasswordProtectedTransport",
        )
        parser.add_argument(
            "--format",
            choices=["base64", "xml", "json"],
            default="base64",
            help="base64: the SAMLResponse field; xml: the decoded XML; json: every field",
        )

    def handle(self, *args, user, sp, role, scenario, relay_state, in_response_to, now, **options):
        try:
            minted = sso.mint(
                user,
                sp,
                role_arn=role,
                relay_state=relay_state,
                in_response_to=in_response_to,
                scenario=scenario,
                now=now,
                authn_context_class=options["authn_context"],
            )
        except SamlError as error:
            line = " ".join(f"{error.title}. {error.detail} {error.hint}".split())
            raise CommandError(line) from error
        if options["format"] == "json":
            fields = dataclasses.asdict(minted)
            self.stdout.write(json.dumps(fields, indent=2))
            return
        self.stdout.write(minted.xml if options["format"] == "xml" else minted.saml_response)
        for finding in minted.findings:
            self.stderr.write(str(finding))
        if minted.scenario:
            self.stderr.write(f"Broken on purpose by the fault scenario {minted.scenario}.")
