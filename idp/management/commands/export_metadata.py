from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from idp import identity
from idp.management.commands._identity_note import identity_note
from idp.saml.errors import SamlError


class Command(BaseCommand):
    help = "Print this IdP's SAML metadata (what IAM's create-saml-provider imports)."

    def add_arguments(self, parser):
        parser.add_argument("--output", "-o", help="write to this file instead of standard output")
        parser.add_argument(
            "--signed", action="store_true", help="sign the metadata with the active key"
        )

    def handle(self, *args, output=None, signed=False, **options):
        try:
            xml = identity.metadata_xml(signed=signed)
        except SamlError as error:
            raise CommandError(f"{error.title}. {error.detail} {error.hint}") from error
        self.stderr.write(identity_note())
        if output:
            try:
                Path(output).write_bytes(xml)
            except OSError as error:
                raise CommandError(f"Cannot write {output}: {error.strerror or error}.") from error
            self.stderr.write(f"Wrote {output}")
        else:
            self.stdout.write(xml.decode())
