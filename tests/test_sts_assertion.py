"""idp.sts.assertion.validate over the responses fedmock really mints: AWS's code and words
for each fault, fedmock's explanation naming the cause, and what an accepted one yields."""

import base64
import datetime
import hashlib

import pytest
from lxml import etree

from idp import clock, identity, keys, scenarios, sso
from idp.saml import aws, signing
from idp.saml import constants as c
from idp.sts import assertion, errors

pytestmark = pytest.mark.django_db

ACCOUNT = "111122223333"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/Admin"
READ_ONLY = f"arn:aws:iam::{ACCOUNT}:role/ReadOnly"
FEDMOCK = f"arn:aws:iam::{ACCOUNT}:saml-provider/fedmock"
NS = {"samlp": c.SAMLP, "saml": c.SAML, "ds": c.DS}
SECOND = datetime.timedelta(seconds=1)

SIGNATURE = ("InvalidIdentityToken", "Response signature invalid")
EXPIRED = ("ExpiredTokenException", "Response has expired")
DENIED = ("AccessDenied", "Not authorized to perform sts:AssumeRoleWithSAML")
NOT_YET = ("InvalidIdentityToken", "Response is not yet valid")

# Every scenario of the catalogue: AWS's code and message, and a fragment the
# explanation must hold (the cause, with its value); None: STS accepts it.
OUTCOMES = {
    "expired": (*EXPIRED, "Conditions NotOnOrAfter is"),
    "not-yet-valid": (*NOT_YET, "Conditions NotBefore is"),
    "clock-skew": (*NOT_YET, "the IdP's clock runs ahead"),
    "stale-issue-instant": (
        "ExpiredTokenException",
        "Token must be redeemed within 5 minutes of issuance",
        "361 s before STS's time",
    ),
    "wrong-audience": (
        "InvalidIdentityToken",
        "Response does not contain the required audience",
        f"Audience is {scenarios.WRONG_AUDIENCE}; for Recipient {aws.SIGNIN_ACS} AWS accepts "
        f"only {aws.AUDIENCE}",
    ),
    "wrong-recipient": (
        "InvalidIdentityToken",
        "Response does not contain a valid Recipient",
        scenarios.WRONG_RECIPIENT,
    ),
    "wrong-destination": (
        "InvalidIdentityToken",
        "Response Destination is invalid",
        f"Destination is '{scenarios.WRONG_DESTINATION}', the Recipient '{aws.SIGNIN_ACS}'",
    ),
    "wrong-issuer": (
        "InvalidIdentityToken",
        "Issuer not present in specified provider",
        f"Issuer is '{scenarios.WRONG_ISSUER}'; the metadata of {FEDMOCK} has entityID",
    ),
    "unsigned": (*SIGNATURE, "The Assertion is not signed, nor is the Response"),
    "response-signed-only": (*SIGNATURE, "The Assertion is not signed (only the Response is)"),
    "tampered": (*SIGNATURE, "which the metadata holds: the signed content was changed"),
    "unknown-key": (*SIGNATURE, "which the metadata lacks: the IdP signs with a key IAM never"),
    "sha1": None,  # SAML allows it and AWS documents no refusal; the checker only warns
    "no-nameid": (*DENIED, "The Subject has no NameID"),
    "no-role": (*DENIED, f"The assertion has no {aws.ROLE} attribute"),
    "malformed-role": (*DENIED, "holds ';': send each role as its own AttributeValue"),
    "bad-session-name": (
        "InvalidIdentityToken",
        "RoleSessionName in AuthnResponse must match [a-zA-Z_0-9+=,.@-]{2,64}",
        repr([scenarios.BAD_SESSION_NAME]),
    ),
    "session-duration-out-of-range": (
        "InvalidIdentityToken",
        "SessionDuration in AuthnResponse must be from 900 to 43200",
        "SessionDuration is ['60']",
    ),
    "too-many-tags": (
        "InvalidIdentityToken",
        "Invalid session tags in AuthnResponse: too many tags",
        "sends 51 PrincipalTag attributes; AWS allows at most 50",
    ),
    # A replay cache is state: the door's (or AWS's undocumented) business, not this function's.
    "replayed-id": None,
    "in-response-to-mismatch": None,  # STS reads no InResponseTo: it sent no request
    "status-responder": (
        "IDPRejectedClaim",
        "The identity provider reported a failure",
        "urn:oasis:names:tc:SAML:2.0:status:Responder",
    ),
    "wrapping-extensions": (*SIGNATURE, "samlp:Response/samlp:Extensions/saml:Assertion"),
    "wrapping-object": (*SIGNATURE, "ds:Signature/ds:Object/saml:Assertion"),
}
STATUS = {
    "InvalidIdentityToken": 400,
    "ExpiredTokenException": 400,
    "AccessDenied": 403,
    "IDPRejectedClaim": 403,
}


