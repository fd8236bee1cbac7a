from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from idp import keys
from idp.saml.errors import SamlError


class Command(BaseCommand):
    help = (
        "Write a signing key from the database as FINGERPRINT.key (mode 0600) and "
        "FINGERPRINT.crt, the files `import_key` reads (say, to bring it to another database)."
    )

    def add_arguments(self, parser):
        parser.add_argument("fingerprint", help="a key (prefix suffices)")
        parser.add_argument(
            "--out", type=Path, help="directory to write into (default: IDP_CERTS_DIR)"
        )

    def handle(self, *args, fingerprint, out, **options):
        try:
            key, key_path, cert_path = keys.export_key(fingerprint, out or keys.certs_dir())
        except keys.KeyLifecycleError as error:
            raise CommandError(str(error)) from error
        except SamlError as error:
            raise CommandError(f"{error} {error.hint}") from error
        except OSError as error:
            raise CommandError(f"Cannot write {error.filename}: {error.strerror}.") from error
        self.stdout.write(
            f"Exported key {key.fingerprint} ({key.state}) to {key_path} and {cert_path}."
        )
