from django.core.management.base import BaseCommand

from idp import keys


class Command(BaseCommand):
    help = "Make sure an active signing key exists, generating RSA-2048 + self-signed cert if not."

    def handle(self, *args, **options):
        key, created = keys.ensure_active_key()
        verb = "Generated" if created else "Using"
        self.stdout.write(
            f"{verb} signing key {key.fingerprint} (valid until {key.not_valid_after:%Y-%m-%d}) "
            f"in {keys.certs_dir()}"
        )