@pytest.fixture
def now(demo):
    # Whole seconds, as the response's instants are: the arithmetic below stays exact.
    return clock.now().replace(microsecond=0)


@pytest.fixture
def metadata(demo):
    """The provider's metadata as IAM received it: the keys published now."""
    return identity.metadata_xml()


def validate(response: str, metadata: bytes, now, **overrides):
    arguments = {
        "role_arn": ADMIN,
        "principal_arn": FEDMOCK,
        "provider_metadata": metadata,
        "duration_seconds": None,
        "role_max_session_duration": 3600,
        "now": now + SECOND,
    }
    return assertion.validate(response, **(arguments | overrides))


def mint(now, user="alice", role=ADMIN, scenario=None) -> str:
    return sso.mint(user, aws.AUDIENCE, role_arn=role, scenario=scenario, now=now).saml_response


def refusal(call) -> errors.StsError:
    with pytest.raises(errors.StsError) as caught:
        call()
    return caught.value


def test_the_table_covers_every_scenario():
    assert set(OUTCOMES) == set(scenarios.CATALOGUE)


@pytest.mark.parametrize("name", sorted(OUTCOMES))
def test_each_fault_scenario_gets_awss_error_and_an_explanation(name, now, metadata):
    if scenarios.CATALOGUE[name].needs_earlier:
        mint(now - 10 * SECOND)
    response = mint(now, scenario=name)
    expected = OUTCOMES[name]
    if expected is None:
        accepted = validate(response, metadata, now)
        assert (accepted.role_arn, accepted.session_name) == (ADMIN, "alice@example.com")
        return
    code, message, cause = expected
    error = refusal(lambda: validate(response, metadata, now))
    assert (error.code, error.message, error.status) == (code, message, STATUS[code])
    assert cause in " ".join(error.explanation), error.explanation


@pytest.mark.parametrize("seconds", ["-600", "-301"])
def test_an_idp_clock_behind_expires_the_response(seconds, now, metadata):
    response = mint(now, scenario=f"clock-skew:{seconds}")
    error = refusal(lambda: validate(response, metadata, now))
    assert (error.code, error.message) == EXPIRED


def test_the_five_minute_limit_and_the_window_edges(now, metadata):
    response = mint(now)
    window_end = now + datetime.timedelta(minutes=5)  # NotOnOrAfter of a fresh response
    assert validate(response, metadata, window_end - 2 * SECOND)
    error = refusal(lambda: validate(response, metadata, window_end - SECOND))
    assert (error.code, error.message) == EXPIRED  # NotOnOrAfter is exclusive
    error = refusal(lambda: validate(response, metadata, now - 40 * SECOND))
    assert (error.code, error.message) == NOT_YET  # NotBefore is now - 30 s


def test_a_rotation_iam_never_heard_of_then_synced(now, metadata):
    staged = keys.stage()
    keys.activate()
    response = mint(now)  # signed by the new key, which the old metadata lacks
    error = refusal(lambda: validate(response, metadata, now))
    assert (error.code, error.message) == SIGNATURE
    explained = " ".join(error.explanation)
    assert "the IdP signs with a key IAM never received" in explained
    assert f"sha256 {staged.fingerprint[:16]}" in explained
    assert "sync_iam_provider" in explained
    synced = identity.metadata_xml()  # what sync_iam_provider sends: both keys
    assert validate(response, synced, now).session_name == "alice@example.com"


@pytest.mark.parametrize(
    ("role", "principal", "listed"),
    [
        # bob's assertion offers ReadOnly only
        (ADMIN, FEDMOCK, f"which pairs: {READ_ONLY} with {FEDMOCK}"),
        # the right role through another provider
        (READ_ONLY, f"arn:aws:iam::{ACCOUNT}:saml-provider/other", f"{READ_ONLY} with {FEDMOCK}"),
        # the role of another account with the same name
        ("arn:aws:iam::444455556666:role/ReadOnly", FEDMOCK, f"{READ_ONLY} with {FEDMOCK}"),
    ],
)
def test_a_role_not_in_the_assertion_is_access_denied(role, principal, listed, now, metadata):
    response = mint(now, user="bob", role=READ_ONLY)
    error = refusal(
        lambda: validate(response, metadata, now, role_arn=role, principal_arn=principal)
    )
    assert (error.code, error.message, error.status) == (*DENIED, 403)
    assert f"RoleArn {role} with PrincipalArn {principal} is not a pair" in error.explanation[0]
    assert listed in error.explanation[0]


