"""Fault scenarios: named, deliberately broken responses, as data.

Each scenario says what it breaks, the AWS rule (docs/aws-saml-rules.md) and AWS's
words where AWS documents them, and the SAML processing rule an SP must enforce to
refuse it. Applying one is a pure step at one point of the sign-on pipeline
(idp/sso.py names each point): it alters the Release, the ResponseContext, the
built Response, the SigningOptions, or the signed XML, and nothing else.

`aws_rule` is the rule id the AWS checker (idp.saml.aws) reports for the response:
R1…R21, or "SAML" for protocol problems that are not AWS's own. `refused_by` names
the SP libraries the tests prove refuse it (tests/test_scenarios.py); `sp_note`
says so where a declared SP rule is enforced by neither.
"""

import copy
import datetime
import functools
from collections.abc import Callable
from dataclasses import dataclass, replace

from lxml import etree

from .saml import aws, responses
from .saml import constants as c
from .saml.errors import SamlError
from .saml.release import Attribute, Release
from .saml.signing import KeyMaterial, SigningOptions, generate_self_signed, load_key

NS = {"samlp": c.SAMLP, "saml": c.SAML, "ds": c.DS}
PYSAML2 = "pysaml2"
PYTHON3_SAML = "python3-saml"
# Where the broken values point: .invalid never resolves (RFC 2606).
WRONG_AUDIENCE = "https://wrong-audience.fedmock.invalid/"
WRONG_RECIPIENT = "https://wrong-recipient.fedmock.invalid/acs"
WRONG_DESTINATION = "https://wrong-destination.fedmock.invalid/acs"
WRONG_ISSUER = "https://wrong-issuer.fedmock.invalid/saml/metadata/"
BAD_SESSION_NAME = "not a session name!"
OUT_OF_RANGE_DURATION = "60"
MAX_SKEW = 366 * 86400
EXTRA_TAG = "fedmock-extra-"
EVIL_NAME = "mallory"
# AWS's words, as docs/aws-saml-rules.md and the checker quote them.
INVALID_RESPONSE = "Your request included an invalid SAML response"
EXPIRED = "Response has expired"
REDEEM = "Token must be redeemed within 5 minutes of issuance"
AUDIENCE = "Response does not contain the required audience"
SIGNATURE_INVALID = "InvalidIdentityToken: Response signature invalid"
SESSION_NAME_REQUIRED = "InvalidIdentityToken: RoleSessionName is required in AuthnResponse"


@dataclass(frozen=True)
class Earlier:
    """The IDs of a response sent before: what replayed-id sends again."""

    response_id: str
    assertion_id: str


# --- The steps, each pure ------------------------------------------------------


def _set(release: Release, name: str, values: tuple[str, ...]) -> Release:
    """The release with attribute `name` holding `values` (added at the end if absent)."""
    if release.values(name) or any(a.name == name for a in release.attributes):
        attributes = tuple(
            replace(a, values=values) if a.name == name else a for a in release.attributes
        )
    else:
        attributes = (*release.attributes, Attribute(name, values))
    return replace(release, attributes=attributes)


def _no_role(release: Release, value: str) -> Release:
    return replace(release, attributes=tuple(a for a in release.attributes if a.name != aws.ROLE))


def _malformed_role(release: Release, value: str) -> Release:
    # ';' inside one value is the classic mistake (R1): each pair is its own AttributeValue.
    roles = release.values(aws.ROLE)
    broken = ";".join(roles) if roles else "arn:aws:iam::111122223333:role/fedmock-fault"
    return _set(release, aws.ROLE, (broken.replace(",", ";"),))


def _bad_session_name(release: Release, value: str) -> Release:
    return _set(release, aws.ROLE_SESSION_NAME, (BAD_SESSION_NAME,))


def _session_duration(release: Release, value: str) -> Release:
    return _set(release, aws.SESSION_DURATION, (OUT_OF_RANGE_DURATION,))


