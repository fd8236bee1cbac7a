from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from idp import fixtures


class Command(BaseCommand):
    help = (
        "Write the users, groups, service providers and claim rules as a fixture file that "
        "load_fixtures reads back to the same state (passwords as hashes)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--output", help="write to this file (default: standard output)")

    def handle(self, *args, output=None, **options):
        text = fixtures.to_yaml(fixtures.dump())
        if not output:
            self.stdout.write(text, ending="")
            return
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as error:
            raise CommandError(f"Cannot write {output}: {error.strerror}.") from error
        self.stderr.write(f"Wrote {output}.")
