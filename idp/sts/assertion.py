"""The assertion of an AssumeRoleWithSAML request, validated as AWS documents it.

A pure function of its arguments: the SAMLAssertion parameter, the role and
provider ARNs, the metadata document IAM holds for that provider, the role's
MaxSessionDuration and the instant to judge at (the door passes idp.clock's).
No request, no ORM, no moto: the door (idp/sts/views.py) finds the provider and
the role, and evaluates the trust policy on `policy_context()` afterwards.

It reads the response the way the whole-response checker (idp.saml.aws) does,
with the same hardening: the layout that refuses signature wrapping, the
signature allow-list of idp.saml.signing, the AWS names and rules. Where the
checker reports findings, this raises the first refusal as AWS words it
(idp.sts.errors), with fedmock's explanation: what was checked, and the values.

The order of the checks follows the request's life: the parameters, the
document, the signature against the provider's metadata, the Issuer, the time
window, where the response was sent and for whom, then what it says (subject,
the role pair, the session name, source identity, duration and tags).
"""

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lxml import etree

from .. import scenarios
from ..saml import aws
from ..saml import constants as c
from ..saml.aws.layout import check_layout, read_as_canonical
from ..saml.aws.names import PROVIDER_ARN, ROLE_ARN, SESSION_NAME, aws_acs, is_arn
from ..saml.aws.response import text
from ..saml.bindings import parse_xml
from ..saml.errors import SamlError
from ..saml.metadata import parse_idp_metadata
from ..saml.signing import enveloped_signature, fingerprint, pem_from_base64, signature_valid
from . import errors

NS = aws.NS
DEFAULT_DURATION = 3600  # AssumeRoleWithSAML's default DurationSeconds
MIN_DURATION, MAX_DURATION = 900, 43200  # botocore's roleDurationSecondsType
MIN_ASSERTION, MAX_ASSERTION = 4, aws.MAX_ENCODED_RESPONSE  # botocore's SAMLAssertionType
MAX_TAG_KEY, MAX_TAG_VALUE = 128, 256
ACTION = "sts:AssumeRoleWithSAML"

# The SAML attributes AWS maps to trust-policy keys (IAM User Guide, "Configure SAML
# assertions for the authentication response": mapping SAML attributes to AWS trust
# policy context keys), by the attribute's Name. True: the key is multi-valued (the
# condition-keys reference marks it []) and is always given as a list.
_EDUPERSON = "urn:oid:1.3.6.1.4.1.5923.1.1.1."
_EDUORG = "urn:oid:1.3.6.1.4.1.5923.1.2.1."
SAML_ATTRIBUTE_KEYS: dict[str, tuple[str, bool]] = {
    _EDUPERSON + "1": ("saml:edupersonaffiliation", True),
    _EDUPERSON + "2": ("saml:edupersonnickname", True),
    _EDUPERSON + "3": ("saml:edupersonorgdn", False),
    _EDUPERSON + "4": ("saml:edupersonorgunitdn", True),
    _EDUPERSON + "5": ("saml:edupersonprimaryaffiliation", False),
    _EDUPERSON + "6": ("saml:edupersonprincipalname", False),
    _EDUPERSON + "7": ("saml:edupersonentitlement", True),
    _EDUPERSON + "8": ("saml:edupersonprimaryorgunitdn", False),
    _EDUPERSON + "9": ("saml:edupersonscopedaffiliation", True),
    _EDUPERSON + "10": ("saml:edupersontargetedid", True),
    _EDUPERSON + "11": ("saml:edupersonassurance", True),
    _EDUORG + "2": ("saml:eduorghomepageuri", True),
    _EDUORG + "3": ("saml:eduorgidentityauthnpolicyuri", True),
    _EDUORG + "4": ("saml:eduorglegalname", True),
    _EDUORG + "5": ("saml:eduorgsuperioruri", True),
    _EDUORG + "6": ("saml:eduorgwhitepagesuri", True),
    "urn:oid:2.5.4.3": ("saml:cn", True),
    # The same page's Active Directory and X.500 tables (the X.500 names as AWS prints
    # them, bare OIDs, typos included: 2.4.5.42, 0.9.2342.19200300.100.1.45). The
    # condition-keys reference marks these keys [] too; a single value stays a string.
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name": ("saml:name", False),
    "http://schemas.xmlsoap.org/claims/CommonName": ("saml:commonName", False),
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname": ("saml:givenName", False),
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname": ("saml:surname", False),
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress": ("saml:mail", False),
    "http://schemas.microsoft.com/ws/2008/06/identity/claims/primarygroupsid": ("saml:uid", False),
    "2.5.4.3": ("saml:commonName", False),
    "2.5.4.4": ("saml:surname", False),
    "2.4.5.42": ("saml:givenName", False),
    "2.5.4.45": ("saml:x500UniqueIdentifier", False),
    "0.9.2342.19200300100.1.1": ("saml:uid", False),
    "0.9.2342.19200300100.1.3": ("saml:mail", False),
    "0.9.2342.19200300.100.1.45": ("saml:organizationStatus", False),
}


