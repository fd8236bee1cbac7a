from django.core.management.base import BaseCommand

from idp import keys


class Command(BaseCommand):
    help = (
        "Make sure an active SAML and an active JWT signing key exist, generating RSA-2048 + "
        "self-signed cert if not."
    )

    def handle(self, *args, **options):
        # Both uses: `make run` runs this, and /oidc/ needs a JWT key as sign-ons a SAML one.
        for use, what in ((keys.SAML, "signing key"), (keys.Use.JWT, "JWT signing key")):
            key, created = keys.ensure_active_key(use)
            verb = "Generated" if created else "Using"
            self.stdout.write(
                f"{verb} {what} {key.fingerprint} (valid until {key.not_valid_after:%Y-%m-%d}) "
                f"in {keys.certs_dir()}"
            )
