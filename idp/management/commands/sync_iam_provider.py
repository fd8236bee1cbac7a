from django.core.management.base import BaseCommand, CommandError

from idp.iam import SyncError
from idp.management.commands._iam_options import add_iam_options, provider_name, sync
from idp.management.commands._identity_note import identity_note
from idp.saml.errors import SamlError


class Command(BaseCommand):
    help = "Create or update the IAM SAML provider with this IdP's current metadata."

    def add_arguments(self, parser):
        parser.add_argument(
            "--name", required=True, type=provider_name, help="the IAM SAML provider name"
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="print the AWS CLI commands instead"
        )
        add_iam_options(parser)

    def handle(self, *args, name, dry_run, **options):
        try:
            self.stdout.write(sync(name, options, dry_run=dry_run))
        except SyncError as error:
            raise CommandError(str(error)) from error
        except SamlError as error:
            raise CommandError(f"{error.title}. {error.hint}") from error
        self.stderr.write(identity_note())
