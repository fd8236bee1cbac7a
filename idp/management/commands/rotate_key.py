import argparse
import os
import time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from idp import keys, workers
from idp.iam import SyncError, cli_commands
from idp.management.commands._iam_options import add_iam_options, add_sync_option, sync
from idp.management.commands._identity_note import identity_note
from idp.models import SigningKey
from idp.saml.errors import SamlError


def lifetime_days(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 36500:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of days from 1 to 36500")
    return int(text)


def timeout_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of seconds from 0 to 3600")
    return seconds


# Workers acknowledge a step within about a second; a worker that stopped is not waited
# for after five heartbeats (10 s by default), so 30 s fails only on one that is stuck.
DEFAULT_TIMEOUT = 30.0

NEXT_STEPS = {
    "stage": "The metadata now publishes the next key beside the active one. Push it to IAM, "
    "then run `rotate_key activate`.",
    "activate": "The new key signs; the old one stays published. Once every SP has the new "
    "metadata, run `rotate_key retire`.",
    "retire": "The old key is no longer published. Push the metadata to IAM once more.",
}

# JWT keys are fetched from /oidc/jwks by the verifiers (IAM, the local STS): no push.
JWT_NEXT_STEPS = {
    "stage": "/oidc/jwks now publishes the next key beside the active one. Once verifiers have "
    "refetched it, run `rotate_key activate --use jwt`.",
    "activate": "The new key signs tokens; the old one stays in /oidc/jwks. Once every token "
    "it signed has expired, run `rotate_key retire --use jwt`.",
    "retire": "The old key is no longer in /oidc/jwks.",
}


class Command(BaseCommand):
    help = (
        "Roll a signing key over (--use saml, the default, or jwt): status, stage (publish a "
        "next key), activate, retire."
    )
    sleep = staticmethod(time.sleep)  # tests replace it, so that they never sleep

    def add_arguments(self, parser):
        parser.add_argument("step", choices=["status", "stage", "activate", "retire"])
        parser.add_argument("fingerprint", nargs="?", default="", help="a key (prefix suffices)")
        parser.add_argument(
            "--days", type=lifetime_days, default=3650, help="stage: certificate lifetime"
        )
        parser.add_argument(
            "--timeout",
            type=timeout_seconds,
            default=DEFAULT_TIMEOUT,
            help="seconds to wait for every live worker on every host to load the previous "
            f"step's keys, then fail naming those behind (default {DEFAULT_TIMEOUT:.0f})",
        )
        parser.add_argument(
            "--no-wait", action="store_true", help="the same as --timeout 0: fail at once"
        )
        parser.add_argument(
            "--use",
            choices=SigningKey.Use.values,
            help="which keys: saml (metadata; the steps' default) or jwt (the OIDC JWKS); "
            "status without it lists both",
        )
        add_sync_option(parser)
        add_iam_options(parser)

    def handle(self, *args, step, fingerprint, days, timeout, no_wait, sync_iam, use, **options):
        if step == "status":
            self._status(use)
            return
        use = use or SigningKey.Use.SAML
        if use == SigningKey.Use.JWT and sync_iam:
            raise CommandError(
                "--sync-iam pushes SAML metadata; JWT keys reach IAM through /oidc/jwks by "
                "themselves. Drop --sync-iam."
            )
        key = self._run(step, fingerprint, days, 0.0 if no_wait else timeout, use)
        self.stdout.write(f"{step}: {key.use} key {key.fingerprint} is now {key.state}.")
        if key.use == SigningKey.Use.JWT:
            self.stdout.write(JWT_NEXT_STEPS[step])
            return
        self.stdout.write(NEXT_STEPS[step])
        if sync_iam:
            try:
                self.stdout.write(sync(sync_iam, options))
            except SyncError as error:
                raise CommandError(str(error)) from error
            except SamlError as error:
                raise CommandError(f"{error.title}. {error.detail} {error.hint}") from error
            self.stderr.write(identity_note())
        else:
            self.stdout.write(
                "To update IAM:\n  python manage.py export_metadata -o fedmock-metadata.xml"
            )
            self.stdout.write("  " + cli_commands("fedmock", "fedmock-metadata.xml")[1])
            self.stdout.write("  (or: python manage.py sync_iam_provider --name fedmock)")

    def _run(self, step: str, fingerprint: str, days: int, timeout: float, use: str) -> SigningKey:
        steps = {
            "stage": lambda: keys.stage(valid_days=days, use=use),
            "activate": lambda: keys.activate(fingerprint, use=use),
            "retire": lambda: keys.retire(fingerprint, use=use),
        }
        try:
            return keys.wait_and_retry(
                steps[step],
                sleep=self.sleep,
                on_wait=lambda error: self.stdout.write(
                    f"Waiting for {', '.join(error.behind)} to load the keys of the previous "
                    "step..."
                ),
                patience=timeout,
            )
        except keys.KeyLifecycleError as error:
            raise CommandError(str(error)) from error

    def _status(self, use: str | None) -> None:
        self._keys(use)
        self._workers(use)

    def _workers(self, use: str | None) -> None:
        """Who a rollover step waits for, and whether each has loaded the current keys."""
        beats = workers.live()
        window = workers.live_window().total_seconds()
        if not beats:
            self.stdout.write(
                f"No worker beat in the last {window:.0f} s (only gunicorn workers report; "
                "a step waits for none)."
            )
            return
        self.stdout.write(f"Workers that beat in the last {window:.0f} s:")
        uses = [use] if use else SigningKey.Use.values
        expected = {use: keys.key_set_of(keys.state_rows(use)) for use in uses}
        for beat in beats:
            behind = [use for use in uses if not beat.reports(use, expected[use])]
            verdict = f"behind on {', '.join(behind)}" if behind else "up to date"
            details = "; ".join(f"{use}: {beat.loaded(use)}" for use in behind)
            self.stdout.write(f"  {beat.label()}  {verdict}" + (f" ({details})" if details else ""))

    def _keys(self, use: str | None) -> None:
        rows = SigningKey.objects.annotate(is_signer=keys.is_signer_expression())
        if use:
            rows = rows.filter(use=use)
        now = timezone.now()
        for key in rows.order_by("use", "created_at"):
            # The role says what the key does for its use, as the admin and the API say it:
            # "signs tokens", "published in /oidc/jwks", not a bare "signs" or "published"
            # (the state column already says "retired").
            role = keys.role(key, key.is_signer).removeprefix("retired: ")
            self.stdout.write(
                f"{key.use:4}  {key.fingerprint[:16]}  {key.state:8} "
                f"valid until {key.not_valid_after:%Y-%m-%d} "
                f"({(key.not_valid_after - now).days} days left)  {role}{_unusable_here(key)}"
            )


def _unusable_here(key: SigningKey) -> str:
    """What stops this host signing with a published key, and the fix; "" if nothing does.

    The role says what the key does for the database's other hosts; this host, with
    another (or no) IDP_KEY_ENCRYPTION_KEY, answers 503 with it, so its line must say so.
    """
    if key.state == SigningKey.State.RETIRED:
        return ""  # used by no host: nothing to fix
    error = keys.material_problem(key.fingerprint, key.private_key_encrypted, key.certificate_pem)
    if error is None:
        return ""
    why = str(error) if str(error).endswith(".") else f"{error}."
    if error.hint == keys.KEK_HINT and not os.environ.get("IDP_KEY_ENCRYPTION_KEY"):
        why += (
            " IDP_KEY_ENCRYPTION_KEY is not set here, so this host uses its own generated "
            ".key_encryption_key."
        )
    return f"; UNUSABLE ON THIS HOST: {why} Fix: {error.hint}"
