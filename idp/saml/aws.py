"""What AWS reads from a SAML response: attribute names, and the checks of AWS-SAML-RULES.md.

Every check is a pure function that returns Findings. A finding carries the
rule id (R1…R20, or SAML for protocol problems that are not AWS's own), a
severity, and a message that quotes AWS's error text where it is known and
then names the fix. The checks go further than moto, which verifies nothing.
"""

import base64
import binascii
import codecs
import datetime
import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from . import constants as c
from .bindings import parse_xml
from .errors import SamlError
from .metadata import parse_idp_metadata
from .release import Attribute, NameID, Release
from .signing import pem_from_base64, signature_valid

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
_ROLE_ARN = re.compile(_PARTITION + r":iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}", re.ASCII)
_PROVIDER_ARN = re.compile(
    _PARTITION + r":iam::[0-9]{12}:saml-provider/[A-Za-z0-9._-]{1,128}", re.ASCII
)
_SESSION_NAME = re.compile(r"[A-Za-z0-9_+=,.@-]{2,64}")
_TAG_PUNCTUATION = set("_.:/=+-@")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# R9: each AWS sign-in ACS, the audience it expects (R10), and whether it is the
# per-provider form that encrypted assertions must use (R14).
_AWS_ACS_FORMS = [
    (re.compile(r"https://([a-z0-9-]+\.)?signin\.aws\.amazon\.com/saml"), AUDIENCE, False),
    (
        re.compile(r"https://[a-z0-9-]+\.signin\.aws\.amazon\.com/saml/acs/[0-9a-fA-F-]{36}"),
        AUDIENCE,
        True,
    ),
    (re.compile(r"https://signin\.amazonaws-us-gov\.com/saml"), AUDIENCES[1], False),
    (re.compile(r"https://signin\.amazonaws\.cn/saml"), AUDIENCES[2], False),
]
_IC_ACS = re.compile(
    r"https://[a-z0-9-]+\.signin\.aws\.amazon\.com/platform/saml/acs/[\w-]+", re.ASCII
)
_IC_AUDIENCE = re.compile(
    r"https://[a-z0-9-]+\.signin\.aws\.amazon\.com/platform/saml/[\w-]+", re.ASCII
)

MAX_TAGS = 50
MAX_ENCODED_RESPONSE = 100_000
REDEEM_WITHIN = datetime.timedelta(minutes=5)
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str  # "error": AWS rejects it; "warning": risky or undocumented
    message: str

    def __str__(self) -> str:
        return f"{self.rule} {self.severity}: {self.message}"


def error(rule: str, message: str) -> Finding:
    return Finding(rule, "error", message)


def warning(rule: str, message: str) -> Finding:
    return Finding(rule, "warning", message)


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
    def provider_name(self) -> str:
        return self.provider_arn.split(":saml-provider/", 1)[1]


def _arn(pattern: re.Pattern, text: str) -> bool:
    return bool(text.startswith("arn:") and pattern.fullmatch(text[4:]))


def provider_arn(account: str, provider_name: str) -> str:
    return f"arn:aws:iam::{account}:saml-provider/{provider_name}"


def parse_role(value: str) -> RolePair | None:
    """A Role value as (role ARN, provider ARN) in either order, or None if malformed."""
    parts = value.split(",")
    if len(parts) != 2:
        return None
    first, second = parts
    if _arn(_ROLE_ARN, first) and _arn(_PROVIDER_ARN, second):
        pair = RolePair(first, second)
    elif _arn(_PROVIDER_ARN, first) and _arn(_ROLE_ARN, second):
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
    if not any(_arn(_PROVIDER_ARN, part) for part in parts):
        return "lacks a SAML-provider ARN (arn:aws:iam::<account>:saml-provider/<name>)"
    if not any(_arn(_ROLE_ARN, part) for part in parts):
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
            if not _SESSION_NAME.fullmatch(value):
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
            if not _SESSION_NAME.fullmatch(value) or value.lower().startswith("aws:"):
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


