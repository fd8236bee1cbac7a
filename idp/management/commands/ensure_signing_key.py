from django.core.management.base import BaseCommand, CommandError

from idp import keys
from idp.saml.errors import SamlError


class Command(BaseCommand):
    help = (
        "Make sure an active SAML and an active JWT signing key exist in the database, "
        "generating RSA-2048 + self-signed cert if not; keys from before keys lived in the "
        "database are moved there from IDP_CERTS_DIR."
    )

    def handle(self, *args, **options):
        try:
            # The one-time move: rows that name a key in IDP_CERTS_DIR take its material.
            for fingerprint in keys.adopt_all_key_files():
                self.stdout.write(
                    f"Moved key {fingerprint} from {keys.certs_dir()} into the database"
                )
            # Both uses: `make run` runs this, and /oidc/ needs a JWT key as sign-ons a SAML one.
            report = []
            for use, what in ((keys.SAML, "signing key"), (keys.Use.JWT, "JWT signing key")):
                key, created = keys.ensure_active_key(use)
                verb = "Generated" if created else "Using"
                report.append(
                    f"{verb} {what} {key.fingerprint} "
                    f"(valid until {key.not_valid_after:%Y-%m-%d}) in the database"
                )
            # A host whose KEK decrypts none of them must not start as if it could sign. (A
            # row from before, whose files are on another host, waits for that host.)
            stored = keys.SigningKey.objects.exclude(private_key_encrypted="")
            for key in stored.exclude(state=keys.State.RETIRED):
                keys.key_material(key.fingerprint, key.private_key_encrypted, key.certificate_pem)
        except (SamlError, keys.KeyLifecycleError) as error:
            raise CommandError(f"{error} {getattr(error, 'hint', '')}".strip()) from error
        # Only once every key decrypts: "Using key …" before a refusal would mislead.
        for line in report:
            self.stdout.write(line)