def _too_many_tags(release: Release, value: str) -> Release:
    tags = sum(a.name.startswith(aws.PRINCIPAL_TAG_PREFIX) for a in release.attributes)
    extra = tuple(
        Attribute(f"{aws.PRINCIPAL_TAG_PREFIX}{EXTRA_TAG}{n}", (str(n),))
        for n in range(max(1, aws.MAX_TAGS + 1 - tags))
    )
    return replace(release, attributes=(*release.attributes, *extra))


def _expired(context: responses.ResponseContext, value: str, earlier) -> responses.ResponseContext:
    # Issued 4 minutes ago (inside AWS's 5), valid for 3: the window closed a minute ago.
    return replace(
        context,
        now=context.now - datetime.timedelta(minutes=4),
        lifetime=datetime.timedelta(minutes=3),
    )


def _stale(context: responses.ResponseContext, value: str, earlier) -> responses.ResponseContext:
    # Issued 6 minutes ago, but its window still open: only the 5-minute rule (R12) is broken.
    shift = datetime.timedelta(minutes=6)
    return replace(context, now=context.now - shift, lifetime=context.lifetime + shift)


def _clock_skew(context: responses.ResponseContext, value: str, earlier):
    return replace(context, now=context.now + datetime.timedelta(seconds=int(value)))


def _wrong_audience(context, value: str, earlier):
    return replace(context, audience=WRONG_AUDIENCE)


def _wrong_issuer(context, value: str, earlier):
    return replace(context, issuer=WRONG_ISSUER)


def _replayed_id(context, value: str, earlier: Earlier | None):
    if earlier is None:
        raise SamlError(
            "Nothing to replay",
            "replayed-id sends the IDs of an earlier response to this SP, and none was sent "
            "since this IdP process started or recorded in the audit log.",
            "Sign on (or mint a response) for this SP once, then ask for replayed-id.",
            status=409,
        )
    return replace(context, response_id=earlier.response_id, assertion_id=earlier.assertion_id)


def _in_response_to_mismatch(context, value: str, earlier):
    return replace(context, in_response_to=responses.new_id())


def _find(root: etree._Element, path: str) -> etree._Element:
    element = root.find(path, NS)
    if element is None:  # the scenario met a response it cannot break this way
        raise SamlError(
            "This scenario does not apply to this response",
            f"It alters {path}, which the response does not hold.",
            "Pick another scenario for this service provider.",
            status=409,
        )
    return element


def _not_yet_valid(root: etree._Element, context) -> etree._Element:
    conditions = _find(root, "saml:Assertion/saml:Conditions")
    conditions.set("NotBefore", responses.timestamp(context.now + datetime.timedelta(minutes=2)))
    return root


def _wrong_recipient(root: etree._Element, context) -> etree._Element:
    data = "saml:Assertion/saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData"
    _find(root, data).set("Recipient", WRONG_RECIPIENT)
    return root


def _wrong_destination(root: etree._Element, context) -> etree._Element:
    root.set("Destination", WRONG_DESTINATION)
    return root


def _no_name_id(root: etree._Element, context) -> etree._Element:
    name_id = _find(root, "saml:Assertion/saml:Subject/saml:NameID")
    name_id.getparent().remove(name_id)
    return root


def _status_responder(root: etree._Element, context) -> etree._Element:
    return responses.build_status(
        context,
        c.STATUS_RESPONDER,
        "",
        "fedmock fault scenario status-responder: the IdP reports that it failed.",
    )


def _unsigned(options: SigningOptions) -> SigningOptions:
    return replace(options, sign_assertion=False, sign_response=False)


def _response_signed_only(options: SigningOptions) -> SigningOptions:
    return replace(options, sign_assertion=False, sign_response=True)


@functools.cache
def foreign_key() -> KeyMaterial:
    """A key no metadata publishes: made once per process (RSA generation costs ~100 ms)."""
    return load_key(*generate_self_signed("fedmock unknown-key scenario"))


def _unknown_key(options: SigningOptions) -> SigningOptions:
    return replace(options, key=foreign_key())


def _sha1(options: SigningOptions) -> SigningOptions:
    return replace(options, signature_algorithm=c.SIG_RSA_SHA1, digest_algorithm=c.DIGEST_SHA1)


