from django.core.management.base import BaseCommand, CommandError

from idp import fixtures


class Command(BaseCommand):
    help = (
        "Apply a fixture file (YAML or JSON): users, groups, service providers and claim "
        "rules. Entries it names end up as it says; --prune deletes those it does not name."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="the fixture file")
        parser.add_argument(
            "--prune",
            action="store_true",
            help="also delete the users, groups, service providers and global claim rules the "
            "file does not name (never staff or superusers)",
        )

    def handle(self, *args, file, prune, **options):
        try:
            summary = fixtures.load_file(file, prune=prune)
        except fixtures.FixtureError as error:
            raise CommandError(f"{error.title}. {error.detail} {error.hint}".strip()) from error
        self.stdout.write(f"Loaded {file}: {summary}.")
