"""Checks of a release (NameID and attributes) and of where and how it is sent.

sso.py runs these before it signs; the admin runs check_attribute when a rule
is saved; the whole-response checker runs them on what it reads.
"""

import re
import unicodedata
from collections.abc import Sequence

from .. import constants as c
from ..release import NameID, Release
from .findings import Finding, error, warning
from .names import (
    ACCEPTED_NAMEID_FORMATS,
    ACCESS_CONTROL_PREFIX,
    ATTRIBUTE_PREFIX,
    AUDIENCE_BY_PARTITION,
    AUDIENCES,
    EMAIL,
    IC_ACS,
    IC_AUDIENCE,
    PRINCIPAL_TAG_PREFIX,
    PROFILE_AWS,
    PROFILE_IDENTITY_CENTER,
    PROVIDER_ARN,
    ROLE,
    ROLE_ARN,
    ROLE_SESSION_NAME,
    SESSION_DURATION,
    SESSION_NAME,
    SIGNIN_ACS,
    SIGNIN_ACS_BY_PARTITION,
    SINGLE_NAMES,
    SOURCE_IDENTITY,
    TRANSITIVE_TAG_KEYS,
    aws_acs,
    is_arn,
    parse_role,
    parse_roles,
)

MAX_TAGS = 50
_TAG_PUNCTUATION = set("_.:/=+-@")


def _role_problem(value: str) -> str:
    if ";" in value:
        return "holds ';': send each role as its own AttributeValue instead"
    if any(character.isspace() for character in value):
        return "has white space or a line break: join the two ARNs with a bare comma"
    parts = value.split(",")
    if len(parts) != 2:
        return (
            f"has {len(parts)} comma-separated parts; it needs exactly a role ARN and a "
            "provider ARN"
        )
    if not any(is_arn(PROVIDER_ARN, part) for part in parts):
        return "lacks a SAML-provider ARN (arn:aws:iam::<account>:saml-provider/<name>)"
    if not any(is_arn(ROLE_ARN, part) for part in parts):
        return "lacks a valid role ARN (arn:aws:iam::<account>:role/<name>)"
    if parse_role(value) is None:
        return "mixes partitions (aws, aws-cn, aws-us-gov) between the role and the provider"
    return ""


def _check_role_values(values: Sequence[str]) -> list[Finding]:
    findings = []
    for value in values:
        if problem := _role_problem(value):
            findings.append(
                error(
                    "R1",
                    f"Role value {value!r} {problem}. Example: "
                    "arn:aws:iam::111122223333:role/Dev,arn:aws:iam::111122223333:saml-provider/Corp.",
                )
            )
        elif (pair := parse_role(value)) and pair.account != pair.provider_arn.split(":")[4]:
            findings.append(
                error(
                    "R1",
                    f"Role value {value!r} pairs a role and a SAML provider from different "
                    "accounts; the provider must be in the role's account.",
                )
            )
    return findings


# --- One attribute at a time (used when a rule is saved, too) ---------------


def _tag_character(character: str) -> bool:
    """STS allows [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@] in tags: any script, but no tabs or newlines."""
    return unicodedata.category(character)[0] in "LZN" or character in _TAG_PUNCTUATION


def _tag_problem(text: str, what: str, limit: int, minimum: int) -> str:
    if not minimum <= len(text) <= limit:
        return f"{what} {text!r} is {len(text)} characters; it must be {minimum} to {limit}"
    if not all(_tag_character(character) for character in text):
        return f"{what} {text!r} has characters outside letters, digits, spaces and _.:/=+-@"
    if text.lower().startswith("aws:"):
        return f"{what} {text!r} starts with 'aws:', which AWS reserves"
    return ""


