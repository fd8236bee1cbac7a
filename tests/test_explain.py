"""explain_web_identity and explain_saml: the failing statement, condition and both values."""

import base64
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from lxml import etree

from idp import clock, sso
from idp.saml import aws
from idp.saml import constants as c
from idp.sts import assertion
from idp.sts.web_identity_context import web_identity_context

GH = "token.actions.githubusercontent.com"
ACCOUNT = "111122223333"
GH_ARN = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{GH}"
COGNITO = "cognito-identity.amazonaws.com"
MAIN = "repo:acme/app:ref:refs/heads/main"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})


def statement(conditions, sid="GitHub", effect="Allow", provider=GH_ARN, **extra):
    return {
        "Sid": sid,
        "Effect": effect,
        "Principal": {"Federated": provider},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": conditions,
        **extra,
    }


def trust(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def github(sub_op="StringLike", sub="repo:acme/app:ref:refs/heads/*", aud="sts.amazonaws.com"):
    return trust(statement({"StringEquals": {f"{GH}:aud": aud}, sub_op: {f"{GH}:sub": sub}}))


def token(claims, key=KEY) -> str:
    base = {"iss": f"https://{GH}", "aud": "sts.amazonaws.com", "sub": MAIN, "exp": 4102444800}
    return jwt.encode({"alg": "RS256", "kid": "k1"}, base | claims, key)


def explain(tmp_path, policy, value, *options):
    path = tmp_path / "trust.json"
    path.write_text(json.dumps(policy))
    out = io.StringIO()
    try:
        call_command(
            "explain_web_identity", value, "--trust-policy", str(path), *options, stdout=out
        )
        code = 0
    except SystemExit as exit:
        code = exit.code
    return code, out.getvalue()


# (name, token claims, policy, exit code, fragments the output must hold)
CASES = [
    ("main branch is allowed", {}, github(), 0, ["ALLOWED", '"GitHub" (Allow) matched']),
    (
        "pull_request against refs/heads/*",
        {"sub": "repo:acme/app:pull_request"},
        github(),
        1,
        ['"GitHub"', "StringLike", "repo:acme/app:ref:refs/heads/*", "repo:acme/app:pull_request"],
    ),
    (
        "a tag ref against main",
        {"sub": "repo:acme/app:ref:refs/tags/v1.0"},
        github("StringEquals", MAIN),
        1,
        ["StringEquals", MAIN, "repo:acme/app:ref:refs/tags/v1.0"],
    ),
    (
        "another repository",
        {"sub": "repo:acme/other:ref:refs/heads/main"},
        github(),
        1,
        ["repo:acme/app:ref:refs/heads/*", "repo:acme/other:ref:refs/heads/main"],
    ),
    (
        "a fork's workflow",
        {"sub": "repo:mallory/app:ref:refs/heads/main"},
        github("StringLike", "repo:acme/*"),
        1,
        ["repo:acme/*", "repo:mallory/app:ref:refs/heads/main"],
    ),
    (
        "an environment job against a ref policy",
        {"sub": "repo:acme/app:environment:production"},
        github("StringEquals", MAIN),
        1,
        [MAIN, "repo:acme/app:environment:production"],
    ),
    (
        "a ref job against an environment policy",
        {},
        github("StringEquals", "repo:acme/app:environment:production"),
        1,
        ["repo:acme/app:environment:production", MAIN],
    ),
    (
        "a custom audience",
        {"aud": "https://github.com/acme"},
        github(),
        1,
        [f"StringEquals {GH}:aud", "sts.amazonaws.com", "https://github.com/acme"],
    ),
    (
        "aud as a list without the expected value",
        {"aud": ["https://github.com/acme", "api://ci"]},
        github(),
        1,
        ["sts.amazonaws.com", "https://github.com/acme", "api://ci", "several values"],
    ),
    (
        "aud as a list holding sts.amazonaws.com",
        {"aud": ["api://ci", "sts.amazonaws.com"]},
        github(),
        0,
        ["ALLOWED"],
    ),
    (
        "StringEquals with a wildcard where StringLike was meant",
        {},
        github("StringEquals", "repo:acme/app:*"),
        1,
        ['"GitHub"', "StringEquals", "repo:acme/app:*", MAIN, "use StringLike"],
    ),
    (
        "values are case-sensitive",
        {"sub": "repo:Acme/App:ref:refs/heads/main"},
        github("StringEquals", MAIN),
        1,
        [MAIN, "repo:Acme/App:ref:refs/heads/main", "only in case"],
    ),
    (
        "key names are not case-sensitive",
        {},
        trust(statement({"StringEquals": {"Token.Actions.GitHubUserContent.com:SUB": MAIN}})),
        0,
        ["ALLOWED"],
    ),
    (
        "a condition key the token does not carry",
        {},
        trust(statement({"StringEquals": {f"{GH}:environment": "production"}})),
        1,
        [f"{GH}:environment", "production", "the request has no", f"{GH}:sub"],
    ),
    (
        "an explicit Deny of pull requests",
        {"sub": "repo:acme/app:pull_request"},
        trust(
            statement({"StringLike": {f"{GH}:sub": "repo:acme/*"}}),
            statement({"StringLike": {f"{GH}:sub": "*:pull_request"}}, sid="NoPRs", effect="Deny"),
        ),
        1,
        ['"NoPRs" (Deny)', "explicit Deny", "*:pull_request", "repo:acme/app:pull_request"],
    ),
    (
        "the wrong provider in Principal",
        {},
        github()
        | trust(statement({}, provider=f"arn:aws:iam::{ACCOUNT}:oidc-provider/gitlab.com")),
        1,
        ["oidc-provider/gitlab.com", "does not match", GH_ARN],
    ),
    (
        "ForAnyValue on amr: an unauthenticated identity",
        {"iss": f"https://{COGNITO}", "amr": ["unauthenticated"], "aud": "us-east-1:pool"},
        trust(
            statement(
                {"ForAnyValue:StringLike": {f"{COGNITO}:amr": "authenticated"}},
                provider=COGNITO,
            )
        ),
        1,
        [f"ForAnyValue:StringLike {COGNITO}:amr", '"authenticated"', '"unauthenticated"'],
    ),
    (
        "ForAnyValue on amr: authenticated",
        {"iss": f"https://{COGNITO}", "amr": ["authenticated", "cognito-idp"], "aud": "pool"},
        trust(
            statement(
                {"ForAnyValue:StringLike": {f"{COGNITO}:amr": "authenticated"}},
                provider=COGNITO,
            )
        ),
        0,
        ["ALLOWED"],
    ),
    (
        "azp is the audience, aud the original one",
        {"iss": "https://accounts.google.com", "azp": "client-1", "aud": "client-2"},
        trust(
            statement(
                {"StringEquals": {"accounts.google.com:aud": "client-2"}},
                provider="accounts.google.com",
            )
        ),
        1,
        ['"client-2"', '"client-1"', "accounts.google.com:oaud"],
    ),
]


@pytest.mark.parametrize(
    ("claims", "policy", "code", "fragments"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_web_identity_failure_shapes(tmp_path, claims, policy, code, fragments):
    provider = []
    if claims.get("iss", "").endswith(COGNITO):
        provider = ["--provider-arn", COGNITO]
    elif "google" in claims.get("iss", ""):
        provider = ["--provider-arn", "accounts.google.com"]
    got, output = explain(tmp_path, policy, token(claims), *provider)
    assert got == code, output
    assert "signature not checked" in output
    for fragment in fragments:
        assert fragment in output, (fragment, output)


def test_the_signature_is_verified_with_jwks(tmp_path):
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(KeySet([KEY]).as_dict(private=False)))
    code, output = explain(tmp_path, github(), token({}), "--jwks", str(jwks))
    assert code == 0 and f"signature verified against {jwks}" in output
    with pytest.raises(CommandError, match="not a valid JWT"):
        explain(tmp_path, github(), token({}, OTHER_KEY), "--jwks", str(jwks))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not-a-jwt", "not a valid JWT"),
        ("a.b.c", "not a valid JWT"),
        (jwt.encode({"alg": "RS256"}, {"sub": "x"}, KEY), "no iss claim"),
    ],
)
def test_bad_tokens_are_one_line_errors(tmp_path, value, message):
    with pytest.raises(CommandError, match=message) as caught:
        explain(tmp_path, github(), value)
    assert "\n" not in str(caught.value)


