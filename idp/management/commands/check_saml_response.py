import argparse
import datetime
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from idp import clock
from idp.saml import aws
from idp.saml.errors import SamlError


def read_input(path: str) -> bytes:
    """A file's bytes, or standard input's for -."""
    try:
        return sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as error:
        raise CommandError(f"Cannot read {path}: {error.strerror}.") from error


def instant(text: str) -> datetime.datetime:
    """An ISO 8601 instant; one without a zone is UTC, as SAML's instants are."""
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 instant") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


class Command(BaseCommand):
    help = (
        "Check a SAMLResponse from any IdP (base64 or XML) against docs/aws-saml-rules.md. "
        "Prints one finding per line; exits 1 if any is an error, or if the response is "
        "refused (a signature-wrapping layout, a disallowed signature, an unusable key)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="the response, or - for standard input")
        parser.add_argument(
            "--metadata", help="the IdP metadata IAM imported: checks signature and Issuer"
        )
        parser.add_argument(
            "--key",
            help="the SP's private key (PEM) to decrypt an EncryptedAssertion, so that the "
            "checks run on what AWS reads (R14)",
        )
        parser.add_argument(
            "--now",
            type=instant,
            help="judge the time window (R12) as of this ISO 8601 instant, such as when the "
            "response was captured; default: now",
        )

    def handle(self, *args, file, metadata=None, key=None, now=None, **options):
        response = read_input(file)
        metadata_xml = read_input(metadata) if metadata else None
        key_pem = read_input(key) if key else None
        try:
            findings = aws.check_response_with_metadata(
                response, metadata_xml, now=now or clock.now(), decryption_key=key_pem
            )
        except SamlError as error:
            line = " ".join(f"{error.title}. {error.detail} {error.hint}".split())
            raise CommandError(line) from error
        for finding in findings:
            self.stdout.write(str(finding))
        errors = sum(f.severity == "error" for f in findings)
        if not findings:
            self.stdout.write("No findings: AWS should accept this response.")
        if metadata_xml is None:
            self.stderr.write(f"Note: without --metadata {aws.WITHOUT_METADATA}")
        if errors:
            raise SystemExit(1)
