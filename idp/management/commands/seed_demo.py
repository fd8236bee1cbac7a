"""The demo directory (and the AWS preset) that README, tests and checks rely on.

The demo is a fixture file (idp/fixture_data/demo.yaml), loaded like any other. Without
--reset only what is missing is created, so running it at every start keeps an operator's
changes; --reset puts everything the demo names back as the file says.
"""

from django.core.management.base import BaseCommand, CommandError

from idp import fixtures
from users.models import User


class Command(BaseCommand):
    help = (
        "Create what is missing of the demo users alice, bob, carol and the staff superuser "
        "admin; --reset restores them (passwords, attributes, groups)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset",
            action="store_true",
            help="restore the demo users' passwords, fields, attributes and group memberships, "
            "undoing any change made to them",
        )

    def handle(self, *args, reset=False, **options):
        data = fixtures.read(fixtures.DEMO)
        usernames = [user["username"] for user in data["users"]]
        existing = set(
            User.objects.filter(username__in=usernames).values_list("username", flat=True)
        )
        try:
            # `make run` seeds on every start: without --reset, an operator's changes to the
            # demo (and their signed-in sessions, through the password) survive it.
            fixtures.load(data, source=str(fixtures.DEMO), missing_only=not reset)
        except fixtures.FixtureError as error:
            raise CommandError(f"{error.title}. {error.detail} {error.hint}".strip()) from error
        if reset:
            self.stdout.write(
                f"Demo directory reset: {', '.join(usernames)} (password = user name)."
            )
            return
        created = [name for name in usernames if name not in existing]
        kept = [name for name in usernames if name in existing]
        if created:
            self.stdout.write(f"Demo users created: {', '.join(created)} (password = user name).")
        if kept:
            self.stdout.write(
                f"Demo users left as they are: {', '.join(kept)}. "
                "`manage.py seed_demo --reset` restores them."
            )