def check_attribute_name(name: str) -> list[Finding]:
    """Problems in an attribute name alone: tag keys (R5, R20) and misspelt AWS names."""
    if name.startswith(PRINCIPAL_TAG_PREFIX):
        key = name.removeprefix(PRINCIPAL_TAG_PREFIX)
        if problem := _tag_problem(key, "Session tag key", 128, 1):
            return [error("R5", f"{problem}. Rename the tag.")]
        return []
    if name.startswith(ACCESS_CONTROL_PREFIX):
        key = name.removeprefix(ACCESS_CONTROL_PREFIX)
        if problem := _tag_problem(key, "AccessControl key", 128, 1):
            return [error("R20", f"{problem}. Rename the attribute.")]
        return []
    if name.startswith(ATTRIBUTE_PREFIX) and name not in SINGLE_NAMES:
        known = {n.lower(): n for n in SINGLE_NAMES}
        hint = known.get(name.lower())
        suggestion = f" Did you mean {hint}? Names are case-sensitive." if hint else ""
        return [warning("R1", f"AWS ignores the attribute {name}.{suggestion}")]
    return []


def check_attribute(name: str, values: Sequence[str]) -> list[Finding]:
    """Problems in one attribute's values, whatever else the release holds."""
    findings = check_attribute_name(name)
    if name == ROLE:
        findings += _check_role_values(values)
    elif name == ROLE_SESSION_NAME:
        if len(values) > 1:
            findings.append(
                error("R2", f"RoleSessionName has {len(values)} values; send exactly one.")
            )
        for value in values:
            if not SESSION_NAME.fullmatch(value):
                findings.append(
                    error(
                        "R2",
                        f"RoleSessionName {value!r} must match [A-Za-z0-9_+=,.@-]{{2,64}}: "
                        "2 to 64 characters, no spaces. Derive it from the e-mail or user name.",
                    )
                )
    elif name == SESSION_DURATION:
        if len(values) > 1:
            findings.append(error("R3", f"SessionDuration has {len(values)} values; send one."))
        for value in values:
            if not (re.fullmatch(r"[0-9]{3,5}", value) and 900 <= int(value) <= 43200):
                findings.append(
                    error(
                        "R3",
                        f"SessionDuration {value!r} must be a whole number of seconds from 900 "
                        "to 43200.",
                    )
                )
    elif name == SOURCE_IDENTITY:
        if len(values) > 1:
            findings.append(error("R4", f"SourceIdentity has {len(values)} values; send one."))
        for value in values:
            if not SESSION_NAME.fullmatch(value) or value.lower().startswith("aws:"):
                findings.append(
                    error(
                        "R4",
                        f"SourceIdentity {value!r} must match [A-Za-z0-9_+=,.@-]{{2,64}} and "
                        "not start with 'aws:'.",
                    )
                )
    elif name.startswith(PRINCIPAL_TAG_PREFIX):
        key = name.removeprefix(PRINCIPAL_TAG_PREFIX)
        if len(values) != 1:
            findings.append(
                error("R5", f"Session tag {key!r} has {len(values)} values; a tag has exactly one.")
            )
        for value in values:
            if problem := _tag_problem(value, f"Session tag {key!r} value", 256, 0):
                findings.append(error("R5", f"{problem}. Change the value or drop the tag."))
    elif name == TRANSITIVE_TAG_KEYS:
        for value in values:
            if problem := _tag_problem(value, "Transitive tag key", 128, 1):
                findings.append(error("R6", f"{problem}."))
    elif name.startswith(ACCESS_CONTROL_PREFIX) and len(values) != 1:
        key = name.removeprefix(ACCESS_CONTROL_PREFIX)
        findings.append(
            error("R20", f"AccessControl:{key} has {len(values)} values; send exactly one.")
        )
    return findings


# --- A whole release ----------------------------------------------------------