def profile_for_audience(audience: str) -> str:
    """Identity Center if the audience says so; otherwise judge the response as AWS sign-in."""
    return PROFILE_IDENTITY_CENTER if _IC_AUDIENCE.match(audience) else PROFILE_AWS


def check_name_id(name_id: NameID, profile: str) -> list[Finding]:
    if profile == PROFILE_IDENTITY_CENTER:
        if name_id.format != c.NAMEID_EMAIL or not _EMAIL.fullmatch(name_id.value):
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


def _aws_acs(recipient: str) -> tuple[str, bool] | None:
    """For an AWS sign-in ACS: the audience it expects, and whether it is the encrypted form."""
    for pattern, audience, encrypted in _AWS_ACS_FORMS:
        if pattern.fullmatch(recipient):
            return audience, encrypted
    return None


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
        if recipient and not _IC_ACS.fullmatch(recipient):
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
            and all(
                any(_IC_AUDIENCE.fullmatch(a) for a in restriction) for restriction in audiences
            )
        ):
            findings.append(
                error(
                    "R18",
                    f"Audience {audiences!r} is not Identity Center's issuer URL "
                    "(https://<region>.signin.aws.amazon.com/platform/saml/<directory-id>).",
                )
            )
        return findings
    form = _aws_acs(recipient) if recipient else None
    if recipient and form is None:
        findings.append(
            error(
                "R9",
                f"Recipient {recipient} is not an AWS sign-in endpoint. Use "
                f"{SIGNIN_ACS} or https://<region>.signin.aws.amazon.com/saml.",
            )
        )
    if form is not None and encrypted and not form[1]:
        findings.append(
            error(
                "R14",
                f"An encrypted assertion sent to {recipient}: AWS decrypts only at "
                "https://<region>.signin.aws.amazon.com/saml/acs/<SAMLProviderUUID>, the ACS "
                "of a provider whose AssertionEncryptionMode is Required or Allowed.",
            )
        )
    expected = [form[0]] if form else list(AUDIENCES)
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


# --- A whole Response, from any IdP -------------------------------------------

NS = {"samlp": c.SAMLP, "saml": c.SAML, "ds": c.DS}


_BYTE_ORDER_MARKS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def decode_response(data: bytes) -> tuple[bytes, int]:
    """The XML of a response given as XML (any BOM) or as base64, and its base64 length (R13)."""
    text = data.strip()
    if text.startswith(b"<") or text.startswith(_BYTE_ORDER_MARKS):
        return text, len(base64.b64encode(text))
    compact = b"".join(text.split())
    try:
        return base64.b64decode(compact, validate=True), len(compact)
    except (binascii.Error, ValueError) as problem:
        raise SamlError(
            "Not a SAMLResponse",
            f"The input is neither XML nor base64 ({problem}).",
            "Paste the SAMLResponse form field as it was posted, or the decoded XML.",
        ) from problem