@pytest.mark.parametrize(
    ("requested", "role_max", "outcome"),
    [
        (None, 3600, 3600),
        (900, 3600, 900),
        (3600, 3600, 3600),
        # shortened to the assertion's SessionDuration (3600), not refused (R3)
        (7200, 43200, 3600),
        (
            3601,
            3600,
            (
                "ValidationError",
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
                "DurationSeconds is 3601; the role's MaxSessionDuration is 3600.",
            ),
        ),
        (
            43200,
            7200,
            (
                "ValidationError",
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
                "DurationSeconds is 43200; the role's MaxSessionDuration is 7200.",
            ),
        ),
        (
            899,
            3600,
            (
                "ValidationError",
                "1 validation error detected: Value '899' at 'durationSeconds' failed to satisfy "
                "constraint: Member must have value greater than or equal to 900",
                "DurationSeconds is 899",
            ),
        ),
        (
            43201,
            43200,
            (
                "ValidationError",
                "1 validation error detected: Value '43201' at 'durationSeconds' failed to "
                "satisfy constraint: Member must have value less than or equal to 43200",
                "DurationSeconds is 43201",
            ),
        ),
    ],
)
def test_duration_seconds(requested, role_max, outcome, now, metadata):
    response = mint(now)

    def call():
        return validate(
            response,
            metadata,
            now,
            duration_seconds=requested,
            role_max_session_duration=role_max,
        )

    if isinstance(outcome, int):
        accepted = call()
        assert accepted.duration_seconds == outcome
        assert bool(accepted.notes) == (outcome != (requested or 3600))
        return
    code, message, cause = outcome
    error = refusal(call)
    assert (error.code, error.message, error.status) == (code, message, 400)
    assert cause in error.explanation[0]


def test_the_happy_path_yields_what_sts_read(now, metadata):
    response = mint(now)
    accepted = validate(response, metadata, now)
    root = etree.fromstring(base64.b64decode(response))
    name_id = root.findtext("saml:Assertion/saml:Subject/saml:NameID", namespaces=NS)
    issuer = identity.entity_id()
    expected_qualifier = base64.b64encode(
        hashlib.sha1(f"{issuer}{ACCOUNT}/fedmock".encode()).digest()  # noqa: S324 (AWS's)
    ).decode()
    assert accepted.issuer == issuer
    assert (accepted.subject, accepted.subject_type) == (name_id, "persistent")
    assert accepted.audience == aws.SIGNIN_ACS
    assert accepted.name_qualifier == expected_qualifier
    assert accepted.doc == f"{ACCOUNT}/fedmock"
    assert (accepted.role_arn, accepted.principal_arn) == (ADMIN, FEDMOCK)
    assert (accepted.session_name, accepted.duration_seconds) == ("alice@example.com", 3600)
    assert accepted.tags == {"department": "Engineering", "costCenter": "4711"}
    assert (accepted.transitive_tag_keys, accepted.source_identity) == ((), None)
    assert accepted.assertion_id == root.find("saml:Assertion", NS).get("ID")
    assert accepted.issue_instant == now
    assert accepted.not_on_or_after == now + datetime.timedelta(minutes=5)
    assert accepted.attributes[aws.ROLE] == (f"{ADMIN},{FEDMOCK}",)
    assert accepted.required_actions == ("sts:AssumeRoleWithSAML", "sts:TagSession")
    assert accepted.policy_context() == {
        "saml:aud": aws.SIGNIN_ACS,
        "saml:sub": name_id,
        "saml:sub_type": "persistent",
        "saml:iss": issuer,
        "saml:namequalifier": expected_qualifier,
        "saml:doc": f"{ACCOUNT}/fedmock",
        "aws:CurrentTime": (now + SECOND).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "aws:EpochTime": str(int((now + SECOND).timestamp())),
        "aws:TagKeys": ["department", "costCenter"],
        "aws:RequestTag/department": "Engineering",
        "aws:RequestTag/costCenter": "4711",
    }
    with pytest.raises(AttributeError):
        accepted.subject = "mallory"  # frozen


