import argparse
import datetime

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from idp.api.models import SCOPES, ApiToken


def days(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 36500:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of days from 1 to 36500")
    return int(text)


class Command(BaseCommand):
    help = (
        "Issue an API token for a staff user and print it, once, on standard output "
        "(fedmock keeps only its SHA-256 digest). The user's model permissions apply to it."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--scope",
            action="append",
            choices=list(SCOPES),
            dest="scopes",
            help="repeat for several; default: all ("
            + "; ".join(f"{name}: {meaning}" for name, meaning in SCOPES.items())
            + ")",
        )
        parser.add_argument("--name", default="", help="what the token is for")
        parser.add_argument("--expires-days", type=days, help="default: never expires")

    def handle(self, *args, username, scopes, name, expires_days, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"There is no user {username!r}; create a staff user first.")
        expires_at = (
            timezone.now() + datetime.timedelta(days=expires_days) if expires_days else None
        )
        try:
            _, text = ApiToken.issue(
                user,
                name=name,
                scopes=sorted(set(scopes or ()), key=list(SCOPES).index) or None,
                expires_at=expires_at,
            )
        except ValidationError as error:
            raise CommandError(" ".join(" ".join(error.messages).split())) from error
        self.stdout.write(text)
