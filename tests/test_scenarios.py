"""Every fault scenario: the AWS checker reports what it declares, and real SPs refuse it.

Parametrized over scenarios.CATALOGUE, so a scenario added later cannot escape.
"""

import base64
import datetime

import pytest
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings

from idp import clock, faults, identity, keys, scenarios, sso
from idp.models import AuditEvent
from idp.saml import aws
from idp.saml import constants as c
from idp.saml.errors import SamlError

from .agents import ServiceProvider as Pysaml2SP

pytestmark = pytest.mark.django_db

ADMIN = "arn:aws:iam::111122223333:role/Admin"
SP_ENTITY = "https://sp.example.test/metadata"
SP_ACS = "https://sp.example.test/acs"
NAMES = sorted(scenarios.CATALOGUE)


def written(scenario: scenarios.Scenario) -> str:
    return f"{scenario.name}:{scenario.default}" if scenario.parameter else scenario.name


def mint_for_aws(name: str, now: datetime.datetime) -> sso.Minted:
    if scenarios.CATALOGUE[name].needs_earlier:
        sso.mint("alice", aws.AUDIENCE, role_arn=ADMIN, now=now)
    return sso.mint(
        "alice", aws.AUDIENCE, role_arn=ADMIN, now=now, scenario=written(scenarios.CATALOGUE[name])
    )


@pytest.fixture
def now(demo):
    # One instant for the mint and the checker alike: nothing depends on the wall clock.
    return clock.now().replace(microsecond=0) - datetime.timedelta(days=3)


def test_without_a_scenario_the_checker_finds_nothing(now):
    minted = sso.mint("alice", aws.AUDIENCE, role_arn=ADMIN, now=now)
    assert minted.scenario is None
    assert (
        aws.check_response_with_metadata(
            minted.saml_response.encode(), identity.metadata_xml(), now=now
        )
        == []
    )


@pytest.mark.parametrize("name", NAMES)
def test_the_aws_checker_reports_exactly_the_declared_rule(now, name):
    scenario = scenarios.CATALOGUE[name]
    minted = mint_for_aws(name, now)
    assert minted.scenario == written(scenario)
    response = minted.saml_response.encode()
    if scenario.checker_refuses:
        with pytest.raises(SamlError, match="signature wrapping"):
            aws.check_response_with_metadata(response, identity.metadata_xml(), now=now)
        assert [(f.rule, f.severity) for f in minted.findings] == [(scenario.aws_rule, "error")]
        return
    findings = aws.check_response_with_metadata(response, identity.metadata_xml(), now=now)
    assert minted.findings == findings  # the mint reports what the checker says
    if scenario.aws_rule is None:
        assert findings == []
        return
    errors = {f.rule for f in findings if f.severity == "error"}
    if scenario.aws_severity == "error":
        assert errors == {scenario.aws_rule}, findings
    else:
        assert errors == set() and {f.rule for f in findings} == {scenario.aws_rule}, findings
    if scenario.aws_error:
        assert any(scenario.aws_error in f.message for f in findings), findings


@pytest.mark.parametrize("name", NAMES)
def test_the_catalogue_declares_consistently(name):
    scenario = scenarios.CATALOGUE[name]
    assert scenario.name == name and scenario.breaks.endswith(".")
    assert scenario.stages, "a scenario must alter at least one step"
    assert (
        scenario.aws_rule is None
        or scenario.aws_rule == "SAML"
        or (scenario.aws_rule[0] == "R" and 1 <= int(scenario.aws_rule[1:]) <= 21)
    )
    assert scenario.aws_error is None or scenario.aws_rule is not None
    assert (scenario.parameter is None) == (scenario.default is None)
    assert set(scenario.refused_by) <= {scenarios.PYSAML2, scenarios.PYTHON3_SAML}
    assert not scenario.refused_by or scenario.sp_rule, "refused by a library, but under what rule?"
    if scenario.sp_rule and not scenario.refused_by:
        assert scenario.sp_note, "a declared SP rule that no library enforces must say so"


# --- Real SP libraries ----------------------------------------------------------


@pytest.fixture
def pysaml2_sp(demo, tmp_path):
    """pysaml2 as an SP, registered at the IdP from its metadata.

    It does not require a signed Response (the assertion's signature is what every
    scenario but response-signed-only keeps), so a refusal is about the scenario.
    """
    sp = Pysaml2SP(tmp_path / "sp", identity.metadata_xml(), entity_id=SP_ENTITY, acs=SP_ACS)
    sp.register(tmp_path)
    sp.client.want_response_signed = False
    return sp


