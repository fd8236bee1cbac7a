import argparse
import datetime

from django.core.management.base import BaseCommand, CommandError

from idp.oidc import issue, tokens
from idp.saml.errors import SamlError


def instant(text: str) -> datetime.datetime:
    try:
        value = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give an ISO time such as 2026-01-01T12:00:00Z"
        ) from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give a time zone, such as a trailing Z")
    return value


def seconds(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= tokens.MAX_LIFETIME:
        raise argparse.ArgumentTypeError(f"{text!r}: give seconds from 1 to {tokens.MAX_LIFETIME}")
    return int(text)


class Command(BaseCommand):
    help = (
        "Print a web-identity token (a JWT signed with the active JWT key, issuer "
        "{IDP_BASE_URL}/oidc) as GitHub Actions, EKS or GitLab CI would issue it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--preset", choices=sorted(tokens.PRESETS))
        parser.add_argument("--repo", default="", help="github: ORG/REPO; gitlab: GROUP/PROJECT")
        parser.add_argument("--ref", default="", help="github/gitlab: refs/heads/main")
        parser.add_argument("--environment", default="", help="github/gitlab: a deployment env")
        parser.add_argument("--pull-request", action="store_true", help="github: a PR's token")
        parser.add_argument("--namespace", default="default", help="eks: the namespace")
        parser.add_argument("--service-account", default="default", help="eks: the account")
        parser.add_argument("--sub", default="", help="the subject (overrides the preset's)")
        parser.add_argument("--aud", default="", help="the audience (default sts.amazonaws.com)")
        parser.add_argument(
            "--claim", action="append", default=[], help="NAME=VALUE or NAME:=JSON (repeatable)"
        )
        parser.add_argument("--lifetime", type=seconds, help="seconds (preset's default)")
        parser.add_argument("--now", type=instant, help="the issue time (default: the clock)")
        parser.add_argument(
            "--fault",
            choices=list(tokens.FAULTS),
            help="break the token on purpose (docs/scenarios.md, token faults): "
            + "; ".join(f"{f.name}: {f.aws_code}" for f in tokens.FAULTS.values()),
        )

    def handle(self, *args, preset, sub, aud, claim, lifetime, now, fault=None, **o):
        options = tokens.Options(
            repo=o["repo"],
            ref=o["ref"],
            environment=o["environment"],
            pull_request=o["pull_request"],
            namespace=o["namespace"],
            service_account=o["service_account"],
        )
        try:
            claims = dict(issue.parse_claim(text) for text in claim)
            minted = issue.issue(
                preset=preset,
                options=options,
                sub=sub,
                aud=aud,
                claims=claims,
                lifetime=lifetime,
                now=now,
                fault=fault,
            )
        except tokens.TokenError as error:
            raise CommandError(str(error)) from error
        except SamlError as error:
            raise CommandError(f"{error.title}. {error.detail} {error.hint}") from error
        if minted.fault:
            self.stderr.write(f"Broken on purpose by the token fault {minted.fault}.")
        self.stdout.write(minted.token)
