"""The demo directory (and the AWS preset) that README, tests and checks rely on. Idempotent."""

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
    help = "Create or reset the demo users alice, bob, carol and the staff superuser admin."

    @transaction.atomic
    def handle(self, *args, **options):
        for spec in DEMO_USERS:
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
        admin, _ = User.objects.update_or_create(
            username="admin",
            defaults={"email": "admin@example.com", "is_staff": True, "is_superuser": True},
        )
        admin.set_password("admin")
        admin.save()
        ensure_aws_preset(ServiceProvider)
        self.stdout.write(
            "Demo directory ready: alice, bob, carol and admin (password = user name)."
        )
