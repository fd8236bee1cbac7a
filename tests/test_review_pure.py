"""Review of issue 10 (pure): the trust-policy evaluator and the assertion validator, for
what the review found: a date that crashed, matching work a policy could multiply, the
trust-policy action rule, AWS's AD and X.500 attribute keys, the audience AWS's guide also
lists, and the checks whose removal no test noticed."""

import datetime

import pytest
from lxml import etree

from idp.sts import assertion, errors
from idp.sts import policy as p
from tests.test_sts_assertion import (
    ADMIN,
    FEDMOCK,
    NS,
    _attribute,
    add_attributes,
    metadata,  # noqa: F401 - a fixture
    mint,
    now,  # noqa: F401 - a fixture
    refusal,
    resigned,
    validate,
)
from tests.test_sts_policy import PROVIDER, SAML, TAG, doc, request, stmt

ALICE = "alice@example.com"


def decide(condition, actions=(SAML,), principal=None, **context):
    statement = stmt(condition, principal=principal) if principal else stmt(condition)
    req = request(actions=actions, context={k.replace("__", ":"): v for k, v in context.items()})
    return p.evaluate(doc(statement), req)


# --- Dates beyond year 9999 -----------------------------------------------------------


def test_an_epoch_date_beyond_year_9999_is_a_malformed_policy_not_a_crash():
    with pytest.raises(errors.StsError) as caught:
        p.parse_policy(doc(stmt({"DateLessThan": {"aws:CurrentTime": "999999999999"}})))
    assert caught.value.code == "MalformedPolicyDocument"
    assert "is not a date" in " ".join(caught.value.explanation)


def test_a_request_date_beyond_year_9999_matches_nothing():
    decision = decide({"DateLessThan": {"saml:sub": "2030-01-01T00:00:00Z"}}, saml__sub="9" * 12)
    assert not decision.allowed


def test_a_date_without_a_zone_is_utc():
    # Compared with an aware instant: a naive one raised TypeError.
    decision = decide(
        {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00"}},
        aws__CurrentTime="2024-01-01T00:00:00Z",
    )
    assert decision.allowed


# --- Case rules, ${$}, principals ---------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "value", "allowed"),
    [
        ({"StringEqualsIgnoreCase": {"saml:sub": ALICE}}, "ALICE@Example.COM", True),
        ({"StringNotEqualsIgnoreCase": {"saml:sub": ALICE}}, "ALICE@Example.COM", False),
        ({"StringEquals": {"saml:sub": ALICE}}, "ALICE@Example.COM", False),
        ({"Bool": {"saml:sub": "True"}}, "TRUE", True),
        ({"StringEquals": {"saml:sub": "a${$}b"}}, "a$b", True),
        ({"StringLike": {"saml:sub": "${*}x"}}, "*x", True),
        ({"StringLike": {"saml:sub": "${*}x"}}, "yx", False),
    ],
)
def test_case_rules_and_literal_variables(condition, value, allowed):
    assert decide(condition, saml__sub=value).allowed is allowed


@pytest.mark.parametrize(
    ("named", "asked", "allowed"),
    [
        ("111122223333", "arn:aws:iam::111122223333:user/bob", True),
        ("111122223333", "arn:aws:iam::444455556666:user/bob", False),
        ("arn:aws:iam::111122223333:root", "arn:aws:iam::111122223333:role/x", True),
    ],
)
def test_an_account_in_principal_stands_for_its_principals(named, asked, allowed):
    policy = doc(stmt(action="sts:AssumeRole", principal={"AWS": named}))
    req = p.PolicyRequest(principal={"AWS": [asked]}, actions=("sts:AssumeRole",))
    assert p.evaluate(policy, req).allowed is allowed


# --- A trust policy holds STS actions only ------------------------------------------------


@pytest.mark.parametrize("action", ["s3:GetObject", ["sts:AssumeRoleWithSAML", "iam:*"]])
def test_a_trust_policy_with_another_services_action_is_malformed(action):
    with pytest.raises(errors.StsError) as caught:
        p.parse_policy(doc(stmt(action=action)))
    assert (caught.value.code, caught.value.message) == (
        "MalformedPolicyDocument",
        "AssumeRole policy may only specify STS AssumeRole actions.",
    )


