"""AWS's names: attribute URIs, audiences, sign-in endpoints, ARNs and condition keys."""

import base64
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from .. import constants as c
from ..release import Release

ATTRIBUTE_PREFIX = "https://aws.amazon.com/SAML/Attributes/"
ROLE = ATTRIBUTE_PREFIX + "Role"
ROLE_SESSION_NAME = ATTRIBUTE_PREFIX + "RoleSessionName"
SESSION_DURATION = ATTRIBUTE_PREFIX + "SessionDuration"
SOURCE_IDENTITY = ATTRIBUTE_PREFIX + "SourceIdentity"
PRINCIPAL_TAG_PREFIX = ATTRIBUTE_PREFIX + "PrincipalTag:"
TRANSITIVE_TAG_KEYS = ATTRIBUTE_PREFIX + "TransitiveTagKeys"
ACCESS_CONTROL_PREFIX = ATTRIBUTE_PREFIX + "AccessControl:"
SINGLE_NAMES = (ROLE, ROLE_SESSION_NAME, SESSION_DURATION, SOURCE_IDENTITY, TRANSITIVE_TAG_KEYS)

AUDIENCE = "urn:amazon:webservices"
AUDIENCES = (AUDIENCE, "urn:amazon:webservices:govcloud", "urn:amazon:webservices:cn-north-1")
SIGNIN_ACS = "https://signin.aws.amazon.com/saml"
# R9, R10: each partition's sign-in ACS and audience.
SIGNIN_ACS_BY_PARTITION = {
    "aws": SIGNIN_ACS,
    "aws-us-gov": "https://signin.amazonaws-us-gov.com/saml",
    "aws-cn": "https://signin.amazonaws.cn/saml",
}
AUDIENCE_BY_PARTITION = dict(zip(SIGNIN_ACS_BY_PARTITION, AUDIENCES, strict=True))

PROFILE_AWS = "aws"
PROFILE_IDENTITY_CENTER = "identity_center"

# R7
ACCEPTED_NAMEID_FORMATS = {
    c.NAMEID_PERSISTENT,
    c.NAMEID_TRANSIENT,
    "urn:oasis:names:tc:SAML:2.0:nameid-format:kerberos",
    "urn:oasis:names:tc:SAML:2.0:nameid-format:entity",
    c.NAMEID_EMAIL,
    c.NAMEID_UNSPECIFIED,
    "urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName",
    "urn:oasis:names:tc:SAML:1.1:nameid-format:WindowsDomainQualifiedName",
}
SAML2_NAMEID_PREFIX = "urn:oasis:names:tc:SAML:2.0:nameid-format:"

