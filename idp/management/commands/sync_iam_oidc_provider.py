"""Create or update the IAM OpenID Connect provider for fedmock's issuer, with boto3.

Real IAM or the local one (`--endpoint-url {IDP_BASE_URL}/aws/`), with the standard
credential chain, as sync_iam_provider does for the SAML provider. An absent provider is
created; a present one gets the client IDs it lacks (AddClientIDToOpenIDConnectProvider;
the ones it has stay) and the thumbprints given or found.

The thumbprint: for an https:// issuer, what IAM asks for is the SHA-1 of the top
intermediate CA certificate of the issuer host's TLS chain (the last certificate the
server sends, as AWS's guide finds it with `openssl s_client -showcerts`); fedmock
publishes its JWKS on the issuer's host, so that host is the one asked. IAM no longer
checks the thumbprint for issuers whose certificate a trusted root CA signs, but it still
keeps one. For an http:// issuer (the local STS under `make run`), which has no TLS chain,
the thumbprint is 40 zeros: a placeholder the local STS keeps and never checks.
"""

import argparse
import hashlib
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from botocore.exceptions import ClientError
from django.core.management.base import BaseCommand, CommandError

from idp.iam import SyncError, aws_errors, iam_client
from idp.management.commands._iam_options import add_iam_options
from idp.oidc import jwks

AWS_AUDIENCE = "sts.amazonaws.com"
PLACEHOLDER_THUMBPRINT = "0" * 40
TLS_TIMEOUT = 5  # seconds

AWS_ERROR_HINTS = {
    "ValidationError": "IAM accepts only https:// issuer URLs: serve fedmock over https and "
    "set IDP_BASE_URL, or give --endpoint-url …/aws/ for the local STS",
    "InvalidInput": "check --thumbprint (40 hex digits, at most 5)",
    "LimitExceeded": "the account has too many OIDC providers, or this one too many client "
    "IDs; delete unused ones",
    "AccessDenied": "the credentials may not call iam:CreateOpenIDConnectProvider, "
    "AddClientIDToOpenIDConnectProvider or UpdateOpenIDConnectProviderThumbprint",
    "NoSuchEntity": "the provider vanished while it was being updated; run the sync again",
}


@dataclass(frozen=True)
class SyncResult:
    arn: str
    created: bool
    added_client_ids: tuple[str, ...]
    thumbprints_replaced: bool

    def __str__(self) -> str:
        if self.created:
            return f"Created IAM OIDC provider {self.arn}"
        changes = []
        if self.added_client_ids:
            changes.append(f"added client IDs {', '.join(self.added_client_ids)}")
        if self.thumbprints_replaced:
            changes.append("replaced its thumbprints")
        if not changes:
            return f"IAM OIDC provider {self.arn} is up to date"
        return f"Updated IAM OIDC provider {self.arn}: {'; '.join(changes)}"


def thumbprint(text: str) -> str:
    if len(text) != 40 or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a thumbprint: give 40 hex digits")
    return text.lower()


def client_id(text: str) -> str:
    if not 1 <= len(text) <= 255:
        raise argparse.ArgumentTypeError("a client ID has 1 to 255 characters")
    return text


def top_intermediate(chain: list[bytes]) -> bytes:
    """The certificate IAM's thumbprint is of, from a verified chain (server first, root
    last): the top intermediate, that is the last one before the root; a chain without an
    intermediate has only the server's certificate to give (the root is never sent)."""
    if not chain:
        raise ValueError("an empty certificate chain")
    return chain[-2] if len(chain) >= 3 else chain[0]


def _verified_chain(host: str, port: int, timeout: float) -> list[bytes]:
    context = ssl.create_default_context()
    with (
        socket.create_connection((host, port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        if hasattr(tls, "get_verified_chain"):  # Python 3.13: DER bytes
            return list(tls.get_verified_chain())
        # Python 3.10 to 3.12 have it on the SSL object, unpublished.
        return [
            cert.public_bytes(ssl._ssl.ENCODING_DER) for cert in tls._sslobj.get_verified_chain()
        ]


def default_thumbprint(issuer: str, timeout: float = TLS_TIMEOUT) -> str:
    parts = urlsplit(issuer)
    if parts.scheme != "https":
        return PLACEHOLDER_THUMBPRINT
    host, port = parts.hostname or "", parts.port or 443
    try:
        chain = _verified_chain(host, port, timeout)
    except (OSError, ValueError) as error:  # ssl.SSLError is an OSError
        raise SyncError(
            f"Cannot read the TLS certificate chain of {host}:{port} ({error}); "
            "give --thumbprint (the SHA-1 of its top intermediate CA certificate)."
        ) from error
    return hashlib.sha1(top_intermediate(chain)).hexdigest()  # noqa: S324 (IAM's choice)


def provider_arn(account_id: str, issuer: str) -> str:
    parts = urlsplit(issuer)
    return (
        f"arn:aws:iam::{account_id}:oidc-provider/{(parts.netloc.lower() + parts.path).rstrip('/')}"
    )


def sync(
    issuer: str,
    client_ids: list[str],
    thumbprints: list[str],
    *,
    account_id: str = "",
    region: str = "",
    endpoint_url: str = "",
    profile: str = "",
) -> SyncResult:
    with aws_errors(AWS_ERROR_HINTS):
        iam, account_id = iam_client(
            account_id=account_id, region=region, endpoint_url=endpoint_url, profile=profile
        )
        arn = provider_arn(account_id, issuer)
        try:
            current = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
        except ClientError as error:
            if error.response["Error"]["Code"] != "NoSuchEntity":
                raise
            created = iam.create_open_id_connect_provider(
                Url=issuer, ClientIDList=client_ids, ThumbprintList=thumbprints
            )
            return SyncResult(created["OpenIDConnectProviderArn"], True, (), False)
        have = current.get("ClientIDList", [])
        added = tuple(client for client in client_ids if client not in have)
        for client in added:
            iam.add_client_id_to_open_id_connect_provider(
                OpenIDConnectProviderArn=arn, ClientID=client
            )
        replace = sorted(t.lower() for t in current.get("ThumbprintList", [])) != sorted(
            thumbprints
        )
        if replace:
            iam.update_open_id_connect_provider_thumbprint(
                OpenIDConnectProviderArn=arn, ThumbprintList=thumbprints
            )
        return SyncResult(arn, False, added, replace)


class Command(BaseCommand):
    help = (
        "Create or update the IAM OIDC provider for fedmock's issuer ({IDP_BASE_URL}/oidc): "
        "adds missing client IDs and sets the thumbprints."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--client-id",
            action="append",
            type=client_id,
            dest="client_ids",
            help=f"an audience the provider accepts (repeatable; default {AWS_AUDIENCE})",
        )
        parser.add_argument(
            "--thumbprint",
            action="append",
            type=thumbprint,
            dest="thumbprints",
            help="40 hex digits (repeatable, at most 5); default: the SHA-1 of the issuer's "
            "top intermediate CA certificate for https, 40 zeros for http",
        )
        add_iam_options(parser)

    def handle(self, *args, client_ids, thumbprints, **options):
        issuer = jwks.issuer()
        try:
            result = sync(
                issuer,
                list(dict.fromkeys(client_ids or [AWS_AUDIENCE])),
                list(dict.fromkeys(thumbprints or [default_thumbprint(issuer)])),
                account_id=options["account_id"],
                region=options["region"],
                endpoint_url=options["endpoint_url"],
                profile=options["profile"],
            )
        except SyncError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"{result} (issuer {issuer})")