def python3_saml_accepts(saml_response: str, request_id: str) -> tuple[bool, str]:
    """python3-saml in strict mode, as an SP with the same entity ID and ACS."""
    settings = OneLogin_Saml2_Settings(
        {
            "strict": True,
            "sp": {
                "entityId": SP_ENTITY,
                "assertionConsumerService": {"url": SP_ACS, "binding": c.BINDING_POST},
            },
            "idp": {
                "entityId": identity.entity_id(),
                "singleSignOnService": {"url": identity.sso_url(), "binding": c.BINDING_REDIRECT},
                "x509cert": keys.active_key().cert_base64,
            },
            "security": {
                "wantAssertionsSigned": True,
                "rejectDeprecatedAlgorithm": True,
                "wantAttributeStatement": False,  # a generic SP's rules may release nothing
            },
        },
        sp_validation_only=True,
    )
    response = OneLogin_Saml2_Response(settings, saml_response)
    request = {"https": "on", "http_host": "sp.example.test", "script_name": "/acs"}
    valid = response.is_valid(request, request_id)
    return valid, response.get_error() or ""


def pysaml2_refusal(sp: Pysaml2SP, saml_response: str, request_id: str) -> str:
    """Why pysaml2 refuses the response ("" when it accepts it)."""
    try:
        accepted = sp.accept(saml_response, request_id)
    except Exception as error:  # each refusal has its own exception class
        return f"{type(error).__name__}: {error}"
    return "" if accepted else "parse_authn_request_response returned nothing"


def pysaml2_accepts(sp: Pysaml2SP, saml_response: str, request_id: str) -> bool:
    return not pysaml2_refusal(sp, saml_response, request_id)


def mint_for_sp(sp: Pysaml2SP, scenario: str | None) -> tuple[sso.Minted, str]:
    request_id, _ = sp.redirect_request()
    minted = sso.mint("alice", SP_ENTITY, in_response_to=request_id, scenario=scenario)
    return minted, request_id


def test_both_libraries_accept_the_honest_response(pysaml2_sp):
    minted, request_id = mint_for_sp(pysaml2_sp, None)
    assert pysaml2_accepts(pysaml2_sp, minted.saml_response, request_id)
    assert python3_saml_accepts(minted.saml_response, request_id) == (True, "")


REFUSALS = [
    (name, library)
    for name, scenario in sorted(scenarios.CATALOGUE.items())
    for library in scenario.refused_by
]


# Why each library refuses each scenario: a refusal for another reason (a response the
# scenario broke twice, an SP misconfigured) would prove nothing about the declared rule.
REASONS = {
    ("clock-skew", scenarios.PYSAML2): "ToEarly: Can't use response yet",
    ("clock-skew", scenarios.PYTHON3_SAML): "not yet valid",
    ("expired", scenarios.PYSAML2): "ResponseLifetimeExceed: Can't use response, too old",
    ("expired", scenarios.PYTHON3_SAML): "A valid SubjectConfirmation was not found",
    ("in-response-to-mismatch", scenarios.PYSAML2): "UnsolicitedResponse",
    (
        "in-response-to-mismatch",
        scenarios.PYTHON3_SAML,
    ): "does not match the ID of the",
    ("not-yet-valid", scenarios.PYSAML2): "ToEarly: Can't use response yet",
    ("response-signed-only", scenarios.PYSAML2): "Signature missing for assertion",
    ("response-signed-only", scenarios.PYTHON3_SAML): "Assertion of the Response is not signed",
    ("status-responder", scenarios.PYSAML2): "StatusError: Unsuccessful operation",
    ("status-responder", scenarios.PYTHON3_SAML): "status code of the Response was not Success",
    ("tampered", scenarios.PYSAML2): "SignatureError: Failed to verify signature",
    ("tampered", scenarios.PYTHON3_SAML): "Signature validation failed",
    ("unknown-key", scenarios.PYSAML2): "SignatureError: Failed to verify signature",
    ("unknown-key", scenarios.PYTHON3_SAML): "Signature validation failed",
    ("unsigned", scenarios.PYSAML2): "Signature missing for assertion",
    ("unsigned", scenarios.PYTHON3_SAML): "Assertion of the Response is not signed",
    # The unsigned evil copy is what pysaml2 reads: the layout fools nothing but itself.
    ("wrapping-extensions", scenarios.PYSAML2): "Signature missing for assertion",
    ("wrapping-extensions", scenarios.PYTHON3_SAML): "must contain 1 assertion",
    ("wrapping-object", scenarios.PYSAML2): "Signature failed to meet constraints",
    ("wrapping-object", scenarios.PYTHON3_SAML): "must contain 1 assertion",
    ("wrong-audience", scenarios.PYSAML2): "AudienceRestrictions conditions not satisfied",
    ("wrong-audience", scenarios.PYTHON3_SAML): "is not a valid audience",
    ("wrong-destination", scenarios.PYTHON3_SAML): "instead of " + scenarios.WRONG_DESTINATION,
    # pysaml2 looks the signing key up by Issuer: an unknown issuer has none.
    ("wrong-issuer", scenarios.PYSAML2): "MissingKey: " + scenarios.WRONG_ISSUER,
    ("wrong-issuer", scenarios.PYTHON3_SAML): "Invalid issuer",
    ("wrong-recipient", scenarios.PYTHON3_SAML): "A valid SubjectConfirmation was not found",
}


