"""The demo directory (and the AWS preset) that README, tests and checks rely on.

Creates only what is missing, so running it at every start keeps an operator's changes;
--reset puts the demo users back as they were.
"""

from django.core.management.base import BaseCommand
from django.db import transaction

from idp.models import ServiceProvider
from idp.presets import ensure_aws_preset
from users.models import Group, User, UserAttribute

DEMO_USERS = [
    {
        "username": "alice",
        "email": "alice@example.com",
        "first_name": "Alice",
        "last_name": "Anders",
        "attributes": {"department": ["Engineering"], "costCenter": ["4711"]},
        "groups": [
            "AWS-111122223333-Admin",
            "AWS-111122223333-ReadOnly",
            "AWS-444455556666-Developer",
            "Engineering",
        ],
    },
    {
        "username": "bob",
        "email": "bob@example.com",
        "first_name": "Bob",
        "last_name": "Berg",
        "attributes": {"department": ["Finance"], "costCenter": ["1234"]},
        "groups": ["AWS-111122223333-ReadOnly", "Finance"],
    },
    {
        "username": "carol",
        "email": "carol@example.com",
        "first_name": "Carol",
        "last_name": "Clark",
        "attributes": {},
        "groups": [],
    },
]


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

    @transaction.atomic
    def handle(self, *args, reset=False, **options):
        # `make run` seeds on every start: without --reset, an operator's changes to the
        # demo users (and their signed-in sessions, through the password) survive it.
        seeds = [(spec["username"], lambda spec=spec: self._seed_user(spec)) for spec in DEMO_USERS]
        seeds.append(("admin", self._seed_admin))
        created, kept = [], []
        for username, seed in seeds:
            exists = User.objects.filter(username=username).exists()
            if not exists or reset:
                seed()
            (kept if exists and not reset else created).append(username)
        ensure_aws_preset(ServiceProvider)
        if reset:
            self.stdout.write(f"Demo directory reset: {', '.join(created)} (password = user name).")
            return
        if created:
            self.stdout.write(f"Demo users created: {', '.join(created)} (password = user name).")
        if kept:
            self.stdout.write(
                f"Demo users left as they are: {', '.join(kept)}. "
                "`manage.py seed_demo --reset` restores them."
            )

    @staticmethod
    def _seed_user(spec: dict) -> None:
        user, _ = User.objects.update_or_create(
            username=spec["username"],
            defaults={
                "email": spec["email"],
                "first_name": spec["first_name"],
                "last_name": spec["last_name"],
                "is_active": True,
            },
        )
        user.set_password(spec["username"])
        user.save()
        user.attributes.all().delete()
        UserAttribute.objects.bulk_create(
            UserAttribute(user=user, name=name, value=value)
            for name, values in spec["attributes"].items()
            for value in values
        )
        groups = [Group.objects.get_or_create(name=name)[0] for name in spec["groups"]]
        user.directory_groups.set(groups)

    @staticmethod
    def _seed_admin() -> None:
        admin, _ = User.objects.update_or_create(
            username="admin",
            defaults={"email": "admin@example.com", "is_staff": True, "is_superuser": True},
        )
        admin.set_password("admin")
        admin.save()