@pytest.mark.parametrize("action", ["*", "sts:*", "STS:AssumeRoleWithSAML", "sts:TagSession"])
def test_sts_actions_and_the_star_are_accepted(action):
    p.parse_policy(doc(stmt(action=action)))


# --- The work a policy can ask for ----------------------------------------------------------


def _many_keys(key: str, count: int) -> list[str]:
    """`count` spellings of one key that differ in case: one JSON object holds them all."""
    spellings = []
    for n in range(2 ** len(key)):
        spelled = "".join(ch.upper() if n >> i & 1 else ch for i, ch in enumerate(key))
        if spelled not in spellings:
            spellings.append(spelled)
        if len(spellings) == count:
            return spellings
    raise AssertionError(key)


def test_a_pattern_without_wildcards_is_compared_as_text():
    # `${saml:sub}` as a StringLike pattern is as long as the value: no automaton for it.
    long = "a" * 50_000
    decision = decide({"StringLike": {"saml:sub": "${saml:sub}"}}, saml__sub=long)
    assert decision.allowed


def test_policy_variables_cannot_multiply_the_matching_work():
    # 128 conditions each matching a 16,000-character value against a pattern as long:
    # half a minute before the bound; now refused before the first match.
    long = "a" * 16_000
    block = {key: "*${saml:sub}" for key in _many_keys("saml:sub", 128)}
    decision = p.evaluate(
        doc(stmt({"StringLike": block})),
        request(context={"saml:sub": long}),
    )
    assert not decision.allowed
    assert decision.explanation[0].startswith("fedmock stopped evaluating the trust policy")


def test_each_condition_is_judged_once_for_all_actions(monkeypatch):
    judged = []
    real = p._condition_holds

    def counting(condition, context, work):
        judged.append(condition.key)
        return real(condition, context, work)

    monkeypatch.setattr(p, "_condition_holds", counting)
    policy = doc(stmt({"StringLike": {"saml:sub": "alice*"}}, action=[SAML, TAG]))
    assert p.evaluate(policy, request(actions=(SAML, TAG))).allowed
    assert judged == ["saml:sub"]


def test_a_sane_policy_stays_far_inside_the_bound():
    block = {key: "*example*" for key in _many_keys("saml:sub", 100)}
    work = p.Work()
    context = p._context(request(context={"saml:sub": "x" * 993 + "example"}))
    for condition in p.parse_policy(doc(stmt({"StringLike": block}))).statements[0].conditions:
        assert p._condition_holds(condition, context, work)[0]
    assert p.MAX_MATCH_WORK - work.left <= p.MAX_MATCH_WORK // 40


# --- The assertion: AWS's attribute keys, the audience, the checks no test held ------------


def _validated(**attributes) -> assertion.ValidatedAssertion:
    moment = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    return assertion.ValidatedAssertion(
        issuer="http://idp",
        subject=ALICE,
        subject_type="persistent",
        audience="https://signin.aws.amazon.com/saml",
        name_qualifier="q",
        doc="111122223333/fedmock",
        attributes=attributes,
        role_arn=ADMIN,
        principal_arn=FEDMOCK,
        session_name="alice",
        duration_seconds=3600,
        tags={},
        transitive_tag_keys=(),
        source_identity=None,
        assertion_id="_a",
        not_on_or_after=moment,
        issue_instant=moment,
        validated_at=moment,
    )


def test_active_directory_and_x500_attributes_reach_their_keys():
    mail = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
    context = _validated(
        **{
            mail: (ALICE,),
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname": ("Alice",),
            "2.5.4.45": ("x500-id",),
            "0.9.2342.19200300100.1.1": ("alice", "al"),
        }
    ).policy_context()
    assert context["saml:mail"] == ALICE
    assert context["saml:givenName"] == "Alice"
    assert context["saml:x500UniqueIdentifier"] == "x500-id"
    assert context["saml:uid"] == ["alice", "al"]
    # A trust policy on saml:mail (any spelling of the key) now sees it.
    req = p.PolicyRequest({"Federated": [PROVIDER]}, (SAML,), context)
    assert p.evaluate(doc(stmt({"StringEquals": {"SAML:mail": ALICE}})), req).allowed