def check_name_id(name_id: NameID, profile: str) -> list[Finding]:
    if profile == PROFILE_IDENTITY_CENTER:
        if name_id.format != c.NAMEID_EMAIL or not EMAIL.fullmatch(name_id.value):
            return [
                error(
                    "R19",
                    f"Identity Center needs an emailAddress NameID equal to the provisioned user "
                    f"name; got {name_id.value!r} ({name_id.format or 'no format'}). Set the "
                    "SP's NameID to the e-mail address in emailAddress format.",
                )
            ]
        return []
    if not name_id.value:
        return [error("R7", "No NameID: STS answers AccessDenied. Send a NameID in the Subject.")]
    if name_id.format and name_id.format not in ACCEPTED_NAMEID_FORMATS:
        return [
            error(
                "R7",
                f"NameID format {name_id.format} is not one AWS accepts, so STS answers "
                "AccessDenied. Use persistent, transient or emailAddress.",
            )
        ]
    return []


def _check_tags(attributes: dict[str, list[str]]) -> list[Finding]:
    keys = [
        name.removeprefix(PRINCIPAL_TAG_PREFIX)
        for name in attributes
        if name.startswith(PRINCIPAL_TAG_PREFIX)
    ]
    findings = []
    if len(keys) > MAX_TAGS:
        findings.append(
            error("R5", f"{len(keys)} session tags; AWS allows at most {MAX_TAGS}. Drop some.")
        )
    seen: dict[str, str] = {}
    for key in keys:
        if (other := seen.setdefault(key.lower(), key)) != key:
            findings.append(
                error(
                    "R5",
                    f"Session tag keys {other!r} and {key!r} differ only in case; AWS treats "
                    "keys case-insensitively, so they clash. Keep one.",
                )
            )
    tagged = {key.lower() for key in keys}
    for transitive in attributes.get(TRANSITIVE_TAG_KEYS, []):
        if transitive.lower() not in tagged:
            findings.append(
                error(
                    "R6",
                    f"TransitiveTagKeys names {transitive!r}, which is not sent as a "
                    f"PrincipalTag. Add the tag or drop the key.",
                )
            )
    return findings


def check_release(release: Release, profile: str = PROFILE_AWS) -> list[Finding]:
    """What AWS would reject in this NameID and these attributes, with the fix."""
    findings = check_name_id(release.name_id, profile)
    names = [a.name for a in release.attributes]
    for name in sorted({n for n in names if names.count(n) > 1}):
        findings.append(
            warning(
                "R1",
                f"Attribute {name} appears {names.count(name)} times; send it once "
                "with several AttributeValues.",
            )
        )
    # AWS reads an attribute sent as several elements as one, so judge the values together.
    merged: dict[str, list[str]] = {}
    for attribute in release.attributes:
        merged.setdefault(attribute.name, []).extend(attribute.values)
    for name, values in merged.items():
        findings += check_attribute(name, values)
    if profile == PROFILE_AWS:
        if not merged.get(ROLE):
            findings.append(
                error(
                    "R1",
                    "No Role attribute: AWS answers 'Your request included an invalid SAML "
                    f"response'. Add a claim rule that emits {ROLE} as 'role ARN,provider ARN'.",
                )
            )
        if not merged.get(ROLE_SESSION_NAME):
            findings.append(
                error(
                    "R2",
                    "'InvalidIdentityToken: RoleSessionName is required in AuthnResponse'. "
                    f"Add a claim rule that emits one {ROLE_SESSION_NAME} value, e.g. the e-mail.",
                )
            )
        findings += _check_tags(merged)
    return findings