@dataclass(frozen=True)
class ValidatedAssertion:
    """What STS read from an assertion it accepted, and the keys a trust policy sees."""

    issuer: str
    subject: str  # the NameID value (saml:sub)
    subject_type: str  # persistent, transient, or the whole Format URI (saml:sub_type)
    audience: str  # the SubjectConfirmationData Recipient: saml:aud is the Recipient (R8)
    name_qualifier: str
    doc: str  # account/provider-name (saml:doc)
    attributes: Mapping[str, tuple[str, ...]]  # every attribute, by Name, values merged
    role_arn: str
    principal_arn: str
    session_name: str
    duration_seconds: int  # what the session gets: the request, shortened as AWS documents
    tags: Mapping[str, str]
    transitive_tag_keys: tuple[str, ...]
    source_identity: str | None
    assertion_id: str
    not_on_or_after: datetime.datetime  # the earliest NotOnOrAfter: until then it replays
    issue_instant: datetime.datetime
    validated_at: datetime.datetime
    notes: tuple[str, ...] = field(default=())  # what was accepted but changed or worth saying

    def policy_context(self) -> dict[str, str | list[str]]:
        """The condition keys of this request for the role's trust policy.

        The SAML keys are AWS's lower-case names (keys match case-insensitively);
        aws:TagKeys, aws:RequestTag/*, sts:TransitiveTagKeys and sts:SourceIdentity
        are present only when the assertion sends them, as in AWS, so that Null and
        ...IfExists conditions see them absent. Request-wide keys (aws:SourceIp,
        aws:SecureTransport) are the door's to add.
        """
        context: dict[str, str | list[str]] = {
            "saml:aud": self.audience,
            "saml:sub": self.subject,
            "saml:sub_type": self.subject_type,
            "saml:iss": self.issuer,
            "saml:namequalifier": self.name_qualifier,
            "saml:doc": self.doc,
            "aws:CurrentTime": self.validated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "aws:EpochTime": str(int(self.validated_at.timestamp())),
        }
        for name, values in self.attributes.items():
            mapped = SAML_ATTRIBUTE_KEYS.get(name)
            if mapped is None or not values:
                continue
            key, multi = mapped
            if key in context:
                # Two claims for one key (AD's and X.500's mail): AWS maps only one ("You
                # should include only one claim per AWS context key"); fedmock keeps both.
                previous = context[key]
                values = (*(previous if isinstance(previous, list) else [previous]), *values)
                multi = True
            context[key] = list(values) if multi or len(values) > 1 else values[0]
        if self.tags:
            context["aws:TagKeys"] = list(self.tags)
            for key, value in self.tags.items():
                context[f"aws:RequestTag/{key}"] = value
        if self.transitive_tag_keys:
            context["sts:TransitiveTagKeys"] = list(self.transitive_tag_keys)
        if self.source_identity is not None:
            context["sts:SourceIdentity"] = self.source_identity
        return context

    @property
    def required_actions(self) -> tuple[str, ...]:
        """Every action the trust policy must allow for this request (AWS's rule)."""
        actions = [ACTION]
        if self.tags or self.transitive_tag_keys:
            actions.append("sts:TagSession")
        if self.source_identity is not None:
            actions.append("sts:SetSourceIdentity")
        return tuple(actions)


