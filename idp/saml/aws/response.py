"""The whole-response checker: a SAMLResponse from any IdP, judged as AWS would read it."""

import base64
import binascii
import codecs
import datetime
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from .. import constants as c
from ..bindings import parse_xml
from ..errors import SamlError
from ..metadata import parse_idp_metadata
from ..release import Attribute, NameID, Release
from ..signing import enveloped_signature, pem_from_base64, signature_valid
from .decryption import decrypt_assertion, load_decryption_key
from .findings import Finding, error, warning
from .layout import check_layout, read_as_canonical
from .names import IC_ACS, PROFILE_AWS, PROFILE_IDENTITY_CENTER, ROLE, profile_for_audience
from .release import (
    check_algorithms,
    check_endpoints,
    check_partition,
    check_release,
    check_transport,
)

MAX_ENCODED_RESPONSE = 100_000
REDEEM_WITHIN = datetime.timedelta(minutes=5)

# Said by every door (command, admin page) when no metadata was given.
WITHOUT_METADATA = "the signature was checked for form only, and the Issuer against nothing."

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


def text(element: etree._Element | None) -> str:
    """All the text of an element, as C14N reads it (comments already dropped), or ''."""
    return "".join(element.itertext()) if element is not None else ""


def read_release(assertion: etree._Element) -> Release:
    name_id = assertion.find("saml:Subject/saml:NameID", NS)
    attributes = tuple(
        Attribute(
            name=element.get("Name", ""),
            values=tuple(text(v) for v in element.iterfind("saml:AttributeValue", NS)),
            name_format=element.get("NameFormat", ""),
            friendly_name=element.get("FriendlyName", ""),
        )
        for element in assertion.iterfind("saml:AttributeStatement/saml:Attribute", NS)
    )
    return Release(
        NameID(text(name_id).strip(), name_id.get("Format", ""))
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
    for confirmation in assertion.iterfind(
        "saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData", NS
    ):
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


def _algorithm(signature: etree._Element, path: str) -> str:
    element = signature.find(path, NS)
    return element.get("Algorithm", "") if element is not None else ""


def _key_problem(body: str) -> str:
    """Why the KeyInfo certificate cannot sign for AWS, or ''."""
    try:
        public_key = x509.load_pem_x509_certificate(pem_from_base64(body).encode()).public_key()
    except (ValueError, binascii.Error):
        return "The signature's KeyInfo certificate cannot be read"
    except UnsupportedAlgorithm as problem:  # SM2 and other curves OpenSSL knows but we do not
        return (
            f"The signing key is of a type this checker cannot read ({problem}); AWS needs "
            "RSA of at least 2048 bits"
        )
    if not isinstance(public_key, rsa.RSAPublicKey):
        return "The signing key is not RSA; AWS needs RSA of at least 2048 bits"
    if public_key.key_size < 2048:
        return f"The signing key has {public_key.key_size} bits; AWS needs at least 2048"
    return ""


def _signature_findings(
    element: etree._Element, label: str, certificates: Sequence[str]
) -> list[Finding]:
    # signing.py's allow-list runs with or without metadata: a signature that lists
    # work fedmock would not do (XPath, a second Reference, ds:Object) is refused,
    # not judged for form only.
    signature = enveloped_signature(element)
    if signature is None:
        return []
    digests = {
        d.get("Algorithm") or ""
        for d in signature.iterfind("ds:SignedInfo/ds:Reference/ds:DigestMethod", NS)
    }
    findings = check_algorithms(
        _algorithm(signature, "ds:SignedInfo/ds:SignatureMethod"), digests, label
    )
    # The allow-list has already refused any canonicalization but exclusive C14N, and
    # any Reference but one to the element's own ID.
    body = signature.findtext("ds:KeyInfo/ds:X509Data/ds:X509Certificate", namespaces=NS)
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
        message = text(root.find("samlp:Status/samlp:StatusMessage", NS))
        return [error("SAML", f"The IdP answered status {codes} {message}".strip())]
    return []


def _id_findings(root: etree._Element) -> list[Finding]:
    ids = [e.get("ID") for e in root.iter() if isinstance(e.tag, str) and e.get("ID")]
    if len(ids) != len(set(ids)):
        return [error("SAML", "Two elements share one ID, which makes signatures ambiguous.")]
    return []


def check_response(
    data: bytes,
    *,
    now: datetime.datetime,
    certificates: Sequence[str] = (),
    issuer: str | None = None,
    decryption_key: bytes | None = None,
) -> list[Finding]:
    """Every finding about a SAMLResponse from any IdP, as XML or base64.

    `certificates` and `issuer` come from the IdP metadata that IAM holds; without
    them the signature is checked for form only. `decryption_key` is the SP's
    private key (PEM): with it an EncryptedAssertion is decrypted and judged as AWS
    reads it. Raises SamlError, rather than judging, for a document laid out for
    signature wrapping, a signature outside fedmock's allow-list, or a key or
    encrypted assertion that cannot be used. `now` is the caller's: the doors pass the
    IdP's clock (idp.clock), so this stays a pure function of its arguments.
    """
    key_pem = load_decryption_key(decryption_key) if decryption_key is not None else None
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
    read_as_canonical(root)
    if problems := _check_status(root):
        return findings + problems
    check_layout(root)
    if problems := _id_findings(root):
        return findings + problems
    findings += _signature_findings(root, "Response", certificates)
    encrypted = root.findall("saml:EncryptedAssertion", NS)
    assertions = root.findall("saml:Assertion", NS)
    if len(assertions) + len(encrypted) != 1:  # check_layout refused more than one
        return findings + [
            error(
                "SAML",
                f"The Response holds {len(assertions) + len(encrypted)} assertions; AWS reads "
                "exactly one.",
            )
        ]
    if encrypted and key_pem is None:
        return findings + _check_encrypted_response(root, issuer, now)
    if encrypted:
        # The Response signature covers the EncryptedAssertion, so it was checked
        # above; the Assertion's own signature is checked on the plaintext below.
        assertion = decrypt_assertion(encrypted[0], key_pem)
        root.replace(encrypted[0], assertion)
        read_as_canonical(assertion)
        check_layout(root)
        if problems := _id_findings(root):
            return findings + problems
    else:
        assertion = assertions[0]
    audiences = [
        [text(a).strip() for a in restriction.iterfind("saml:Audience", NS)]
        for restriction in assertion.iterfind("saml:Conditions/saml:AudienceRestriction", NS)
    ]
    profile = profile_for_audience(next((a for r in audiences for a in r), ""))
    release = read_release(assertion)
    findings += check_release(release, profile)
    confirmation_findings, recipient = _check_confirmation(root, assertion)
    findings += confirmation_findings
    findings += check_endpoints(recipient, audiences, profile, encrypted=bool(encrypted))
    if profile == PROFILE_AWS:
        findings += check_partition(recipient, release.values(ROLE))
    else:
        findings += _transport_findings(root.get("Destination", ""), recipient)
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


def _transport_findings(*urls: str) -> list[Finding]:
    """Plain-HTTP warnings, once per URL (Destination and Recipient are usually one)."""
    return [f for url in dict.fromkeys(u for u in urls if u) for f in check_transport(url, "ACS")]


def _check_encrypted_response(root, issuer: str | None, now) -> list[Finding]:
    """What can be judged without the SP's private key: where it goes, who sent it, when."""
    destination = root.get("Destination", "")
    profile = PROFILE_IDENTITY_CENTER if IC_ACS.fullmatch(destination) else PROFILE_AWS
    findings = check_endpoints(destination, None, profile, encrypted=True)
    expected = issuer and text(root.find("saml:Issuer", NS)).strip()
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
            "attributes, subject and assertion signature were not checked. Pass the SP's "
            "private key (check_saml_response --key FILE) to check them.",
        )
    )
    return findings


def _check_issuer(root, assertion, expected: str | None) -> list[Finding]:
    issuer = text(assertion.find("saml:Issuer", NS)).strip()
    if not issuer:
        return [
            error(
                "R8",
                "The Assertion has no Issuer; saml:iss must equal the entityID "
                "of the metadata in IAM.",
            )
        ]
    findings = []
    response_issuer = text(root.find("saml:Issuer", NS)).strip()
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
    response: bytes,
    metadata: bytes | None,
    *,
    now: datetime.datetime,
    decryption_key: bytes | None = None,
) -> list[Finding]:
    """check_response, with the certificates and entityID read from IdP metadata."""
    if metadata is None:
        return check_response(response, now=now, decryption_key=decryption_key)
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
        decryption_key=decryption_key,
    )
