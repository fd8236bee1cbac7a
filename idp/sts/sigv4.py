"""Checking an AWS Signature Version 4 the way AWS does: by signing the request again.

botocore's own signer (botocore.auth.SigV4Auth) computes the canonical request, the
string to sign and the signature from the headers the client says it signed, the
timestamp and the credential scope it sent, and the secret the local STS issued. A
hand-written canonicaliser would drift from botocore's the first time either changes;
this one cannot. Pure: no Django, the door passes the request's parts in.
"""

import datetime
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .errors import StsError

ALGORITHM = "AWS4-HMAC-SHA256"
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<key>[\w.+=@-]{1,128})/(?P<date>[0-9]{8})/(?P<region>[^/,\s]+)/"
    r"(?P<service>[^/,\s]+)/aws4_request\s*,\s*SignedHeaders=(?P<headers>[a-z0-9;_.-]+)\s*,"
    r"\s*Signature=(?P<signature>[0-9a-f]{64})\s*",
    re.ASCII,
)
_TIMESTAMP = re.compile(r"[0-9]{8}T[0-9]{6}Z", re.ASCII)
# AWS refuses a signature whose X-Amz-Date is further than this from its own clock: a
# request overheard once cannot be sent again for the rest of the credentials' life.
SKEW = datetime.timedelta(minutes=15)


@dataclass(frozen=True)
class Signature:
    access_key_id: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    timestamp: str  # X-Amz-Date, e.g. 20260101T120000Z


def _incomplete(why: str) -> StsError:
    return StsError(
        "IncompleteSignature",
        "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' "
        "parameters, and an X-Amz-Date header.",
        (why,),
    )


def parse(authorization: str, amz_date: str) -> Signature:
    """The signature's parts from the Authorization and X-Amz-Date headers."""
    match = _AUTHORIZATION.fullmatch(authorization)
    if match is None:
        shown = authorization[:60].encode("ascii", "backslashreplace").decode()
        raise _incomplete(
            f"the Authorization header is not AWS4-HMAC-SHA256 with Credential, "
            f"SignedHeaders and Signature: {shown!r}"
        )
    if not _TIMESTAMP.fullmatch(amz_date) or amz_date[:8] != match["date"]:
        raise _incomplete(
            f"X-Amz-Date {amz_date!r} is not a timestamp of the credential's day {match['date']}"
        )
    headers = tuple(match["headers"].split(";"))
    if "host" not in headers:
        raise _incomplete("SignedHeaders must include host")
    return Signature(
        match["key"], match["region"], match["service"], headers, match["signature"], amz_date
    )


def _aws_time(instant: datetime.datetime) -> str:
    return instant.astimezone(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")


def check_scope(signature: Signature, *, service: str, now: datetime.datetime) -> None:
    """The credential scope's service and the timestamp, as AWS checks them before the
    signature: a signature for another service or a stale (replayed) one is refused.
    The region is not checked: a local endpoint stands in for every region, and botocore
    signs a custom endpoint with whatever region the client was given."""
    if signature.service != service:
        raise StsError(
            "SignatureDoesNotMatch",
            f"Credential should be scoped to correct service: '{service}'. ",
            (f"the Authorization header's credential scope names {signature.service!r}",),
        )
    try:
        signed_at = datetime.datetime.strptime(signature.timestamp, "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.UTC
        )
    except ValueError:
        raise _incomplete(f"X-Amz-Date {signature.timestamp!r} is not a date") from None
    if signed_at < now - SKEW:
        raise StsError(
            "SignatureDoesNotMatch",
            f"Signature expired: {signature.timestamp} is now earlier than "
            f"{_aws_time(now - SKEW)} ({_aws_time(now)} - 15 min.)",
            (
                f"X-Amz-Date {signature.timestamp} is more than 15 minutes before the server's "
                "clock: a replayed request, or the client's clock is slow",
            ),
        )
    if signed_at > now + SKEW:
        raise StsError(
            "SignatureDoesNotMatch",
            f"Signature not yet current: {signature.timestamp} is still later than "
            f"{_aws_time(now + SKEW)} ({_aws_time(now)} + 15 min.)",
            (
                f"X-Amz-Date {signature.timestamp} is more than 15 minutes after the server's "
                "clock: the client's clock is fast",
            ),
        )


def matches(
    signature: Signature,
    *,
    secret_access_key: str,
    session_token: str | None,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
) -> bool:
    """Whether signing the request again with the secret gives the same signature.

    `url` is what the client addressed (scheme, Host, path and raw query string);
    `headers` maps lower-case names to values and must hold every signed header.
    """
    signed = {name: headers.get(name) for name in signature.signed_headers}
    if any(value is None for value in signed.values()):
        return False
    # botocore's canonical request takes the payload's hash from this header when it is
    # present, not from the body: a signed UNSIGNED-PAYLOAD (or any other value) would let
    # the body be changed under a valid signature. The header must be the body's hash.
    declared = signed.get("x-amz-content-sha256")
    if declared is not None and not hmac.compare_digest(declared, hashlib.sha256(body).hexdigest()):
        return False
    request = AWSRequest(method=method, url=url, headers=signed, data=body)
    request.context["timestamp"] = signature.timestamp
    signer = SigV4Auth(
        Credentials(signature.access_key_id, secret_access_key, session_token),
        signature.service,
        signature.region,
    )
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    return hmac.compare_digest(expected, signature.signature)