def validate(
    saml_response: str,
    *,
    role_arn: str,
    principal_arn: str,
    provider_metadata: bytes,
    duration_seconds: int | None,
    role_max_session_duration: int,
    now: datetime.datetime,
) -> ValidatedAssertion:
    """The assertion, accepted; or StsError with AWS's code and message, and why."""
    _check_parameters(saml_response, role_arn, principal_arn, duration_seconds)
    root = _document(saml_response)
    certificates, entity_id = _provider(provider_metadata, principal_arn)
    assertion = _verified_assertion(root, certificates)
    issuer = _check_issuer(root, assertion, entity_id, principal_arn)
    not_on_or_after, issued = _check_times(assertion, now)
    recipient = _check_recipient(root, assertion)
    return _read(
        assertion,
        issuer=issuer,
        recipient=recipient,
        role_arn=role_arn,
        principal_arn=principal_arn,
        duration_seconds=duration_seconds,
        role_max_session_duration=role_max_session_duration,
        not_on_or_after=not_on_or_after,
        issued=issued,
        now=now,
    )


def read_unverified(
    saml_response: str, *, role_arn: str, principal_arn: str, now: datetime.datetime
) -> ValidatedAssertion:
    """What the assertion says, WITHOUT the signature, Issuer, time window and audience
    checks: for an explainer that has no metadata (a response copied from a browser).

    Its `policy_context()` is what the trust policy would see if the response were
    valid; the values are the assertion's, read by the same code as `validate`'s. The
    role pair, session name, source identity and tags are still checked, since AWS
    refuses their faults before any policy is evaluated.
    """
    _check_parameters(saml_response, role_arn, principal_arn, None)
    root = _document(saml_response)
    assertion = _only_assertion(root)
    issuer = text(assertion.find("saml:Issuer", NS)).strip()
    data = assertion.find("saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData", NS)
    recipient = data.get("Recipient", "") if data is not None else ""
    issued = _instant(assertion.get("IssueInstant"), "IssueInstant") or now
    return _read(
        assertion,
        issuer=issuer,
        recipient=recipient,
        role_arn=role_arn,
        principal_arn=principal_arn,
        duration_seconds=None,
        role_max_session_duration=MAX_DURATION,
        not_on_or_after=now,
        issued=issued,
        now=now,
    )


def role_pairs(saml_response: str) -> tuple[aws.RolePair, ...]:
    """The role pairs the (unverified) assertion's Role attribute offers: for choosing one."""
    assertion = _only_assertion(_document(saml_response))
    values: tuple[str, ...] = ()
    for attribute in aws.read_release(assertion).attributes:
        if attribute.name == aws.ROLE:
            values += attribute.values
    return tuple(aws.parse_roles(values))


def _only_assertion(root: etree._Element) -> etree._Element:
    if root.find("saml:EncryptedAssertion", NS) is not None:
        raise _not_a_response("encrypted assertion", "The assertion is encrypted.")
    assertions = root.findall("saml:Assertion", NS)
    if len(assertions) != 1:
        raise _not_a_response("no Assertion", "The Response holds no saml:Assertion.")
    return assertions[0]


def _read(
    assertion: etree._Element,
    *,
    issuer: str,
    recipient: str,
    role_arn: str,
    principal_arn: str,
    duration_seconds: int | None,
    role_max_session_duration: int,
    not_on_or_after: datetime.datetime,
    issued: datetime.datetime,
    now: datetime.datetime,
) -> ValidatedAssertion:
    """What the assertion says (subject, role pair, session, tags, duration), checked."""
    subject, subject_type = _subject(assertion)
    release = aws.read_release(assertion)
    attributes: dict[str, tuple[str, ...]] = {}
    for attribute in release.attributes:  # AWS reads one name sent twice as one attribute
        attributes[attribute.name] = attributes.get(attribute.name, ()) + attribute.values
    _check_role(attributes.get(aws.ROLE, ()), role_arn, principal_arn)
    session_name = _session_name(attributes.get(aws.ROLE_SESSION_NAME, ()))
    source_identity = _source_identity(attributes.get(aws.SOURCE_IDENTITY))
    tags, transitive = _tags(attributes)
    duration, notes = _duration(
        duration_seconds, role_max_session_duration, attributes, assertion, now
    )
    # saml:namequalifier and saml:doc name the account that owns the provider (the IAM
    # docs' wording), which a Role value may pair with a role of another account.
    account, provider_name = (
        principal_arn.split(":")[4],
        aws.RolePair(role_arn, principal_arn).provider_name,
    )
    return ValidatedAssertion(
        issuer=issuer,
        subject=subject,
        subject_type=subject_type,
        audience=recipient,
        name_qualifier=aws.name_qualifier(issuer, account, provider_name),
        doc=f"{account}/{provider_name}",
        attributes=attributes,
        role_arn=role_arn,
        principal_arn=principal_arn,
        session_name=session_name,
        duration_seconds=duration,
        tags=tags,
        transitive_tag_keys=transitive,
        source_identity=source_identity,
        assertion_id=assertion.get("ID", ""),
        not_on_or_after=not_on_or_after,
        issue_instant=issued,
        validated_at=now,
        notes=notes,
    )