def test_a_malformed_policy_is_one_line(tmp_path):
    with pytest.raises(CommandError, match="MalformedPolicyDocument"):
        explain(tmp_path, {"Statement": []}, token({}))


def test_session_tags_need_tag_session():
    built = web_identity_context(
        {
            "iss": f"https://{GH}/",
            "sub": MAIN,
            "https://aws.amazon.com/tags": {"principal_tags": {"team": ["ci"]}},
        }
    )
    assert built.provider == GH
    assert built.actions == ("sts:AssumeRoleWithWebIdentity", "sts:TagSession")
    assert built.context["aws:RequestTag/team"] == "ci"


# --- SAML ------------------------------------------------------------------------------

ADMIN = f"arn:aws:iam::{ACCOUNT}:role/Admin"
FEDMOCK = f"arn:aws:iam::{ACCOUNT}:saml-provider/fedmock"
NS = {"samlp": c.SAMLP, "saml": c.SAML, "ds": c.DS}


def saml_policy(conditions, actions=("sts:AssumeRoleWithSAML", "sts:TagSession")):
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Okta",
                "Effect": "Allow",
                "Principal": {"Federated": FEDMOCK},
                "Action": list(actions),
                "Condition": conditions,
            }
        ],
    }


def untagged(response: str) -> bytes:
    """The response's XML without session tags (unsigned: the explainer reads it anyway)."""
    root = etree.fromstring(base64.b64decode(response))
    statement = root.find("saml:Assertion/saml:AttributeStatement", NS)
    for attribute in list(statement):
        if attribute.get("Name", "").startswith(aws.PRINCIPAL_TAG_PREFIX):
            statement.remove(attribute)
    return etree.tostring(root)