# --- Responses fedmock would never mint, re-signed with the active key ------------------


def _attribute(name: str, *values: str) -> etree._Element:
    element = etree.Element(f"{{{c.SAML}}}Attribute", Name=name)
    for value in values:
        etree.SubElement(element, f"{{{c.SAML}}}AttributeValue").text = value
    return element


def resigned(response: str, change) -> str:
    """The response, changed by `change(root, assertion)`, then signed as fedmock signs."""
    root = etree.fromstring(base64.b64decode(response))
    the_assertion = root.find("saml:Assertion", NS)
    for element in (root, the_assertion):
        element.remove(element.find("ds:Signature", NS))
    change(root, the_assertion)
    key = keys.active_key()
    signing.sign_element(the_assertion, key)
    signing.sign_element(root, key)
    return base64.b64encode(etree.tostring(root)).decode()


def add_attributes(*attributes):
    def change(root, the_assertion):
        statement = the_assertion.find("saml:AttributeStatement", NS)
        for attribute in attributes:
            statement.append(attribute)

    return change


def test_saml_attributes_source_identity_and_transitive_keys_reach_the_context(now, metadata):
    response = resigned(
        mint(now),
        add_attributes(
            _attribute(assertion._EDUPERSON + "1", "staff", "member"),
            _attribute(assertion._EDUPERSON + "6", "alice@example.com"),
            _attribute("urn:oid:0.9.2342.19200300.100.1.3", "alice@example.com"),  # unmapped
            _attribute(aws.SOURCE_IDENTITY, "alice"),
            _attribute(aws.TRANSITIVE_TAG_KEYS, "department"),
        ),
    )
    accepted = validate(response, metadata, now)
    context = accepted.policy_context()
    assert context["saml:edupersonaffiliation"] == ["staff", "member"]
    assert context["saml:edupersonprincipalname"] == "alice@example.com"
    assert not any("mail" in key for key in context)
    assert context["sts:SourceIdentity"] == "alice"
    assert context["sts:TransitiveTagKeys"] == ["department"]
    assert accepted.required_actions == (
        "sts:AssumeRoleWithSAML",
        "sts:TagSession",
        "sts:SetSourceIdentity",
    )


def _set_session_end(seconds: int):
    def change(root, the_assertion):
        statement = the_assertion.find("saml:AuthnStatement", NS)
        end = now_of(the_assertion) + datetime.timedelta(seconds=seconds)
        statement.set("SessionNotOnOrAfter", end.strftime("%Y-%m-%dT%H:%M:%SZ"))

    return change


def now_of(the_assertion) -> datetime.datetime:
    return datetime.datetime.fromisoformat(the_assertion.get("IssueInstant").replace("Z", "+00:00"))


def test_session_not_on_or_after_shortens_the_session(now, metadata):
    accepted = validate(resigned(mint(now), _set_session_end(1200)), metadata, now)
    assert accepted.duration_seconds == 1199  # judged one second after issue
    assert "SessionNotOnOrAfter" in accepted.notes[-1]
    error = refusal(lambda: validate(resigned(mint(now), _set_session_end(0)), metadata, now))
    assert (error.code, error.message) == EXPIRED
    assert "the IdP session it grants has ended" in error.explanation[0]