# --- The request's parameters --------------------------------------------------------


def _check_parameters(
    saml_response: str, role_arn: str, principal_arn: str, duration_seconds: int | None
) -> None:
    length = len(saml_response)
    if length < MIN_ASSERTION:
        raise errors.constraint(
            None,
            "sAMLAssertion",
            f"Member must have length greater than or equal to {MIN_ASSERTION}",
            (
                f"SAMLAssertion is {length} characters; AWS's model needs {MIN_ASSERTION} to "
                f"{MAX_ASSERTION} (R13).",
            ),
            sensitive=True,
        )
    if length > MAX_ASSERTION:
        raise errors.constraint(
            None,
            "sAMLAssertion",
            f"Member must have length less than or equal to {MAX_ASSERTION}",
            (
                f"SAMLAssertion is {length} characters; AWS accepts at most {MAX_ASSERTION} (R13). "
                "Send fewer attributes or roles.",
            ),
            sensitive=True,
        )
    for label, arn, pattern, example in (
        ("RoleArn", role_arn, ROLE_ARN, "arn:aws:iam::111122223333:role/Admin"),
        ("PrincipalArn", principal_arn, PROVIDER_ARN, "arn:aws:iam::111122223333:saml-provider/X"),
    ):
        if not is_arn(pattern, arn):
            raise errors.ARN_INVALID.error(
                f"{label} {arn[:200]!r} is not an ARN of that kind; it must look like {example}."
            )
    if duration_seconds is not None and not MIN_DURATION <= duration_seconds <= MAX_DURATION:
        bound = (
            f"greater than or equal to {MIN_DURATION}"
            if duration_seconds < MIN_DURATION
            else f"less than or equal to {MAX_DURATION}"
        )
        raise errors.constraint(
            duration_seconds,
            "durationSeconds",
            f"Member must have value {bound}",
            (
                f"DurationSeconds is {duration_seconds}; AWS accepts {MIN_DURATION} to "
                f"{MAX_DURATION}, and at most the role's MaxSessionDuration.",
            ),
        )


# --- The document ----------------------------------------------------------------------


def _not_a_response(reason: str, *explanation: str) -> errors.StsError:
    return errors.NOT_A_RESPONSE.error(*explanation, reason=reason)


def _document(saml_response: str) -> etree._Element:
    data = saml_response.strip().encode("utf-8", "replace")
    if data.startswith(b"<"):
        # decode_response would take XML as it is; the API parameter is base64 only.
        raise _not_a_response(
            "not base64",
            "SAMLAssertion holds XML; AWS takes the base64 of the Response, as the IdP posts it "
            "in the SAMLResponse form field.",
        )
    try:
        xml, _ = aws.decode_response(data)
        root = parse_xml(xml, "The SAMLResponse")
        read_as_canonical(root)
    except SamlError as problem:
        raise _not_a_response(
            "not a SAML document", f"{problem.title}: {problem.detail}".rstrip(": ")
        ) from None
    if root.tag != f"{{{c.SAMLP}}}Response":
        raise _not_a_response(
            "not a Response", f"The decoded document's root is {root.tag}, not samlp:Response."
        )
    status = root.find("samlp:Status/samlp:StatusCode", NS)
    if status is None or status.get("Value") != c.STATUS_SUCCESS:
        codes = [e.get("Value") for e in root.iterfind(".//samlp:StatusCode", NS)]
        message = text(root.find("samlp:Status/samlp:StatusMessage", NS)).strip()
        raise errors.IDP_REJECTED.error(
            f"The Response's status is {codes or 'missing'}"
            + (f" ({message[:200]})" if message else "")
            + f", not {c.STATUS_SUCCESS}: the IdP says the sign-on failed.",
        )
    try:
        check_layout(root)
    except SamlError as problem:
        raise errors.SIGNATURE_INVALID.error(
            f"{problem.title}: {problem.detail}",
            "Only what a verified signature covers is read, and this layout hides what it covers.",
        ) from None
    ids = [e.get("ID") for e in root.iter() if isinstance(e.tag, str) and e.get("ID")]
    if len(ids) != len(set(ids)):
        raise errors.SIGNATURE_INVALID.error(
            "Two elements share one ID, so a signature's Reference could name either."
        )
    return root