# Whole-string, ASCII-only patterns: $ would also match before a final newline,
# and \d or \w would accept other scripts' digits and letters, which AWS does not.
_PARTITION = r"(?P<partition>aws|aws-cn|aws-us-gov)"
ROLE_ARN = re.compile(_PARTITION + r":iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}", re.ASCII)
PROVIDER_ARN = re.compile(
    _PARTITION + r":iam::[0-9]{12}:saml-provider/[A-Za-z0-9._-]{1,128}", re.ASCII
)
SESSION_NAME = re.compile(r"[A-Za-z0-9_+=,.@-]{2,64}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class AcsForm:
    """One form of AWS sign-in ACS (R9): the audience (R10) and partition it belongs to,
    and whether it is the per-provider form that encrypted assertions must use (R14)."""

    pattern: re.Pattern
    audience: str
    partition: str
    encrypted: bool = False


# botocore's IAM model gives GetSAMLProvider's SAMLProviderUUID as [A-Z0-9]+ of
# 22 to 64 characters (its privateKeyIdType), not a dashed hex UUID.
SAML_PROVIDER_UUID = r"[A-Z0-9]{22,64}"
AWS_ACS_FORMS = (
    AcsForm(re.compile(r"https://([a-z0-9-]+\.)?signin\.aws\.amazon\.com/saml"), AUDIENCE, "aws"),
    AcsForm(
        re.compile(r"https://[a-z0-9-]+\.signin\.aws\.amazon\.com/saml/acs/" + SAML_PROVIDER_UUID),
        AUDIENCE,
        "aws",
        encrypted=True,
    ),
    AcsForm(re.compile(r"https://signin\.amazonaws-us-gov\.com/saml"), AUDIENCES[1], "aws-us-gov"),
    AcsForm(re.compile(r"https://signin\.amazonaws\.cn/saml"), AUDIENCES[2], "aws-cn"),
)
IC_ACS = re.compile(
    r"https://[a-z0-9-]+\.signin\.aws\.amazon\.com/platform/saml/acs/[\w-]+", re.ASCII
)
IC_AUDIENCE = re.compile(
    r"https://[a-z0-9-]+\.signin\.aws\.amazon\.com/platform/saml/[\w-]+", re.ASCII
)


# --- Role values (R1) -------------------------------------------------------


@dataclass(frozen=True)
class RolePair:
    role_arn: str
    provider_arn: str

    @property
    def account(self) -> str:
        return self.role_arn.split(":")[4]

    @property
    def role_name(self) -> str:
        return self.role_arn.split(":role/", 1)[1]

    @property
    def partition(self) -> str:
        return self.role_arn.split(":")[1]

    @property
    def provider_name(self) -> str:
        return self.provider_arn.split(":saml-provider/", 1)[1]


def is_arn(pattern: re.Pattern, text: str) -> bool:
    return bool(text.startswith("arn:") and pattern.fullmatch(text[4:]))


def provider_arn(account: str, provider_name: str) -> str:
    return f"arn:aws:iam::{account}:saml-provider/{provider_name}"


def parse_role(value: str) -> RolePair | None:
    """A Role value as (role ARN, provider ARN) in either order, or None if malformed."""
    parts = value.split(",")
    if len(parts) != 2:
        return None
    first, second = parts
    if is_arn(ROLE_ARN, first) and is_arn(PROVIDER_ARN, second):
        pair = RolePair(first, second)
    elif is_arn(PROVIDER_ARN, first) and is_arn(ROLE_ARN, second):
        pair = RolePair(second, first)
    else:
        return None
    return pair if pair.role_arn.split(":")[1] == pair.provider_arn.split(":")[1] else None


def parse_roles(values: Iterable[str]) -> list[RolePair]:
    return [pair for value in values if (pair := parse_role(value))]


def role_pairs(release: Release) -> list[RolePair]:
    return parse_roles(release.values(ROLE))


def only_role(release: Release, role_arn: str) -> Release | None:
    """The release with just the Role values for one role ARN, or None if it has none."""
    kept = tuple(v for v in release.values(ROLE) if (p := parse_role(v)) and p.role_arn == role_arn)
    if not kept:
        return None
    attributes = tuple(replace(a, values=kept) if a.name == ROLE else a for a in release.attributes)
    return replace(release, attributes=attributes)


def profile_for_audience(audience: str) -> str:
    """Identity Center if the audience says so; otherwise judge the response as AWS sign-in."""
    return PROFILE_IDENTITY_CENTER if IC_AUDIENCE.match(audience) else PROFILE_AWS


def aws_acs(recipient: str) -> AcsForm | None:
    """The AWS sign-in ACS form this Recipient has, or None if it is not one."""
    return next((form for form in AWS_ACS_FORMS if form.pattern.fullmatch(recipient)), None)


# --- Condition keys (R8) ------------------------------------------------------


def sub_type(name_id_format: str) -> str:
    """saml:sub_type: persistent, transient, or the whole format URI."""
    if name_id_format.startswith(SAML2_NAMEID_PREFIX):
        return name_id_format.removeprefix(SAML2_NAMEID_PREFIX)
    return name_id_format


def name_qualifier(issuer: str, account: str, provider_name: str) -> str:
    """saml:namequalifier, as an IAM trust policy sees it."""
    digest = hashlib.sha1(f"{issuer}{account}/{provider_name}".encode()).digest()  # noqa: S324
    return base64.b64encode(digest).decode()


def condition_keys(release: Release, issuer: str, recipient: str) -> list[tuple[str, str]]:
    """The SAML condition keys an IAM trust policy sees for this release (R8)."""
    keys = [
        ("saml:sub", release.name_id.value),
        ("saml:sub_type", sub_type(release.name_id.format)),
        ("saml:iss", issuer),
        ("saml:aud", recipient),
    ]
    providers = dict.fromkeys((p.account, p.provider_name) for p in role_pairs(release))
    for account, provider_name in providers:
        keys.append(
            (
                f"saml:namequalifier ({account}/{provider_name})",
                name_qualifier(issuer, account, provider_name),
            )
        )
        keys.append((f"saml:doc ({account}/{provider_name})", f"{account}/{provider_name}"))
    return keys
