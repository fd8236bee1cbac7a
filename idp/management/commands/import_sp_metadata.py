from django.core.management.base import BaseCommand, CommandError

from idp.management.commands.check_saml_response import read_input
from idp.presets import RULE_SETS
from idp.registry import register_from_metadata
from idp.saml.errors import SamlError


class Command(BaseCommand):
    help = (
        "Register a service provider from its metadata XML, or update the one already registered."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="SP metadata XML file, or - for standard input")
        parser.add_argument("--name", default="", help="display name (default: the entity ID)")
        parser.add_argument(
            "--rule-set",
            default="",
            choices=["", *sorted(RULE_SETS)],
            help="also apply a ready-made rule set (aws-identity-center for Identity Center)",
        )

    def handle(self, *args, file, name, rule_set, **options):
        xml = read_input(file)
        try:
            sp, created = register_from_metadata(xml, name, rule_set)
        except SamlError as error:
            raise CommandError(f"{error.title}. {error.detail} {error.hint}".strip()) from error
        verb = "Registered" if created else "Updated"
        endpoints = ", ".join(e.location for e in sp.endpoints.all())
        self.stdout.write(f"{verb} {sp.entity_id} (ACS: {endpoints})")