@pytest.fixture
def saml(demo, tmp_path):
    now = clock.now().replace(microsecond=0)
    response = sso.mint("alice", aws.AUDIENCE, role_arn=ADMIN, now=now).saml_response
    subject = assertion.read_unverified(
        response, role_arn=ADMIN, principal_arn=FEDMOCK, now=now
    ).subject

    def run(policy, data=response, *options):
        (tmp_path / "r").write_bytes(data if isinstance(data, bytes) else data.encode())
        (tmp_path / "p.json").write_text(json.dumps(policy))
        out = io.StringIO()
        arguments = [str(tmp_path / "r"), "--trust-policy", str(tmp_path / "p.json")]
        try:
            call_command("explain_saml", *arguments, "--now", now.isoformat(), *options, stdout=out)
            return 0, out.getvalue()
        except SystemExit as exit:
            return exit.code, out.getvalue()

    run.subject, run.response = subject, response
    return run


def test_saml_sub_of_another_user(saml):
    code, output = saml(saml_policy({"StringEquals": {"SAML:sub": "bob@example.com"}}))
    assert code == 1
    for fragment in (
        '"Okta"',
        "SAML:sub",
        "bob@example.com",
        saml.subject,
        "signature not checked",
    ):
        assert fragment in output, (fragment, output)


def test_saml_aud_and_the_allowed_case(saml):
    code, output = saml(saml_policy({"StringEquals": {"SAML:aud": "https://example.com/saml"}}))
    assert code == 1
    assert "https://example.com/saml" in output and aws.SIGNIN_ACS in output
    code, output = saml(saml_policy({"StringEquals": {"SAML:aud": aws.SIGNIN_ACS}}))
    assert code == 0 and "ALLOWED" in output, output


def test_saml_session_tags_need_tag_session(saml):
    # alice's assertion carries PrincipalTag attributes: TagSession must be allowed too.
    code, output = saml(saml_policy({}, ["sts:AssumeRoleWithSAML"]))
    assert code == 1
    assert "DENIED: sts:TagSession" in output and "No statement allows sts:TagSession" in output
    code, output = saml(saml_policy({}, ["sts:AssumeRoleWithSAML"]), untagged(saml.response))
    assert code == 0, output


def test_saml_bad_input_is_one_line(saml, tmp_path):
    with pytest.raises(CommandError, match="STS would refuse the response") as caught:
        saml(saml_policy({}), b"PHNvbWV0aGluZz4=")
    assert "\n" not in str(caught.value)


def test_saml_with_metadata_validates_fully(saml, tmp_path):
    from idp import identity

    (tmp_path / "m.xml").write_bytes(identity.metadata_xml())
    metadata = ["--metadata", str(tmp_path / "m.xml")]
    code, output = saml(saml_policy({}), saml.response, *metadata)
    assert code == 0 and "checked against --metadata" in output, output
    # The unsigned change the explainer reads without metadata is refused with it.
    with pytest.raises(CommandError, match="Response signature invalid"):
        saml(saml_policy({}), untagged(saml.response), *metadata)
