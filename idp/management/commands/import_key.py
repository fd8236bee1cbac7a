from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from idp import keys


class Command(BaseCommand):
    help = (
        "Bring an existing key and certificate (say, one IAM already trusts): it becomes the "
        "active key if there is none, else the next key."
    )

    def add_arguments(self, parser):
        parser.add_argument("--key", required=True, help="PEM private key (unencrypted)")
        parser.add_argument("--cert", required=True, help="PEM certificate")

    def handle(self, *args, key, cert, **options):
        try:
            key_pem, cert_pem = Path(key).read_bytes(), Path(cert).read_bytes()
        except OSError as error:
            raise CommandError(f"Cannot read {error.filename}: {error.strerror}.") from error
        try:
            stored = keys.import_key(key_pem, cert_pem)
        except keys.KeyLifecycleError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"Imported key {stored.fingerprint} as {stored.state}.")
        if stored.state == "next":
            self.stdout.write("Push the metadata to IAM, then run `rotate_key activate`.")