def _provider(metadata: bytes, principal_arn: str) -> tuple[tuple[str, ...], str]:
    try:
        described = parse_idp_metadata(metadata)
    except SamlError as problem:
        raise errors.SIGNATURE_INVALID.error(
            f"The metadata of {principal_arn} cannot be read ({problem.title}: {problem.detail}); "
            "nothing can verify the signature against it.",
            "Update the provider with the IdP's metadata (aws iam update-saml-provider).",
        ) from None
    if not described.signing_certificates:
        raise errors.SIGNATURE_INVALID.error(
            f"The metadata of {principal_arn} publishes no signing certificate; nothing can "
            "verify the signature against it."
        )
    return described.signing_certificates, described.entity_id


# --- The signature -----------------------------------------------------------------------


def _key_info_certificate(signature: etree._Element) -> str | None:
    body = signature.findtext("ds:KeyInfo/ds:X509Data/ds:X509Certificate", namespaces=NS)
    try:
        return pem_from_base64(body) if body else None
    except ValueError:
        return None


def _short(certificate: str) -> str:
    return f"sha256 {fingerprint(certificate)[:16]}…"


def _check_signed(element: etree._Element, label: str, certificates: Sequence[str]) -> bool:
    """Whether `element` carries a signature; StsError unless it verifies with the metadata."""
    try:
        signature = enveloped_signature(element)
        if signature is None:
            return False
        valid = any(signature_valid(element, certificate) for certificate in certificates)
    except SamlError as problem:  # outside the allow-list: refused before canonicalising
        raise errors.SIGNATURE_INVALID.error(f"The {label} signature: {problem.detail}") from None
    if valid:
        return True
    published = ", ".join(_short(certificate) for certificate in certificates)
    named = _key_info_certificate(signature)
    if named is None:
        cause = (
            "Its KeyInfo names no readable certificate, and no certificate in the metadata "
            "verifies it."
        )
    elif fingerprint(named) in {fingerprint(certificate) for certificate in certificates}:
        cause = (
            f"Its KeyInfo names {_short(named)}, which the metadata holds: the signed content "
            "was changed after signing."
        )
    else:
        cause = (
            f"Its KeyInfo names {_short(named)}, which the metadata lacks: the IdP signs with a "
            "key IAM never received (a rotation). Update the provider's metadata (python "
            "manage.py sync_iam_provider, or aws iam update-saml-provider)."
        )
    raise errors.SIGNATURE_INVALID.error(
        f"The {label} signature does not verify against any certificate in the provider's "
        f"metadata ({published}).",
        cause,
    )


def _verified_assertion(root: etree._Element, certificates: Sequence[str]) -> etree._Element:
    assertions = root.findall("saml:Assertion", NS)
    if root.find("saml:EncryptedAssertion", NS) is not None:
        raise _not_a_response(
            "encrypted assertion",
            "The assertion is encrypted; the local STS holds no provider private key "
            "(AddPrivateKey), so it cannot read it. Turn encryption off for this SP.",
        )
    if len(assertions) != 1:  # check_layout refused more than one
        raise _not_a_response("no Assertion", "The Response holds no saml:Assertion.")
    response_signed = _check_signed(root, "Response", certificates)
    if not _check_signed(assertions[0], "Assertion", certificates):
        raise errors.SIGNATURE_INVALID.error(
            "The Assertion is not signed"
            + (" (only the Response is)" if response_signed else ", nor is the Response")
            + '; AWS\'s SP metadata says WantAssertionsSigned="true" (R11). Sign the assertion.'
        )
    return assertions[0]


# --- Who sent it, when, and to whom --------------------------------------------------------


