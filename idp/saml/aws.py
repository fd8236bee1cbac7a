"""What AWS reads from a SAML response: attribute names and the checks of AWS-SAML-RULES.md."""

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from . import constants as c
from .release import Release

ATTRIBUTE_PREFIX = "https://aws.amazon.com/SAML/Attributes/"
ROLE = ATTRIBUTE_PREFIX + "Role"
ROLE_SESSION_NAME = ATTRIBUTE_PREFIX + "RoleSessionName"
SESSION_DURATION = ATTRIBUTE_PREFIX + "SessionDuration"
SOURCE_IDENTITY = ATTRIBUTE_PREFIX + "SourceIdentity"
PRINCIPAL_TAG_PREFIX = ATTRIBUTE_PREFIX + "PrincipalTag:"

AUDIENCE = "urn:amazon:webservices"
SIGNIN_ACS = "https://signin.aws.amazon.com/saml"

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

_ROLE_ARN = re.compile(
    r"^arn:aws[a-z-]*:iam::(?P<account>\d{12}):role/(?P<name>[\w+=,.@/-]{1,512})$"
)
_PROVIDER_ARN = re.compile(
    r"^arn:aws[a-z-]*:iam::(?P<account>\d{12}):saml-provider/(?P<name>[A-Za-z0-9._-]{1,128})$"
)
_SESSION_NAME = re.compile(r"^[A-Za-z0-9_+=,.@-]{2,64}$")


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


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str  # "error" or "warning"
    message: str

    def __str__(self) -> str:
        return f"{self.rule} {self.severity}: {self.message}"


def provider_arn(account: str, provider_name: str) -> str:
    return f"arn:aws:iam::{account}:saml-provider/{provider_name}"


def parse_role(value: str) -> RolePair | None:
    """A Role value as (role ARN, provider ARN) in either order, or None if malformed (R1)."""
    parts = value.split(",")
    if len(parts) != 2:
        return None
    first, second = parts
    if _ROLE_ARN.match(first) and _PROVIDER_ARN.match(second):
        return RolePair(first, second)
    if _PROVIDER_ARN.match(first) and _ROLE_ARN.match(second):
        return RolePair(second, first)
    return None


def role_pairs(release: Release) -> list[RolePair]:
    return parse_roles(release.values(ROLE))


def parse_roles(values: Iterable[str]) -> list[RolePair]:
    return [pair for value in values if (pair := parse_role(value))]


def check_release(release: Release) -> list[Finding]:
    """What AWS would reject in these attributes, with the fix."""
    findings: list[Finding] = []
    roles = release.values(ROLE)
    if not roles:
        findings.append(
            Finding(
                "R1",
                "error",
                "No Role attribute: AWS answers 'Your request included an invalid SAML "
                "response'. Add a claim rule that emits "
                f"{ROLE} as 'role ARN,provider ARN'.",
            )
        )
    for value in roles:
        if parse_role(value) is None:
            findings.append(
                Finding(
                    "R1",
                    "error",
                    f"Role value {value!r} is not one role ARN and one SAML-provider ARN joined "
                    "by a comma without spaces, e.g. arn:aws:iam::111122223333:role/Dev,"
                    "arn:aws:iam::111122223333:saml-provider/Corp.",
                )
            )
    session_names = release.values(ROLE_SESSION_NAME)
    if len(session_names) != 1:
        findings.append(
            Finding(
                "R2",
                "error",
                "InvalidIdentityToken: RoleSessionName is required in AuthnResponse. "
                f"Emit exactly one {ROLE_SESSION_NAME} value (found {len(session_names)}).",
            )
        )
    elif not _SESSION_NAME.match(session_names[0]):
        findings.append(
            Finding(
                "R2",
                "error",
                f"RoleSessionName {session_names[0]!r} must match [A-Za-z0-9_+=,.@-]{{2,64}}: "
                "2 to 64 characters, no spaces. Derive it from the e-mail or user name.",
            )
        )
    durations = release.values(SESSION_DURATION)
    if len(durations) > 1 or any(
        not value.isdigit() or not 900 <= int(value) <= 43200 for value in durations
    ):
        findings.append(
            Finding(
                "R3",
                "error",
                f"SessionDuration {list(durations)} must be one integer from 900 to 43200.",
            )
        )
    if release.name_id.format not in ACCEPTED_NAMEID_FORMATS or not release.name_id.value:
        findings.append(
            Finding(
                "R7",
                "error",
                f"NameID {release.name_id.value!r} in format {release.name_id.format!r}: STS "
                "answers AccessDenied without a NameID in an accepted format. Use persistent, "
                "transient or emailAddress.",
            )
        )
    return findings


def only_role(release: Release, role_arn: str) -> Release | None:
    """The release with just the Role values for one role ARN, or None if it has none."""
    kept = tuple(v for v in release.values(ROLE) if (p := parse_role(v)) and p.role_arn == role_arn)
    if not kept:
        return None
    attributes = tuple(replace(a, values=kept) if a.name == ROLE else a for a in release.attributes)
    return replace(release, attributes=attributes)
