"""What `make run` does to the database before serving, as one process under one lock.

migrate, then the directory (the demo, or a fixture file), then the signing keys: each host
of a deployment runs it at start, and any number may start at once on an empty database
(idp/startup_lock.py). Whoever comes second waits, then finds the work done: migrate has
nothing to apply, seeding keeps what exists, and the active keys are there.
"""

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import OperationalError, connection

from idp import startup_lock


class Command(BaseCommand):
    help = (
        "Migrate, seed the demo directory (or load --fixtures FILE) and ensure the signing "
        "keys, under the database's start-up lock, so that several hosts can start at once."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--fixtures",
            metavar="FILE",
            default="",
            help="load this fixture file instead of seeding the demo directory",
        )

    def handle(self, *args, fixtures="", **options):
        verbosity = options["verbosity"]
        try:
            with startup_lock.held():
                call_command("migrate", interactive=False, verbosity=max(verbosity - 1, 0))
                if fixtures:
                    call_command("load_fixtures", fixtures, stdout=self.stdout)
                else:
                    call_command("seed_demo", stdout=self.stdout)
                call_command("ensure_signing_key", stdout=self.stdout)
        except startup_lock.StartupLockError as error:
            raise CommandError(str(error)) from error
        except OperationalError as error:
            # Most often a server that is down or a wrong DATABASE_URL: one line, never a
            # traceback, and never the URL itself (it may hold a password).
            database = connection.settings_dict
            where = f"{connection.vendor} database {database['NAME']!s}"
            if database.get("HOST"):
                where += f" on {database['HOST']}:{database.get('PORT') or 'default port'}"
            reason = " ".join(str(error).split())
            if not reason.endswith((".", "?", "!")):
                reason += "."
            raise CommandError(
                f"Cannot start on the {where}: {reason} Check that the server is up and that "
                "DATABASE_URL names it."
            ) from None
