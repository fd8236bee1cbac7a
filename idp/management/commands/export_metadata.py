from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from idp import identity
from idp.saml.errors import SamlError


class Command(BaseCommand):
    help = "Print this IdP's SAML metadata (what IAM's create-saml-provider imports)."

    def add_arguments(self, parser):
        parser.add_argument("--output", "-o", help="write to this file instead of standard output")

    def handle(self, *args, output=None, **options):
        try:
            xml = identity.metadata_xml()
        except SamlError as error:
            raise CommandError(f"{error.title}. {error.detail} {error.hint}") from error
        if output:
            Path(output).write_bytes(xml)
            self.stderr.write(f"Wrote {output}")
        else:
            self.stdout.write(xml.decode())