@pytest.mark.parametrize(
    ("attributes", "code", "message", "cause"),
    [
        (
            [_attribute(aws.SOURCE_IDENTITY, "aws:alice")],
            "InvalidIdentityToken",
            'Source Identity must match [a-zA-Z_0-9+=,.@-]{2,64} and not begin with "aws:"',
            "['aws:alice']",
        ),
        (
            [_attribute(aws.SOURCE_IDENTITY, "alice", "bob")],
            "InvalidIdentityToken",
            'Source Identity must match [a-zA-Z_0-9+=,.@-]{2,64} and not begin with "aws:"',
            "['alice', 'bob']",
        ),
        (
            [_attribute(aws.TRANSITIVE_TAG_KEYS, "team")],
            "InvalidIdentityToken",
            "Invalid session tags in AuthnResponse: a transitive key is not a session tag",
            "TransitiveTagKeys names 'team'",
        ),
        (
            [_attribute(aws.PRINCIPAL_TAG_PREFIX + "Department", "Sales")],
            "InvalidIdentityToken",
            "Invalid session tags in AuthnResponse: duplicate tag keys",
            "'department' and 'Department' differ only in case",
        ),
        (
            [_attribute(aws.PRINCIPAL_TAG_PREFIX + "k" * 129, "v")],
            "InvalidIdentityToken",
            "Invalid session tags in AuthnResponse: a tag key or value breaks AWS's rules",
            "is 129 characters; it must be 1 to 128",
        ),
        (
            [_attribute(aws.PRINCIPAL_TAG_PREFIX + "team", "v" * 257)],
            "InvalidIdentityToken",
            "Invalid session tags in AuthnResponse: a tag key or value breaks AWS's rules",
            "is 257 characters; it must be 0 to 256",
        ),
        (
            [_attribute(aws.PRINCIPAL_TAG_PREFIX + "team", "a", "b")],
            "InvalidIdentityToken",
            "Invalid session tags in AuthnResponse: a tag key or value breaks AWS's rules",
            "has 2 values; a tag has exactly one",
        ),
        (
            [_attribute(aws.ROLE_SESSION_NAME, "second")],  # a second element adds a value
            "InvalidIdentityToken",
            "RoleSessionName in AuthnResponse must match [a-zA-Z_0-9+=,.@-]{2,64}",
            "['alice@example.com', 'second']",
        ),
    ],
)
def test_hostile_attributes(attributes, code, message, cause, now, metadata):
    response = resigned(mint(now), add_attributes(*attributes))
    error = refusal(lambda: validate(response, metadata, now))
    assert (error.code, error.message) == (code, message)
    assert cause in " ".join(error.explanation), error.explanation


def _drop_session_name(root, the_assertion):
    for attribute in the_assertion.iterfind("saml:AttributeStatement/saml:Attribute", NS):
        if attribute.get("Name") == aws.ROLE_SESSION_NAME:
            attribute.getparent().remove(attribute)


def _regional(root, the_assertion):
    regional = "https://eu-west-1.signin.aws.amazon.com/saml"
    root.set("Destination", regional)
    the_assertion.find(
        "saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData", NS
    ).set("Recipient", regional)


def test_a_missing_session_name_and_a_regional_endpoint(now, metadata):
    error = refusal(lambda: validate(resigned(mint(now), _drop_session_name), metadata, now))
    assert (error.code, error.message) == (
        "InvalidIdentityToken",
        "RoleSessionName is required in AuthnResponse",
    )
    accepted = validate(resigned(mint(now), _regional), metadata, now)
    assert accepted.policy_context()["saml:aud"] == "https://eu-west-1.signin.aws.amazon.com/saml"


@pytest.mark.parametrize(
    ("response", "overrides", "code", "message"),
    [
        (
            "abc",
            {},
            "ValidationError",
            "1 validation error detected: Value at 'sAMLAssertion' failed to satisfy "
            "constraint: Member must have length greater than or equal to 4",
        ),
        (
            "A" * 100_001,
            {},
            "ValidationError",
            "1 validation error detected: Value at 'sAMLAssertion' failed to satisfy "
            "constraint: Member must have length less than or equal to 100000",
        ),
        ("<samlp:Response/>", {}, "InvalidIdentityToken", "Invalid SAML response: not base64"),
        ("not base64!", {}, "InvalidIdentityToken", "Invalid SAML response: not a SAML document"),
        (
            base64.b64encode(b"<a><b/></a>").decode(),
            {},
            "InvalidIdentityToken",
            "Invalid SAML response: not a Response",
        ),
        (
            base64.b64encode(b'<!DOCTYPE x [<!ENTITY e "e">]><x>&e;</x>').decode(),
            {},
            "InvalidIdentityToken",
            "Invalid SAML response: not a SAML document",
        ),
        ("AAAA", {"role_arn": "Admin"}, "ValidationError", "Request ARN is invalid"),
        ("AAAA", {"principal_arn": ADMIN}, "ValidationError", "Request ARN is invalid"),
    ],
)
def test_hostile_requests_never_reach_the_signature(response, overrides, code, message, now):
    error = refusal(lambda: validate(response, b"<not metadata/>", now, **overrides))
    assert (error.code, error.message, error.status) == (code, message, 400)
    assert error.explanation


def test_unreadable_or_keyless_metadata_is_a_signature_that_cannot_verify(now):
    response = mint(now)
    for metadata in (b"<not metadata/>", identity.metadata_xml().replace(b"signing", b"nothing")):
        error = refusal(lambda metadata=metadata: validate(response, metadata, now))
        assert (error.code, error.message) == SIGNATURE
        assert f"The metadata of {FEDMOCK}" in error.explanation[0]
