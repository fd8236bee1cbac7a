"""Options and the sync step shared by sync_iam_provider and rotate_key --sync-iam."""

import argparse
import re
from pathlib import Path

from idp import iam, identity


def provider_name(text: str) -> str:
    """R15: 1 to 128 characters from letters, digits and . _ -"""
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,128}", text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an IAM SAML provider name: use 1 to 128 of A-Z a-z 0-9 . _ -"
        )
    return text


def add_iam_options(parser) -> None:
    parser.add_argument("--account-id", default="", help="default: the caller's account (STS)")
    parser.add_argument("--region", default="", help="default: us-east-1 (IAM is global)")
    parser.add_argument("--endpoint-url", default="", help="e.g. moto or LocalStack")
    parser.add_argument("--profile", default="", help="an AWS CLI profile")


def add_sync_option(parser) -> None:
    parser.add_argument(
        "--sync-iam",
        metavar="NAME",
        type=provider_name,
        default=None,
        help="then update this IAM SAML provider",
    )


def sync(name: str, options: dict, dry_run: bool = False) -> str:
    """Push the current metadata to IAM (or print the commands); returns what to print."""
    metadata = identity.metadata_xml().decode()
    if dry_run:
        path = Path(f"{name}-metadata.xml")
        try:
            path.write_text(metadata)
        except OSError as error:
            raise iam.SyncError(f"Cannot write {path}: {error.strerror}.") from error
        commands = iam.cli_commands(name, str(path), options["account_id"] or "<ACCOUNT_ID>")
        return (
            f"Wrote {path}. Create the provider the first time, update it afterwards:\n  "
            + "\n  ".join(commands)
        )
    result = iam.sync_provider(
        name,
        metadata,
        account_id=options["account_id"],
        region=options["region"],
        endpoint_url=options["endpoint_url"],
        profile=options["profile"],
    )
    return f"{result.action.capitalize()} IAM SAML provider {result.arn}"