def check_endpoints(
    recipient: str,
    audiences: Sequence[Sequence[str]] | None,
    profile: str,
    encrypted: bool = False,
) -> list[Finding]:
    """Where the response goes and whom it is for (R9, R10, R14, R18).

    `audiences` holds one list per AudienceRestriction: every restriction must be
    met, and any audience in a restriction meets it. None: not known (encrypted).
    """
    findings = []
    if profile == PROFILE_IDENTITY_CENTER:
        if encrypted:
            findings.append(
                error(
                    "R14",
                    "IAM Identity Center does not accept encrypted "
                    "assertions. Turn encryption off for this SP.",
                )
            )
        if recipient and not IC_ACS.fullmatch(recipient):
            findings.append(
                error(
                    "R18",
                    f"Recipient {recipient} is not an Identity Center ACS "
                    "(https://<region>.signin.aws.amazon.com/platform/saml/acs/<id>). "
                    "Re-import the SP metadata Identity Center offers for download.",
                )
            )
        if audiences is not None and not (
            audiences
            and all(any(IC_AUDIENCE.fullmatch(a) for a in restriction) for restriction in audiences)
        ):
            findings.append(
                error(
                    "R18",
                    f"Audience {audiences!r} is not Identity Center's issuer URL "
                    "(https://<region>.signin.aws.amazon.com/platform/saml/<directory-id>).",
                )
            )
        return findings
    form = aws_acs(recipient) if recipient else None
    if recipient and form is None:
        findings.append(
            error(
                "R9",
                f"Recipient {recipient} is not an AWS sign-in endpoint. Use "
                f"{SIGNIN_ACS} or https://<region>.signin.aws.amazon.com/saml.",
            )
        )
    if form is not None and encrypted and not form.encrypted:
        findings.append(
            error(
                "R14",
                f"An encrypted assertion sent to {recipient}: AWS decrypts only at "
                "https://<region>.signin.aws.amazon.com/saml/acs/<SAMLProviderUUID>, the ACS "
                "of a provider whose AssertionEncryptionMode is Required or Allowed.",
            )
        )
    expected = [form.audience] if form else list(AUDIENCES)
    if audiences is not None and not (
        audiences and all(any(a in expected for a in restriction) for restriction in audiences)
    ):
        findings.append(
            error(
                "R10",
                "'Response does not contain the required audience': the audience is "
                f"{audiences!r}. Use {expected[0]}"
                + (f" for {recipient}." if form else f" (GovCloud: {AUDIENCES[1]})."),
            )
        )
    return findings


def check_partition(recipient: str, roles: Sequence[str]) -> list[Finding]:
    """R1 with R9/R10: a role is assumed only through its own partition's sign-in endpoint.

    A GovCloud role posted to the commercial endpoint (with the commercial
    audience) names a role that does not exist there, whatever else is right.
    """
    form = aws_acs(recipient) if recipient else None
    if form is None:
        return []
    return [
        error(
            "R1",
            f"Role {pair.role_arn} is in partition {pair.partition}, but the response goes to "
            f"{recipient}, the sign-in endpoint of partition {form.partition}, where no such "
            f"role can be assumed. Send roles of {form.partition}, or post to "
            f"{SIGNIN_ACS_BY_PARTITION[pair.partition]} with the audience "
            f"{AUDIENCE_BY_PARTITION[pair.partition]}.",
        )
        for pair in parse_roles(roles)
        if pair.partition != form.partition
    ]


def check_transport(url: str, what: str) -> list[Finding]:
    """A bearer assertion sent over plain HTTP can be read on the way and replayed."""
    if not url.lower().startswith("http://"):
        return []
    return [
        warning(
            "SAML",
            f"{what} {url} is plain http://: anyone on the path can read the bearer "
            "assertion and replay it until it expires. Use an https:// ACS.",
        )
    ]


def _sha1_note(algorithm: str) -> str:
    return " SHA-1 is broken (collisions are practical)." if "sha1" in algorithm else ""


def check_algorithms(method: str, digests: set[str], label: str = "assertion") -> list[Finding]:
    """R11: AWS documents RSA-SHA256 with SHA-256 digests; others are a gamble (warnings)."""
    findings = []
    if method != c.SIG_RSA_SHA256:
        findings.append(
            warning(
                "R11",
                f"The {label} is signed with {method or 'no SignatureMethod'}; AWS documents "
                f"{c.SIG_RSA_SHA256}.{_sha1_note(method)} Switch the signature algorithm.",
            )
        )
    if digests != {c.DIGEST_SHA256}:
        findings.append(
            warning(
                "R11",
                f"The {label} signature digests with {sorted(digests)}; use SHA-256."
                + _sha1_note(" ".join(sorted(digests))),
            )
        )
    return findings