def _plaintext(options: SigningOptions) -> SigningOptions:
    # The signed XML is altered after signing, which an encrypted assertion would hide.
    return replace(options, encryption=None)


def _assertion_only(options: SigningOptions) -> SigningOptions:
    # Wrapping needs a Response signature that does not cover the moved Assertion.
    return replace(options, sign_assertion=True, sign_response=False, encryption=None)


def _parse(xml: bytes) -> etree._Element:
    return etree.fromstring(xml)


def _serialise(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _tampered(xml: bytes) -> bytes:
    root = _parse(xml)
    name_id = _find(root, "saml:Assertion/saml:Subject/saml:NameID")
    name_id.text = EVIL_NAME
    return _serialise(root)


def _evil_copy(assertion: etree._Element) -> etree._Element:
    """The attacker's assertion: the signed one with another subject, and no signature."""
    evil = copy.deepcopy(assertion)
    for signature in evil.findall("ds:Signature", NS):
        evil.remove(signature)
    evil.set("ID", responses.new_id())
    name_id = evil.find("saml:Subject/saml:NameID", NS)
    if name_id is not None:
        name_id.text = EVIL_NAME
    for value in evil.iterfind(
        f"saml:AttributeStatement/saml:Attribute[@Name='{aws.ROLE_SESSION_NAME}']/"
        "saml:AttributeValue",
        NS,
    ):
        value.text = EVIL_NAME
    return evil


def _wrapping_extensions(xml: bytes) -> bytes:
    """The signed Assertion hides in samlp:Extensions; the evil copy stands in its place."""
    root = _parse(xml)
    assertion = _find(root, "saml:Assertion")
    evil = _evil_copy(assertion)
    root.replace(assertion, evil)
    extensions = etree.Element(f"{{{c.SAMLP}}}Extensions")
    extensions.append(assertion)
    # Extensions follows the Issuer (and a Signature, if any) and precedes Status.
    root.insert(root.index(_find(root, "samlp:Status")), extensions)
    return _serialise(root)


def _wrapping_object(xml: bytes) -> bytes:
    """The evil Assertion carries the original's Signature, whose ds:Object holds the original."""
    root = _parse(xml)
    assertion = _find(root, "saml:Assertion")
    signature = _find(assertion, "ds:Signature")
    evil = _evil_copy(assertion)
    root.replace(assertion, evil)
    # A verifier that looks the Reference's ID up anywhere finds the original, intact:
    # the enveloped transform left the signature out of its digest anyway.
    assertion.remove(signature)
    etree.SubElement(signature, f"{{{c.DS}}}Object").append(assertion)
    evil.insert(1, signature)  # after the Issuer, where an assertion's signature stands
    return _serialise(root)


# --- The catalogue -----------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    breaks: str  # one sentence
    aws_rule: str | None  # what the AWS checker reports: "R12", "SAML", or None for nothing
    aws_error: str | None  # AWS's own words, where AWS documents them
    sp_rule: str | None  # the SAML section an SP must enforce to refuse it
    parameter: str | None = None  # "seconds": written name:value
    default: str | None = None  # the value when `name` comes alone
    aws_severity: str = "error"  # "warning": the checker warns, AWS's answer is undocumented
    checker_refuses: bool = False  # the checker refuses the document instead of judging it
    needs_earlier: bool = False  # its context step takes the IDs of an earlier response
    refused_by: tuple[str, ...] = ()  # SP libraries the tests prove refuse it
    sp_note: str = ""  # where a declared SP rule is enforced by no library we test
    release: Callable[[Release, str], Release] | None = None
    context: Callable | None = None
    built: Callable[[etree._Element, responses.ResponseContext], etree._Element] | None = None
    signing: Callable[[SigningOptions], SigningOptions] | None = None
    signed: Callable[[bytes], bytes] | None = None

    @property
    def stages(self) -> tuple[str, ...]:
        """Where in the pipeline it acts, in pipeline order."""
        names = ("release", "context", "built", "signing", "signed")
        return tuple(name for name in names if getattr(self, name) is not None)


_TIME = "SAML core §2.5.1.2 (NotBefore/NotOnOrAfter) and profiles §4.1.4.3"
_SIGNED = "SAML profiles §4.1.3.5: over HTTP-POST every assertion must be signed"
_SIGNATURE = "SAML core §5.4 (XML Signature): the signature must verify with the IdP's key"
_WRAPPING = (
    "SAML core §5.4.2: the signature references, by ID, the assertion that encloses it; "
    "read only what it covers"
)

_SCENARIOS = (
    Scenario(
        "expired",
        "The assertion's NotOnOrAfter (Conditions and SubjectConfirmationData) passed a minute "
        "ago; it was issued 4 minutes ago.",
        "R12",
        EXPIRED,
        _TIME,
        refused_by=(PYSAML2, PYTHON3_SAML),
        context=_expired,
    ),
    Scenario(
        "not-yet-valid",
        "Conditions NotBefore is 2 minutes in the future.",
        "R12",
        None,
        _TIME,
        refused_by=(PYSAML2,),
        sp_note="python3-saml allows 300 s of drift: it accepts a NotBefore 2 minutes ahead.",
        built=_not_yet_valid,
    ),
    Scenario(
        "clock-skew",
        "The IdP's clock runs off by the given seconds (negative: behind): IssueInstant and "
        "the whole validity window move with it.",
        "R12",
        None,  # AWS's words depend on the sign: expired, or issued in the future
        _TIME,
        parameter="seconds",
        default="600",
        refused_by=(PYSAML2, PYTHON3_SAML),
        context=_clock_skew,
    ),
    Scenario(
        "stale-issue-instant",
        "IssueInstant is 6 minutes old while the validity window is still open.",
        "R12",
        REDEEM,
        None,
        sp_note="SAML sets no maximum age for IssueInstant; pysaml2 allows a day either way.",
        context=_stale,
    ),
    Scenario(
        "wrong-audience",
        f"The AudienceRestriction names {WRONG_AUDIENCE}, not the SP.",
        "R10",
        AUDIENCE,
        "SAML core §2.5.1.4 (AudienceRestriction) and profiles §4.1.4.3",
        refused_by=(PYSAML2, PYTHON3_SAML),
        context=_wrong_audience,
    ),
    Scenario(
        "wrong-recipient",
        f"SubjectConfirmationData Recipient is {WRONG_RECIPIENT}, not the ACS it is posted to.",
        "R9",
        None,
        "SAML profiles §4.1.4.3: Recipient must be the ACS the response arrived at",
        refused_by=(PYTHON3_SAML,),
        sp_note="pysaml2 7.5 accepts a Recipient that is not its ACS.",
        built=_wrong_recipient,
    ),
    Scenario(
        "wrong-destination",
        f"The Response's Destination is {WRONG_DESTINATION}, not the ACS it is posted to.",
        "R9",
        None,
        "SAML core §3.2.2 and bindings §3.5.5.2: Destination must be where it was received",
        refused_by=(PYTHON3_SAML,),
        sp_note="pysaml2 7.5 accepts a Destination that is not its ACS.",
        built=_wrong_destination,
    ),
    Scenario(
        "wrong-issuer",
        f"The Issuer (Response and Assertion) is {WRONG_ISSUER}, not the IdP's entity ID.",
        "R8",
        None,
        "SAML profiles §4.1.4.2-3: the Issuer must be the IdP the SP trusts",
        refused_by=(PYSAML2, PYTHON3_SAML),
        context=_wrong_issuer,
    ),
    Scenario(
        "unsigned",
        "Neither the Response nor the Assertion is signed.",
        "R11",
        None,
        _SIGNED,
        refused_by=(PYSAML2, PYTHON3_SAML),
        signing=_unsigned,
    ),
    Scenario(
        "response-signed-only",
        "The Response is signed, the Assertion is not (AWS wants the Assertion signed).",
        "R11",
        None,
        "SAML metadata §2.4.4: an SP whose metadata says WantAssertionsSigned",
        refused_by=(PYSAML2, PYTHON3_SAML),
        signing=_response_signed_only,
    ),
    Scenario(
        "tampered",
        f"The NameID is changed to {EVIL_NAME!r} after signing, so no signature verifies.",
        "R11",
        SIGNATURE_INVALID,
        _SIGNATURE,
        refused_by=(PYSAML2, PYTHON3_SAML),
        signing=_plaintext,
        signed=_tampered,
    ),
    Scenario(
        "unknown-key",
        "Signed by a key this IdP's metadata does not publish (made once per process).",
        "R11",
        SIGNATURE_INVALID,
        _SIGNATURE,
        refused_by=(PYSAML2, PYTHON3_SAML),
        signing=_unknown_key,
    ),
    Scenario(
        "sha1",
        "Signed with RSA-SHA1 and SHA-1 digests.",
        "R11",
        None,
        None,
        aws_severity="warning",
        sp_note="SAML allows SHA-1; python3-saml refuses it with rejectDeprecatedAlgorithm.",
        signing=_sha1,
    ),
    Scenario(
        "no-nameid",
        "The Subject has no NameID.",
        "R7",
        "AccessDenied",
        None,
        sp_note="SAML lets a Subject go without a NameID; only AWS (R7) needs one.",
        built=_no_name_id,
    ),
    Scenario(
        "no-role",
        "The Role attribute is left out.",
        "R1",
        INVALID_RESPONSE,
        None,
        release=_no_role,
    ),
    Scenario(
        "malformed-role",
        "The Role pairs are joined with ';' in one value instead of role,provider per value.",
        "R1",
        None,
        None,
        release=_malformed_role,
    ),
    Scenario(
        "bad-session-name",
        f"RoleSessionName is {BAD_SESSION_NAME!r}, outside [A-Za-z0-9_+=,.@-]{{2,64}}.",
        "R2",
        None,
        None,
        release=_bad_session_name,
    ),
    Scenario(
        "session-duration-out-of-range",
        f"SessionDuration is {OUT_OF_RANGE_DURATION} seconds, below AWS's 900.",
        "R3",
        None,
        None,
        release=_session_duration,
    ),
    Scenario(
        "too-many-tags",
        f"{aws.MAX_TAGS + 1} or more PrincipalTag attributes; AWS allows {aws.MAX_TAGS}.",
        "R5",
        None,
        None,
        release=_too_many_tags,
    ),
    Scenario(
        "replayed-id",
        "The Response and Assertion IDs of the last response sent to this SP, sent again.",
        None,
        None,
        "SAML profiles §4.1.4.5: an SP keeps used assertion IDs and refuses them again",
        sp_note="Neither pysaml2 nor python3-saml keeps a replay cache: the SP's code must.",
        needs_earlier=True,
        context=_replayed_id,
    ),
    Scenario(
        "in-response-to-mismatch",
        "InResponseTo names a request the SP never sent (also on an IdP-initiated response).",
        None,
        None,
        "SAML profiles §4.1.4.3: InResponseTo must be the ID of the SP's AuthnRequest",
        refused_by=(PYSAML2, PYTHON3_SAML),
        context=_in_response_to_mismatch,
    ),
    Scenario(
        "status-responder",
        "A signed Response with top-level status Responder and no Assertion.",
        "SAML",
        None,
        "SAML core §3.2.2.2: a status other than Success means the request failed",
        refused_by=(PYSAML2, PYTHON3_SAML),
        built=_status_responder,
    ),
    Scenario(
        "wrapping-extensions",
        "Signature wrapping: the signed Assertion moves into samlp:Extensions and an unsigned "
        f"copy for {EVIL_NAME!r} takes its place (only the Assertion is signed).",
        "SAML",
        None,
        _WRAPPING,
        checker_refuses=True,
        refused_by=(PYSAML2, PYTHON3_SAML),
        signing=_assertion_only,
        signed=_wrapping_extensions,
    ),
    Scenario(
        "wrapping-object",
        f"Signature wrapping: an Assertion for {EVIL_NAME!r} carries the original's Signature, "
        "whose ds:Object holds the original signed Assertion (only the Assertion is signed).",
        "SAML",
        None,
        _WRAPPING,
        checker_refuses=True,
        refused_by=(PYSAML2, PYTHON3_SAML),
        signing=_assertion_only,
        signed=_wrapping_object,
    ),
)

CATALOGUE: dict[str, Scenario] = {scenario.name: scenario for scenario in _SCENARIOS}


@dataclass(frozen=True)
class Fault:
    """A scenario with its value: what sso.py applies, step by step."""

    scenario: Scenario
    value: str = ""

    @property
    def name(self) -> str:
        scenario = self.scenario
        return f"{scenario.name}:{self.value}" if scenario.parameter else scenario.name

    def describe(self) -> str:
        return f"{self.name}: {self.scenario.breaks}"

    def release(self, release: Release) -> Release:
        step = self.scenario.release
        return step(release, self.value) if step else release

    def context(
        self, context: responses.ResponseContext, earlier: Earlier | None
    ) -> responses.ResponseContext:
        step = self.scenario.context
        return step(context, self.value, earlier) if step else context

    def built(self, root: etree._Element, context: responses.ResponseContext) -> etree._Element:
        step = self.scenario.built
        return step(root, context) if step else root

    def signing(self, options: SigningOptions) -> SigningOptions:
        step = self.scenario.signing
        return step(options) if step else options

    def signed(self, xml: bytes) -> bytes:
        step = self.scenario.signed
        return step(xml) if step else xml


def _unknown(text: str) -> SamlError:
    return SamlError(
        "Unknown fault scenario",
        f"{text[:100]!r} is not in the catalogue.",
        f"Use one of: {', '.join(CATALOGUE)} (docs/scenarios.md; GET /api/v1/scenarios).",
    )


def _check_value(scenario: Scenario, value: str) -> str:
    if scenario.parameter != "seconds":
        return value
    try:
        seconds = int(value)
    except ValueError:
        seconds = MAX_SKEW + 1
    if not 0 < abs(seconds) <= MAX_SKEW:
        raise SamlError(
            "Bad value for a fault scenario",
            f"{scenario.name} takes {scenario.parameter}: a whole number other than 0, at "
            f"most {MAX_SKEW} either way; got {value[:50]!r}.",
            f"Write it as {scenario.name}:{scenario.default} (negative: the IdP's clock is "
            "behind).",
        )
    return str(seconds)


def parse(text: str) -> Fault:
    """`name` or `name:value` -> Fault; SamlError (400) for an unknown name or a bad value."""
    name, colon, value = text.strip().partition(":")
    scenario = CATALOGUE.get(name)
    if scenario is None:
        raise _unknown(text)
    if colon and scenario.parameter is None:
        raise SamlError(
            "Bad value for a fault scenario",
            f"{name} takes no value; got {text[:100]!r}.",
            f"Write it as {name}.",
        )
    return Fault(scenario, _check_value(scenario, value if colon else scenario.default or ""))


def markdown_table() -> str:
    """The catalogue as docs/scenarios.md shows it (a test keeps the two equal)."""

    def cell(text: str | None) -> str:
        return (text or "—").replace("|", "\\|")

    rows = [
        "| scenario | what it breaks | AWS rule | AWS's error | SP rule | refused by |",
        "|---|---|---|---|---|---|",
    ]
    for scenario in CATALOGUE.values():
        name = (
            f"`{scenario.name}:{scenario.default}`" if scenario.parameter else f"`{scenario.name}`"
        )
        rule = scenario.aws_rule or "—"
        if scenario.aws_rule and scenario.aws_severity != "error":
            rule += f" ({scenario.aws_severity})"
        if scenario.checker_refuses:
            rule += " (refused as a layout)"
        refused = ", ".join(scenario.refused_by) or "—"
        if scenario.sp_note:
            refused += f" ({scenario.sp_note})"
        rows.append(
            f"| {name} | {cell(scenario.breaks)} | {rule} | {cell(scenario.aws_error)} "
            f"| {cell(scenario.sp_rule)} | {cell(refused)} |"
        )
    return "\n".join(rows) + "\n"
