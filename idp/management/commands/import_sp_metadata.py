from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from idp.registry import register_from_metadata
from idp.saml.errors import SamlError


class Command(BaseCommand):
    help = (
        "Register a service provider from its metadata XML, or update the one already registered."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="SP metadata XML file, or - for standard input")
        parser.add_argument("--name", default="", help="display name (default: the entity ID)")

    def handle(self, *args, file, name, **options):
        try:
            xml = self.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
        except OSError as error:
            raise CommandError(f"Cannot read {file}: {error.strerror}.") from error
        try:
            sp, created = register_from_metadata(xml, name)
        except SamlError as error:
            raise CommandError(f"{error.title}. {error.detail} {error.hint}".strip()) from error
        verb = "Registered" if created else "Updated"
        endpoints = ", ".join(e.location for e in sp.endpoints.all())
        self.stdout.write(f"{verb} {sp.entity_id} (ACS: {endpoints})")