def test_every_declared_refusal_has_its_reason():
    assert sorted(REASONS) == sorted(REFUSALS)


@pytest.mark.parametrize(("name", "library"), REFUSALS)
def test_a_real_sp_library_refuses_it(pysaml2_sp, name, library):
    scenario = scenarios.CATALOGUE[name]
    if scenario.needs_earlier:
        mint_for_sp(pysaml2_sp, None)
    minted, request_id = mint_for_sp(pysaml2_sp, written(scenario))
    if library == scenarios.PYSAML2:
        refusal = pysaml2_refusal(pysaml2_sp, minted.saml_response, request_id)
    else:
        valid, refusal = python3_saml_accepts(minted.saml_response, request_id)
        assert not valid
    assert REASONS[name, library] in refusal


UNENFORCED = [
    name
    for name, scenario in sorted(scenarios.CATALOGUE.items())
    if scenario.sp_rule and not scenario.refused_by
]


@pytest.mark.parametrize("name", UNENFORCED)
def test_declared_rules_no_library_enforces_are_really_unenforced(pysaml2_sp, name):
    """The data says neither library refuses it: if one starts to, move it to refused_by."""
    scenario = scenarios.CATALOGUE[name]
    first, first_request = mint_for_sp(pysaml2_sp, None)
    minted, request_id = mint_for_sp(pysaml2_sp, written(scenario))
    if scenario.needs_earlier:  # the replay carries the first response's IDs
        assert minted.response_id == first.response_id
    assert pysaml2_accepts(pysaml2_sp, minted.saml_response, request_id)
    assert python3_saml_accepts(minted.saml_response, request_id)[0]


# --- Parsing and the pipeline's guards ---------------------------------------------


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("expired", "expired"),
        (" expired ", "expired"),
        ("clock-skew", "clock-skew:600"),
        ("clock-skew:-30", "clock-skew:-30"),
        ("clock-skew:+45", "clock-skew:45"),
    ],
)
def test_parse(text, name):
    assert scenarios.parse(text).name == name


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Expired",
        "expired:1",
        "clock-skew:0",
        "clock-skew:ten",
        "clock-skew:1e3",
        f"clock-skew:{scenarios.MAX_SKEW + 1}",
        "clock-skew:" + "9" * 5000,
        "no-such-thing",
        "\x00",
    ],
)
def test_parse_refuses(text):
    with pytest.raises(SamlError) as refusal:
        scenarios.parse(text)
    assert refusal.value.status == 400 and refusal.value.hint


def test_replayed_id_without_an_earlier_response_is_refused_and_audited(demo):
    with pytest.raises(SamlError, match="Nothing to replay") as refusal:
        sso.mint("alice", aws.AUDIENCE, role_arn=ADMIN, scenario="replayed-id")
    assert refusal.value.status == 409
    assert AuditEvent.objects.get().outcome == AuditEvent.Outcome.REFUSED


def test_replayed_id_falls_back_to_the_audit_in_a_fresh_process(demo):
    first = sso.mint("alice", aws.AUDIENCE, role_arn=ADMIN)
    faults._last_sent.clear()  # another worker: nothing in its memory
    replay = sso.mint("alice", aws.AUDIENCE, role_arn=ADMIN, scenario="replayed-id")
    assert replay.response_id == first.response_id


def test_unknown_key_is_one_key_per_process_and_not_published(demo):
    assert scenarios.foreign_key() is scenarios.foreign_key()
    published = {k.fingerprint for k in keys.published_keys()}
    assert scenarios.foreign_key().fingerprint not in published


def test_signature_wrapping_layouts_keep_the_original_signature_valid(demo):
    """The wrapped original still verifies: a naive verifier is fooled, the layout is the tell."""
    from lxml import etree

    from idp.saml import signing

    for name in ("wrapping-extensions", "wrapping-object"):
        minted = sso.mint("alice", aws.AUDIENCE, role_arn=ADMIN, scenario=name)
        root = etree.fromstring(base64.b64decode(minted.saml_response))
        assertions = root.findall(".//saml:Assertion", {"saml": c.SAML})
        assert len(assertions) == 2
        signed = [a for a in assertions if a.find(f"{{{c.DS}}}Signature") is not None]
        original = next(
            a for a in assertions if a.findtext("{*}Subject/{*}NameID") != scenarios.EVIL_NAME
        )
        if name == "wrapping-extensions":
            assert signed == [original]
            assert signing.signature_valid(original, keys.active_key().cert_pem)
        top = root.find("saml:Assertion", {"saml": c.SAML})
        assert top.findtext("{*}Subject/{*}NameID") == scenarios.EVIL_NAME


def test_a_scenario_that_cannot_apply_says_so():
    """tampered alters the NameID; a response without one gets a 409, not a traceback."""
    empty = f'<samlp:Response xmlns:samlp="{c.SAMLP}"/>'.encode()
    with pytest.raises(SamlError) as refusal:
        scenarios.CATALOGUE["tampered"].signed(empty)
    assert refusal.value.status == 409
