"""The explainer's tests that mutants showed missing (issue 11, part E's mutation check).

Each test here failed against a deliberately broken explainer that tests/test_explain.py
let pass: it pins a rule the explainer must keep (the mutant is named in each docstring).
"""

import json

import pytest

from tests.test_explain import (
    COGNITO,
    GH,
    GH_ARN,
    MAIN,
    explain,
    saml,  # noqa: F401  (a fixture)
    saml_policy,
    statement,
    token,
    trust,
)

TAGS = "https://aws.amazon.com/tags"


def test_the_second_allow_statement_can_be_the_one_that_applies(tmp_path):
    """Mutant: only the first Allow statement was considered."""
    policy = trust(
        statement({"StringEquals": {f"{GH}:sub": "repo:acme/app:environment:prod"}}, sid="Prod"),
        statement({"StringEquals": {f"{GH}:sub": MAIN}}, sid="Main"),
    )
    code, output = explain(tmp_path, policy, token({}))
    assert code == 0, output
    assert '"Main" (Allow) matched' in output and '"Prod" (Allow) matched' not in output


def test_a_refusal_accounts_for_every_allow_statement(tmp_path):
    policy = trust(
        statement({"StringEquals": {f"{GH}:sub": "repo:acme/app:environment:prod"}}, sid="Prod"),
        statement({"StringLike": {f"{GH}:sub": "repo:acme/app:ref:refs/tags/*"}}, sid="Tags"),
    )
    code, output = explain(tmp_path, policy, token({"sub": "repo:acme/app:pull_request"}))
    assert code == 1
    for fragment in (
        '"Prod" (Allow)',
        "repo:acme/app:environment:prod",
        '"Tags" (Allow)',
        "repo:acme/app:ref:refs/tags/*",
        "repo:acme/app:pull_request",
    ):
        assert fragment in output, (fragment, output)


def test_a_missing_key_gets_the_hint_naming_the_keys_the_token_has(tmp_path):
    """Mutant: the missing-key hint was dropped (the evaluator's own line still said "has no")."""
    policy = trust(statement({"StringEquals": {f"{GH}:environment": "production"}}))
    code, output = explain(tmp_path, policy, token({}))
    assert code == 1
    hints = [line for line in output.splitlines() if line.startswith("Hint: ")]
    assert hints == [
        f'Hint: Statement "GitHub": the request has no {GH}:environment; it has '
        f"aws:FederatedProvider, {GH}:aud, {GH}:sub."
    ], output


@pytest.mark.parametrize(
    "key", ["aws:RequestTag/Team", "aws:requesttag/Team", "AWS:REQUESTTAG/Team"]
)
def test_context_key_names_match_whatever_their_case(tmp_path, key):
    """Mutant: the request's own key names (aws:RequestTag/Team) were not case-folded."""
    claims = {TAGS: {"principal_tags": {"Team": ["ci"]}}}
    policy = trust(
        statement(
            {"StringEquals": {key: "ci", f"{GH}:sub": MAIN}},
            Action=["sts:AssumeRoleWithWebIdentity", "sts:TagSession"],
        )
    )
    code, output = explain(tmp_path, policy, token(claims))
    assert code == 0, output


def test_saml_context_keys_with_capitals_match_in_lower_case(saml):  # noqa: F811
    """The same, on the SAML side: the context names aws:CurrentTime."""
    policy = saml_policy({"DateGreaterThan": {"aws:currenttime": "2000-01-01T00:00:00Z"}})
    code, output = saml(policy)
    assert code == 0, output


def test_amr_is_multivalued_even_as_one_string(tmp_path):
    """Mutant: a string amr stayed a single value; AWS makes amr a multivalued key."""
    claims = {"iss": f"https://{COGNITO}", "amr": "authenticated", "aud": "pool"}
    policy = trust(
        statement({"ForAnyValue:StringLike": {f"{COGNITO}:amr": "authenticated"}}, provider=COGNITO)
    )
    code, output = explain(tmp_path, policy, token(claims), "--provider-arn", COGNITO)
    assert code == 0, output
    # The Context line (the condition's own line shows the policy's list, not this).
    assert f'  {COGNITO}:amr = ["authenticated"]' in output.splitlines()


def test_the_provider_arn_is_the_policys_own(tmp_path):
    code, output = explain(tmp_path, trust(statement({})), token({}))
    assert code == 0 and f"Principal: {json.dumps({'Federated': [GH_ARN]})}" in output