def test_two_claims_for_one_key_are_both_kept():
    context = _validated(
        **{
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress": ("a@x",),
            "0.9.2342.19200300100.1.3": ("b@x",),
        }
    ).policy_context()
    assert context["saml:mail"] == ["a@x", "b@x"]


def _audience(value):
    def change(root, the_assertion):
        for audience in the_assertion.iterfind(
            "saml:Conditions/saml:AudienceRestriction/saml:Audience", NS
        ):
            audience.text = value

    return change


@pytest.mark.django_db
def test_the_signin_url_as_audience_is_refused_by_r10_and_the_guide_is_named(now, metadata):  # noqa: F811
    response = resigned(mint(now), _audience("https://signin.aws.amazon.com/saml"))
    error = refusal(lambda: validate(response, metadata, now))
    assert error.message == "Response does not contain the required audience"
    assert "The IAM User Guide also lists https://signin.aws.amazon.com/saml" in " ".join(
        error.explanation
    )


def _second_restriction(value):
    def change(root, the_assertion):
        conditions = the_assertion.find("saml:Conditions", NS)
        restriction = etree.SubElement(conditions, f"{{{NS['saml']}}}AudienceRestriction")
        etree.SubElement(restriction, f"{{{NS['saml']}}}Audience").text = value

    return change


def _response_issuer(value):
    def change(root, the_assertion):
        root.find("saml:Issuer", NS).text = value

    return change


def _issued_in(seconds):
    def change(root, the_assertion):
        issued = datetime.datetime.fromisoformat(the_assertion.get("IssueInstant"))
        later = issued + datetime.timedelta(seconds=seconds)
        the_assertion.set("IssueInstant", later.strftime("%Y-%m-%dT%H:%M:%SZ"))

    return change


def _name_id_format(value):
    def change(root, the_assertion):
        the_assertion.find("saml:Subject/saml:NameID", NS).set("Format", value)

    return change


def _second_bearer(root, the_assertion):
    subject = the_assertion.find("saml:Subject", NS)
    confirmation = subject.find("saml:SubjectConfirmation", NS)
    subject.append(etree.fromstring(etree.tostring(confirmation)))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "message", "cause"),
    [
        (
            _second_restriction("urn:other"),
            "Response does not contain the required audience",
            "in every AudienceRestriction",
        ),
        (
            _response_issuer("https://evil.example/"),
            "Issuer not present in specified provider",
            "The Response Issuer is 'https://evil.example/'",
        ),
        (_issued_in(400), "Response is not yet valid", "the IdP's clock runs ahead"),
        (
            _name_id_format("urn:example:format"),
            "Not authorized to perform sts:AssumeRoleWithSAML",
            "NameID format urn:example:format is not one AWS accepts",
        ),
        (
            _second_bearer,
            "Response does not contain a valid Recipient",
            "has 2 bearer SubjectConfirmation(s)",
        ),
        (
            add_attributes(_attribute(assertion.aws.SOURCE_IDENTITY, "AWS:alice")),
            'Source Identity must match [a-zA-Z_0-9+=,.@-]{2,64} and not begin with "aws:"',
            "SourceIdentity is ['AWS:alice']",
        ),
    ],
)
def test_checks_no_earlier_test_held(change, message, cause, now, metadata):  # noqa: F811
    response = resigned(mint(now), change)
    error = refusal(lambda: validate(response, metadata, now))
    assert error.message == message
    assert cause in " ".join(error.explanation), error.explanation


@pytest.mark.django_db
def test_a_transitive_key_matches_its_tag_whatever_the_case(now, metadata):  # noqa: F811
    response = resigned(
        mint(now),
        add_attributes(
            _attribute(assertion.aws.PRINCIPAL_TAG_PREFIX + "Project", "blue"),
            _attribute(assertion.aws.TRANSITIVE_TAG_KEYS, "PROJECT"),
        ),
    )
    accepted = validate(response, metadata, now)
    assert accepted.transitive_tag_keys == ("PROJECT",)
