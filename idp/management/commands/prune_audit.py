import argparse

from django.core.management.base import BaseCommand
from django.utils import timezone

from idp import audit
from idp.conf import idp_settings


def retention_days(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 36500:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of days from 1 to 36500")
    return int(text)


class Command(BaseCommand):
    help = (
        "Delete audit events older than the retention period "
        "(IDP_AUDIT_RETENTION_DAYS, 90 days unless set)."
    )
    stealth_options = ("now",)  # tests pass the clock

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=retention_days,
            help="keep this many days instead of IDP_AUDIT_RETENTION_DAYS",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="only say how many events would go"
        )

    def handle(self, *args, days=None, dry_run=False, now=None, **options):
        days = days or idp_settings.IDP_AUDIT_RETENTION_DAYS
        count, cutoff = audit.prune(days, now or timezone.now(), dry_run=dry_run)
        verb = "Would delete" if dry_run else "Deleted"
        self.stdout.write(
            f"{verb} {count} audit event{'' if count == 1 else 's'} from before "
            f"{cutoff:%Y-%m-%d %H:%M}Z (keeping {days} days)."
        )