def _check_issuer(root, assertion, entity_id: str, principal_arn: str) -> str:
    issuer = text(assertion.find("saml:Issuer", NS)).strip()
    response_issuer = text(root.find("saml:Issuer", NS)).strip()
    for label, value in (("Assertion", issuer), ("Response", response_issuer)):
        if (value or label == "Assertion") and value != entity_id:
            raise errors.ISSUER_MISMATCH.error(
                f"The {label} Issuer is {value or '(none)'!r}; the metadata of {principal_arn} "
                f"has entityID {entity_id!r}. IAM compares them exactly (R8).",
                "Fix the IdP's entity ID, or update the provider with its current metadata.",
            )
    return issuer


def _instant(value: str | None, label: str) -> datetime.datetime | None:
    if not value:
        return None
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _not_a_response(
            "bad instant", f"{label} {value[:60]!r} is not an xs:dateTime."
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def _z(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_times(assertion, now: datetime.datetime):
    """R12: NotBefore/NotOnOrAfter, then the 5 minutes from IssueInstant to redemption."""
    conditions = assertion.find("saml:Conditions", NS)
    data = assertion.find("saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData", NS)
    ends = {
        "Conditions NotOnOrAfter": conditions.get("NotOnOrAfter")
        if conditions is not None
        else None,
        "SubjectConfirmationData NotOnOrAfter": data.get("NotOnOrAfter")
        if data is not None
        else None,
    }
    moments = {label: _instant(value, label) for label, value in ends.items()}
    for label, moment in moments.items():
        if moment is not None and moment <= now:
            raise errors.RESPONSE_EXPIRED.error(
                f"{label} is {ends[label]}; STS judged it at {_z(now)}, "
                f"{(now - moment).total_seconds():.0f} s later.",
                "Use a fresh response, and check the IdP's clock (and IDP_CLOCK_OFFSET).",
            )
    not_before = _instant(
        conditions.get("NotBefore") if conditions is not None else None, "NotBefore"
    )
    if not_before is not None and not_before > now:
        raise errors.NOT_YET_VALID.error(
            f"Conditions NotBefore is {_z(not_before)}, {(not_before - now).total_seconds():.0f} s "
            f"after STS's time {_z(now)}: the IdP's clock runs ahead.",
        )
    issued = _instant(assertion.get("IssueInstant"), "IssueInstant")
    if issued is None:
        raise _not_a_response("no IssueInstant", "The Assertion has no IssueInstant.")
    if now - issued > aws.REDEEM_WITHIN:
        raise errors.REDEEM_WITHIN.error(
            f"The Assertion's IssueInstant is {_z(issued)}, {(now - issued).total_seconds():.0f} s "
            f"before STS's time {_z(now)}; AWS redeems an assertion within 300 s of issue, "
            "whatever its NotOnOrAfter says (R12).",
            "Use a fresh response, and check the IdP's clock.",
        )
    if issued - now > aws.REDEEM_WITHIN:
        raise errors.NOT_YET_VALID.error(
            f"The Assertion's IssueInstant {_z(issued)} is {(issued - now).total_seconds():.0f} s "
            f"after STS's time {_z(now)}: the IdP's clock runs ahead.",
        )
    known = [moment for moment in moments.values() if moment is not None]
    if not known:
        raise _not_a_response(
            "no NotOnOrAfter", "Neither Conditions nor SubjectConfirmationData has NotOnOrAfter."
        )
    return min(known), issued


def _check_recipient(root, assertion) -> str:
    bearers = [
        confirmation
        for confirmation in assertion.iterfind("saml:Subject/saml:SubjectConfirmation", NS)
        if confirmation.get("Method") == c.CONFIRMATION_BEARER
    ]
    data = bearers[0].find("saml:SubjectConfirmationData", NS) if len(bearers) == 1 else None
    recipient = data.get("Recipient", "") if data is not None else ""
    form = aws_acs(recipient) if recipient else None
    if form is None:
        raise errors.RECIPIENT_INVALID.error(
            f"The assertion has {len(bearers)} bearer SubjectConfirmation(s) with Recipient "
            f"{recipient or '(none)'!r}; AWS needs exactly one, with Recipient "
            f"{aws.SIGNIN_ACS} or https://<region>.signin.aws.amazon.com/saml (R9).",
        )
    destination = root.get("Destination", "")
    if destination != recipient:
        raise errors.DESTINATION_INVALID.error(
            f"The Response Destination is {destination or '(none)'!r}, the Recipient "
            f"{recipient!r}; both must be the AWS sign-in endpoint it is posted to (R9).",
        )
    restrictions = [
        [text(a).strip() for a in restriction.iterfind("saml:Audience", NS)]
        for restriction in assertion.iterfind("saml:Conditions/saml:AudienceRestriction", NS)
    ]
    if not restrictions or not all(form.audience in audiences for audiences in restrictions):
        given = [a for audiences in restrictions for a in audiences]
        raise errors.AUDIENCE_MISSING.error(
            f"The assertion's Audience is {', '.join(given) or '(none)'}; for Recipient "
            f"{recipient} AWS accepts only {form.audience} (R10), in every AudienceRestriction.",
            f"Set the SP's entity ID (audience) to {form.audience}.",
            *(
                [
                    "The IAM User Guide also lists https://signin.aws.amazon.com/saml as an "
                    "Audience; fedmock follows its rule R10, which names only "
                    f"{form.audience}."
                ]
                if aws.SIGNIN_ACS in given
                else []
            ),
        )
    return recipient


# --- What it says --------------------------------------------------------------------------


def _subject(assertion) -> tuple[str, str]:
    name_id = assertion.find("saml:Subject/saml:NameID", NS)
    value = text(name_id).strip() if name_id is not None else ""
    name_format = name_id.get("Format", "") if name_id is not None else ""
    if not value:
        raise errors.NOT_AUTHORIZED.error(
            "The Subject has no NameID, so saml:sub is empty; STS answers AccessDenied (R7).",
            action=ACTION,
        )
    if name_format and name_format not in aws.ACCEPTED_NAMEID_FORMATS:
        raise errors.NOT_AUTHORIZED.error(
            f"NameID format {name_format} is not one AWS accepts (R7): use persistent, "
            "transient or emailAddress.",
            action=ACTION,
        )
    # Without a Format, SAML means unspecified; AWS's saml:sub_type is then the whole URI.
    return value, aws.sub_type(name_format or c.NAMEID_UNSPECIFIED)


def _check_role(values: Sequence[str], role_arn: str, principal_arn: str) -> None:
    wanted = aws.RolePair(role_arn, principal_arn)
    pairs = aws.parse_roles(values)
    if wanted in pairs:
        return
    if not values:
        explanation = [
            f"The assertion has no {aws.ROLE} attribute, so it names no role (the console says "
            f"'{scenarios.INVALID_RESPONSE}').",
        ]
    else:
        explanation = [
            f"RoleArn {role_arn} with PrincipalArn {principal_arn} is not a pair in the "
            "assertion's Role attribute, which pairs: "
            + ("; ".join(f"{p.role_arn} with {p.provider_arn}" for p in pairs) or "nothing"),
        ]
        explanation += [f.message for f in aws.check_attribute(aws.ROLE, values)]
    explanation.append(
        "Ask for a role the assertion lists, or have the IdP send "
        f"{role_arn},{principal_arn} as one Role value (R1)."
    )
    raise errors.NOT_AUTHORIZED.error(*explanation, action=ACTION)


def _session_name(values: Sequence[str]) -> str:
    if not values:
        raise errors.SESSION_NAME_REQUIRED.error(
            f"The assertion has no {aws.ROLE_SESSION_NAME} attribute (R2).",
            "Add a claim rule that emits one RoleSessionName value, e.g. the e-mail address.",
        )
    if len(values) != 1 or not SESSION_NAME.fullmatch(values[0]):
        raise errors.SESSION_NAME_INVALID.error(
            f"RoleSessionName is {list(values)!r}: AWS takes exactly one value of 2 to 64 "
            "characters from letters, digits and _+=,.@- (R2).",
        )
    return values[0]


def _source_identity(values: Sequence[str] | None) -> str | None:
    if values is None:
        return None
    if (
        len(values) != 1
        or not SESSION_NAME.fullmatch(values[0])
        or values[0].lower().startswith("aws:")
    ):
        raise errors.SOURCE_IDENTITY_INVALID.error(
            f"SourceIdentity is {list(values)!r}: AWS takes exactly one value of 2 to 64 "
            "characters from letters, digits and _+=,.@-, not starting with 'aws:' (R4).",
        )
    return values[0]


def _tags(attributes: Mapping[str, tuple[str, ...]]) -> tuple[dict[str, str], tuple[str, ...]]:
    """R5, R6: the session tags and transitive keys, with AWS's limits."""
    tagged = {
        name.removeprefix(aws.PRINCIPAL_TAG_PREFIX): values
        for name, values in attributes.items()
        if name.startswith(aws.PRINCIPAL_TAG_PREFIX)
    }
    if len(tagged) > aws.MAX_TAGS:
        raise errors.TAGS_INVALID.error(
            f"The assertion sends {len(tagged)} PrincipalTag attributes; AWS allows at most "
            f"{aws.MAX_TAGS} session tags (R5).",
            reason="too many tags",
        )
    problems = [
        finding.message
        for key, values in tagged.items()
        for finding in aws.check_attribute(aws.PRINCIPAL_TAG_PREFIX + key, values)
    ]
    if problems:
        raise errors.TAGS_INVALID.error(
            *problems,
            f"Keys are 1 to {MAX_TAG_KEY} characters, values 0 to {MAX_TAG_VALUE}, one value "
            "per tag (R5).",
            reason="a tag key or value breaks AWS's rules",
        )
    seen: dict[str, str] = {}
    for key in tagged:
        if (other := seen.setdefault(key.lower(), key)) != key:
            raise errors.TAGS_INVALID.error(
                f"Session tag keys {other!r} and {key!r} differ only in case; AWS compares keys "
                "case-insensitively, so they clash (R5).",
                reason="duplicate tag keys",
            )
    transitive = attributes.get(aws.TRANSITIVE_TAG_KEYS, ())
    for key in transitive:
        if key.lower() not in seen:
            raise errors.TAGS_INVALID.error(
                f"TransitiveTagKeys names {key!r}, which the assertion does not send as a "
                f"PrincipalTag (it sends {sorted(tagged) or 'none'}) (R6).",
                reason="a transitive key is not a session tag",
            )
    return {key: values[0] for key, values in tagged.items()}, tuple(transitive)


def _duration(
    requested: int | None,
    role_max: int,
    attributes: Mapping[str, tuple[str, ...]],
    assertion,
    now: datetime.datetime,
) -> tuple[int, tuple[str, ...]]:
    """DurationSeconds against the role's maximum; then shortened as AWS documents."""
    values = attributes.get(aws.SESSION_DURATION)
    session_duration = None
    if values is not None:
        if len(values) != 1 or not (
            values[0].isascii()
            and values[0].isdigit()
            and MIN_DURATION <= int(values[0]) <= MAX_DURATION
        ):
            raise errors.SESSION_DURATION_INVALID.error(
                f"SessionDuration is {list(values)!r}: AWS takes one whole number of seconds "
                f"from {MIN_DURATION} to {MAX_DURATION} (R3)."
            )
        session_duration = int(values[0])
    asked = requested if requested is not None else DEFAULT_DURATION
    if asked > role_max:
        raise errors.DURATION_ABOVE_ROLE_MAX.error(
            f"DurationSeconds is {asked}"
            + (" (the default)" if requested is None else "")
            + f"; the role's MaxSessionDuration is {role_max}.",
            "Ask for less, or raise the role's maximum (aws iam update-role "
            "--max-session-duration).",
        )
    notes = []
    granted = asked
    # R3: for the API, SessionDuration can only shorten a session.
    if session_duration is not None and session_duration < granted:
        notes.append(
            f"The session lasts {session_duration} s, the assertion's SessionDuration, not the "
            f"{asked} s asked for (R3)."
        )
        granted = session_duration
    # AWS: the session ends at DurationSeconds or the AuthnStatement's SessionNotOnOrAfter,
    # whichever is sooner.
    for statement in assertion.iterfind("saml:AuthnStatement", NS):
        end = _instant(statement.get("SessionNotOnOrAfter"), "SessionNotOnOrAfter")
        if end is None:
            continue
        left = int((end - now).total_seconds())
        if left <= 0:
            raise errors.RESPONSE_EXPIRED.error(
                f"The AuthnStatement's SessionNotOnOrAfter is {_z(end)}; STS judged it at "
                f"{_z(now)}: the IdP session it grants has ended."
            )
        if left < granted:
            notes.append(
                f"The session lasts {left} s, until the AuthnStatement's "
                f"SessionNotOnOrAfter {_z(end)}."
            )
            granted = left
    return granted, tuple(notes)