def _parse_instant(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def read_release(assertion: etree._Element) -> Release:
    name_id = assertion.find("saml:Subject/saml:NameID", NS)
    attributes = tuple(
        Attribute(
            name=element.get("Name", ""),
            values=tuple(v.text or "" for v in element.iterfind("saml:AttributeValue", NS)),
            name_format=element.get("NameFormat", ""),
            friendly_name=element.get("FriendlyName", ""),
        )
        for element in assertion.iterfind("saml:AttributeStatement/saml:Attribute", NS)
    )
    return Release(
        NameID((name_id.text or "").strip(), name_id.get("Format", ""))
        if name_id is not None
        else NameID("", ""),
        attributes,
    )


def _check_times(root: etree._Element, assertion: etree._Element, now) -> list[Finding]:
    findings = []
    conditions = assertion.find("saml:Conditions", NS)
    if conditions is None:
        conditions = etree.Element("none")
    instants = {
        "Response IssueInstant": root.get("IssueInstant"),
        "Assertion IssueInstant": assertion.get("IssueInstant"),
        "Conditions NotBefore": conditions.get("NotBefore"),
        "Conditions NotOnOrAfter": conditions.get("NotOnOrAfter"),
    }
    for confirmation in assertion.iterfind(".//saml:SubjectConfirmationData", NS):
        instants["SubjectConfirmationData NotOnOrAfter"] = confirmation.get("NotOnOrAfter")
    for label, value in instants.items():
        if value and not value.endswith("Z"):
            findings.append(error("R12", f"{label} {value!r} must be UTC with a trailing Z."))
    issued = _parse_instant(instants["Assertion IssueInstant"])
    if issued is None:
        findings.append(error("R12", "The Assertion has no valid IssueInstant."))
    elif now - issued > REDEEM_WITHIN:
        findings.append(
            error(
                "R12",
                "'Token must be redeemed within 5 minutes of issuance': it was issued at "
                f"{instants['Assertion IssueInstant']}. Use a fresh response, and check the "
                "IdP's clock.",
            )
        )
    elif issued - now > datetime.timedelta(minutes=5):
        findings.append(
            error(
                "R12",
                f"IssueInstant {instants['Assertion IssueInstant']} is in the future; "
                "check the IdP's clock.",
            )
        )
    for label in ("Conditions NotOnOrAfter", "SubjectConfirmationData NotOnOrAfter"):
        moment = _parse_instant(instants.get(label))
        if moment is not None and moment <= now:
            findings.append(
                error(
                    "R12",
                    f"'Response has expired': {label} is {instants[label]}. Use a fresh "
                    "response, and check the IdP's clock.",
                )
            )
    not_before = _parse_instant(instants["Conditions NotBefore"])
    if not_before is not None and not_before > now:
        findings.append(
            error(
                "R12",
                f"Conditions NotBefore {instants['Conditions NotBefore']} is in the "
                "future: the assertion is not valid yet. Check the IdP's clock.",
            )
        )
    return findings


def _check_confirmation(root, assertion) -> tuple[list[Finding], str]:
    findings = []
    bearers = [
        confirmation
        for confirmation in assertion.iterfind("saml:Subject/saml:SubjectConfirmation", NS)
        if confirmation.get("Method") == c.CONFIRMATION_BEARER
    ]
    if len(bearers) != 1:
        findings.append(
            error(
                "R9",
                f"The Subject has {len(bearers)} bearer SubjectConfirmations; AWS needs "
                "exactly one.",
            )
        )
        return findings, ""
    data = bearers[0].find("saml:SubjectConfirmationData", NS)
    recipient = data.get("Recipient", "") if data is not None else ""
    if data is None or not data.get("NotOnOrAfter") or not recipient:
        findings.append(
            error("R9", "SubjectConfirmationData needs both NotOnOrAfter and Recipient.")
        )
    destination = root.get("Destination", "")
    if recipient and destination != recipient:
        findings.append(
            error(
                "R9",
                f"The Response Destination {destination or '(none)'} is not the "
                f"Recipient {recipient}; both must be the ACS the response is posted to.",
            )
        )
    return findings, recipient


def check_algorithms(method: str, digests: set[str], label: str = "assertion") -> list[Finding]:
    """R11: AWS documents RSA-SHA256 with SHA-256 digests; others are a gamble."""
    findings = []
    if method != c.SIG_RSA_SHA256:
        findings.append(
            warning(
                "R11",
                f"The {label} is signed with {method or 'no SignatureMethod'}; AWS documents "
                f"{c.SIG_RSA_SHA256}. Switch the signature algorithm.",
            )
        )
    if digests != {c.DIGEST_SHA256}:
        findings.append(
            warning("R11", f"The {label} signature digests with {sorted(digests)}; use SHA-256.")
        )
    return findings


def _algorithm(signature: etree._Element, path: str) -> str:
    element = signature.find(path, NS)
    return element.get("Algorithm", "") if element is not None else ""


def _key_problem(body: str) -> str:
    """Why the KeyInfo certificate cannot sign for AWS, or ''."""
    try:
        public_key = x509.load_pem_x509_certificate(pem_from_base64(body).encode()).public_key()
    except (ValueError, binascii.Error):
        return "The signature's KeyInfo certificate cannot be read"
    if not isinstance(public_key, rsa.RSAPublicKey):
        return "The signing key is not RSA; AWS needs RSA of at least 2048 bits"
    if public_key.key_size < 2048:
        return f"The signing key has {public_key.key_size} bits; AWS needs at least 2048"
    return ""


def _signature_findings(
    element: etree._Element, label: str, certificates: Sequence[str]
) -> list[Finding]:
    signature = element.find("ds:Signature", NS)
    if signature is None:
        return []
    digests = {d.get("Algorithm") or "" for d in signature.iterfind(".//ds:DigestMethod", NS)}
    findings = check_algorithms(
        _algorithm(signature, "ds:SignedInfo/ds:SignatureMethod"), digests, label
    )
    canonical = _algorithm(signature, "ds:SignedInfo/ds:CanonicalizationMethod")
    if canonical != EXC_C14N:
        findings.append(
            warning(
                "R11",
                f"The {label} signature canonicalizes with {canonical or 'nothing'}; "
                "use exclusive canonicalization.",
            )
        )
    reference = signature.find("ds:SignedInfo/ds:Reference", NS)
    if (
        not element.get("ID")
        or reference is None
        or reference.get("URI") != "#" + element.get("ID")
    ):
        findings.append(
            error(
                "R11",
                f"The {label} signature does not reference the {label} "
                "itself (a wrapped or detached signature). Sign the element by its ID.",
            )
        )
        return findings
    body = signature.findtext(".//ds:X509Certificate", namespaces=NS)
    if not body:
        findings.append(
            error(
                "R11",
                f"The {label} signature's KeyInfo carries no X509 certificate; AWS needs it there.",
            )
        )
    elif problem := _key_problem(body):
        findings.append(error("R11", f"{problem}."))
    if certificates and not any(signature_valid(element, cert) for cert in certificates):
        findings.append(
            error(
                "R11",
                f"'InvalidIdentityToken: Response signature invalid': the {label} signature does "
                "not verify against any certificate in the metadata. Update the metadata in IAM "
                "(aws iam update-saml-provider) or sign with the published key.",
            )
        )
    return findings


def _check_status(root: etree._Element) -> list[Finding]:
    if root.tag != f"{{{c.SAMLP}}}Response":
        return [error("SAML", f"The root element is {root.tag}, not samlp:Response.")]
    status = root.find("samlp:Status/samlp:StatusCode", NS)
    if status is None or status.get("Value") != c.STATUS_SUCCESS:
        codes = [e.get("Value") for e in root.iterfind(".//samlp:StatusCode", NS)]
        message = root.findtext("samlp:Status/samlp:StatusMessage", namespaces=NS) or ""
        return [error("SAML", f"The IdP answered status {codes} {message}".strip())]
    ids = [e.get("ID") for e in root.iter() if isinstance(e.tag, str) and e.get("ID")]
    if len(ids) != len(set(ids)):
        return [error("SAML", "Two elements share one ID, which makes signatures ambiguous.")]
    return []


def check_response(
    data: bytes,
    *,
    now: datetime.datetime | None = None,
    certificates: Sequence[str] = (),
    issuer: str | None = None,
) -> list[Finding]:
    """Every finding about a SAMLResponse from any IdP, as XML or base64.

    `certificates` and `issuer` come from the IdP metadata that IAM holds; without
    them the signature is checked for form only.
    """
    now = now or datetime.datetime.now(datetime.UTC)
    try:
        xml, encoded_length = decode_response(data)
    except SamlError as problem:
        return [error("R13", f"{problem.detail} {problem.hint}")]
    findings = []
    if not 4 <= encoded_length <= MAX_ENCODED_RESPONSE:
        findings.append(
            error(
                "R13",
                f"The base64 response is {encoded_length} characters; AWS accepts 4 to "
                f"{MAX_ENCODED_RESPONSE}. Send fewer attributes or roles.",
            )
        )
    try:
        root = parse_xml(xml, "The SAMLResponse")
    except SamlError as problem:
        return findings + [error("SAML", f"{problem.title}: {problem.detail}")]
    if problems := _check_status(root):
        return findings + problems
    findings += _signature_findings(root, "Response", certificates)
    encrypted = root.findall("saml:EncryptedAssertion", NS)
    assertions = root.findall("saml:Assertion", NS)
    if len(assertions) + len(encrypted) != 1:
        return findings + [
            error(
                "SAML",
                f"The Response holds {len(assertions) + len(encrypted)} assertions; AWS reads "
                "exactly one.",
            )
        ]
    if encrypted:
        return findings + _check_encrypted_response(root, issuer, now)
    assertion = assertions[0]
    audiences = [
        [(a.text or "").strip() for a in restriction.iterfind("saml:Audience", NS)]
        for restriction in assertion.iterfind("saml:Conditions/saml:AudienceRestriction", NS)
    ]
    profile = profile_for_audience(next((a for r in audiences for a in r), ""))
    findings += check_release(read_release(assertion), profile)
    confirmation_findings, recipient = _check_confirmation(root, assertion)
    findings += confirmation_findings
    findings += check_endpoints(recipient, audiences, profile)
    findings += _check_issuer(root, assertion, issuer)
    if assertion.find("ds:Signature", NS) is None:
        findings.append(
            error(
                "R11",
                "The Assertion is not signed, and AWS's SP metadata says "
                'WantAssertionsSigned="true". Sign the assertion.',
            )
        )
    findings += _signature_findings(assertion, "Assertion", certificates)
    findings += _check_times(root, assertion, now)
    return findings


def _check_encrypted_response(root, issuer: str | None, now) -> list[Finding]:
    """What can be judged without the SP's private key: where it goes, who sent it, when."""
    destination = root.get("Destination", "")
    profile = PROFILE_IDENTITY_CENTER if _IC_ACS.fullmatch(destination) else PROFILE_AWS
    findings = check_endpoints(destination, None, profile, encrypted=True)
    expected = issuer and (root.findtext("saml:Issuer", namespaces=NS) or "").strip()
    if issuer and expected != issuer:
        findings.append(
            error("R8", f"Issuer {expected or '(none)'} is not the metadata's entityID {issuer}.")
        )
    issued = _parse_instant(root.get("IssueInstant"))
    if issued is not None and now - issued > REDEEM_WITHIN:
        findings.append(
            error(
                "R12",
                "'Token must be redeemed within 5 minutes of issuance': the Response "
                f"was issued at {root.get('IssueInstant')}.",
            )
        )
    findings.append(
        warning(
            "R14",
            "The assertion is encrypted: only the SP's private key can read it, so the "
            "attributes, subject and assertion signature were not checked.",
        )
    )
    return findings


def _check_issuer(root, assertion, expected: str | None) -> list[Finding]:
    issuer = (assertion.findtext("saml:Issuer", namespaces=NS) or "").strip()
    if not issuer:
        return [
            error(
                "R8",
                "The Assertion has no Issuer; saml:iss must equal the entityID "
                "of the metadata in IAM.",
            )
        ]
    findings = []
    response_issuer = (root.findtext("saml:Issuer", namespaces=NS) or "").strip()
    if response_issuer and response_issuer != issuer:
        findings.append(
            error(
                "R8",
                f"The Response Issuer {response_issuer} differs from the "
                f"Assertion Issuer {issuer}.",
            )
        )
    if expected and issuer != expected:
        findings.append(
            error(
                "R8",
                f"Issuer {issuer} is not the metadata's entityID {expected}; IAM compares "
                "them. Re-export the metadata, or fix IDP_ENTITY_ID.",
            )
        )
    return findings


def check_response_with_metadata(
    response: bytes, metadata: bytes | None, now: datetime.datetime | None = None
) -> list[Finding]:
    """check_response, with the certificates and entityID read from IdP metadata."""
    if metadata is None:
        return check_response(response, now=now)
    described = parse_idp_metadata(metadata)
    if not described.signing_certificates:
        raise SamlError(
            "The metadata has no signing certificate",
            "Nothing could verify the response's signature against it, and IAM would "
            "refuse it too.",
            "Pass the IdP metadata with its signing KeyDescriptor.",
        )
    return check_response(
        response,
        now=now,
        certificates=described.signing_certificates,
        issuer=described.entity_id,
    )
