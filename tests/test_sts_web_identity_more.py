"""AssumeRoleWithWebIdentity, completed: a token's session tags and source identity go on
the issued session (sts:TagSession and sts:SetSourceIdentity required, as AWS does); the
STS and the explainer read `:aud` by one rule; thumbprints are kept, never checked."""

import datetime
import json

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from joserfc import jwt
from joserfc.jwk import RSAKey
from lxml import etree

from idp import keys, sso
from idp.management.commands import _explain
from idp.models import SigningKey
from idp.oidc import issue, tokens
from idp.saml import aws as saml_aws
from idp.sts import errors, jwks, policy, state, web_identity
from idp.sts.models import IssuedCredential
from idp.sts.web_identity_context import (
    SOURCE_IDENTITY_CLAIM,
    TAGS_CLAIM,
    session_claims,
    web_identity_context,
)

from .sts_support import ADMIN, PROVIDER

NS = {"saml": "urn:oasis:names:tc:SAML:2.0:assertion"}

JWT = SigningKey.Use.JWT
ACCOUNT = "123456789012"
MAIN = "repo:acme/app:ref:refs/heads/main"
NOW = datetime.datetime(2026, 5, 1, 12, 0, tzinfo=datetime.UTC)
ISSUER = "https://token.actions.githubusercontent.com"
HOST = "token.actions.githubusercontent.com"
PROVIDER_ARN = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{HOST}"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
PUBLISHED = {"keys": [KEY.as_dict(private=False)]}
TAGS = {"principal_tags": {"team": ["ci"], "project": ["app"]}, "transitive_tag_keys": ["team"]}


def signed(**claims) -> str:
    moment = int(NOW.timestamp())
    body = {"iss": ISSUER, "sub": MAIN, "aud": "sts.amazonaws.com", "iat": moment - 5}
    body.update(exp=moment + 300, **claims)
    return jwt.encode({"alg": "RS256", "kid": "k1"}, body, KEY)


def validate(token: str, client_ids=("sts.amazonaws.com",)) -> web_identity.ValidatedToken:
    return web_identity.validate(
        token,
        provider=web_identity.Provider(ISSUER, tuple(client_ids), PROVIDER_ARN),
        jwks=PUBLISHED,
        now=NOW,
        duration_seconds=None,
        role_max_session_duration=3600,
    )


# --- session tags and source identity, pure --------------------------------------------


def test_tags_and_source_identity_are_read_from_the_tokens_claims():
    validated = validate(signed(**{TAGS_CLAIM: TAGS, SOURCE_IDENTITY_CLAIM: "alice"}))
    session = validated.session
    assert dict(session.tags) == {"team": "ci", "project": "app"}
    assert session.transitive_tag_keys == ("team",)
    assert session.source_identity == "alice"
    assert validated.required_actions == (
        "sts:AssumeRoleWithWebIdentity",
        "sts:TagSession",
        "sts:SetSourceIdentity",
    )
    context = validated.policy_context()
    assert context["sts:SourceIdentity"] == "alice"
    assert context["aws:RequestTag/team"] == "ci" and context["aws:TagKeys"] == ["team", "project"]
    assert context["sts:TransitiveTagKeys"] == ["team"]


def test_a_token_without_them_asks_for_neither_action():
    validated = validate(signed())
    assert validated.required_actions == ("sts:AssumeRoleWithWebIdentity",)
    assert not validated.session.tags and validated.session.source_identity is None
    assert "sts:SourceIdentity" not in validated.policy_context()


MANY = {f"k{n}": ["v"] for n in range(51)}
# claims -> (the message's start, words the explanation holds)
BAD = {
    "source identity too short": (
        {SOURCE_IDENTITY_CLAIM: "a"},
        "Source Identity must match",
        "SourceIdentity 'a'",
    ),
    "source identity aws: prefix": (
        {SOURCE_IDENTITY_CLAIM: "aws:alice"},
        "Source Identity must match",
        "not start with 'aws:'",
    ),
    "source identity not a string": (
        {SOURCE_IDENTITY_CLAIM: ["alice"]},
        "Source Identity must match",
        "not a string",
    ),
    "tags claim not an object": ({TAGS_CLAIM: "team=ci"}, "Invalid session tags", "JSON object"),
    "principal_tags not an object": (
        {TAGS_CLAIM: {"principal_tags": ["team"]}},
        "Invalid session tags",
        "principal_tags is",
    ),
    "two values for a tag": (
        {TAGS_CLAIM: {"principal_tags": {"team": ["a", "b"]}}},
        "Invalid session tags",
        "one string value",
    ),
    "a reserved key": (
        {TAGS_CLAIM: {"principal_tags": {"aws:team": ["a"]}}},
        "Invalid session tags",
        "starts with 'aws:'",
    ),
    "a value too long": (
        {TAGS_CLAIM: {"principal_tags": {"team": ["x" * 257]}}},
        "Invalid session tags",
        "257 characters",
    ),
    "51 tags": ({TAGS_CLAIM: {"principal_tags": MANY}}, "Invalid session tags", "at most 50"),
    "keys differing in case": (
        {TAGS_CLAIM: {"principal_tags": {"Team": ["a"], "team": ["b"]}}},
        "Invalid session tags",
        "differ only in case",
    ),
    "a transitive key that is no tag": (
        {TAGS_CLAIM: {"principal_tags": {"team": ["a"]}, "transitive_tag_keys": ["cost"]}},
        "Invalid session tags",
        "'cost'",
    ),
    "transitive keys not a list": (
        {TAGS_CLAIM: {"principal_tags": {"team": ["a"]}, "transitive_tag_keys": "team"}},
        "Invalid session tags",
        "not a list of strings",
    ),
}


@pytest.mark.parametrize(("claims", "message", "explained"), BAD.values(), ids=BAD)
def test_session_claims_that_break_awss_rules_are_refused(claims, message, explained):
    with pytest.raises(errors.StsError) as excinfo:
        validate(signed(**claims))
    error = excinfo.value
    assert error.code == "InvalidIdentityToken"
    assert error.message.startswith(message)
    assert explained in " | ".join(error.explanation)
    # The explainer reads the same claims and says AWS refuses them.
    notes = web_identity_context({**claims, "iss": ISSUER, "sub": MAIN}).notes
    assert any(note.startswith("AWS refuses this token:") for note in notes)


def test_a_bare_string_tag_value_is_read_as_one_value():
    session = session_claims({TAGS_CLAIM: {"principal_tags": {"team": "ci"}}})
    assert dict(session.tags) == {"team": "ci"} and not session.problems


# --- :aud, one rule for the STS and the explainer --------------------------------------

# token claims -> the :aud (and :oaud) a trust policy sees: AWS's documented rule (azp if
# set, else aud; then oaud is aud), never the provider's client ID that matched
AUDIENCES = {
    "one aud": ({"aud": "sts.amazonaws.com"}, "sts.amazonaws.com", None),
    "a list aud": (
        {"aud": ["other", "sts.amazonaws.com"]},
        ["other", "sts.amazonaws.com"],
        None,
    ),
    "a list of one": ({"aud": ["sts.amazonaws.com"]}, "sts.amazonaws.com", None),
    "azp with a list aud": (
        {"aud": ["api", "sts.amazonaws.com"], "azp": "sts.amazonaws.com"},
        "sts.amazonaws.com",
        ["api", "sts.amazonaws.com"],
    ),
    "azp that is not a client ID": (
        {"aud": "sts.amazonaws.com", "azp": "web-app"},
        "web-app",
        "sts.amazonaws.com",
    ),
}


def trust(operator: str, aud) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": PROVIDER_ARN},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {operator: {f"{HOST}:aud": aud}},
                }
            ],
        }
    )


POLICIES = [
    trust("StringEquals", "sts.amazonaws.com"),
    trust("StringEquals", "other"),
    trust("StringEquals", "web-app"),
    trust("ForAllValues:StringEquals", "sts.amazonaws.com"),
    trust("ForAnyValue:StringEquals", "api"),
]


@pytest.mark.parametrize(("claims", "aud", "oaud"), AUDIENCES.values(), ids=AUDIENCES)
def test_the_sts_and_the_explainer_read_aud_by_one_rule(claims, aud, oaud):
    validated = validate(signed(**claims))
    context = validated.policy_context()
    assert context[f"{HOST}:aud"] == aud
    assert context.get(f"{HOST}:oaud") == oaud
    assert validated.audience == "sts.amazonaws.com"  # STS's Audience answer stays the match
    for text in POLICIES:
        explained = _explain.explain_token(signed(**claims), text, provider_arn=PROVIDER_ARN)
        assert dict(explained.request.context) == context
        sts = policy.evaluate(
            text,
            policy.PolicyRequest(
                principal={"Federated": [PROVIDER_ARN]},
                actions=validated.required_actions,
                context=context,
            ),
        )
        assert sts.allowed == explained.allowed, text


# --- end to end with boto3: fedmock's issuer, tags, source identity, thumbprints -------


@pytest.fixture
def local(idp_url, demo):
    jwks.forget()
    state.forget()
    keys.ensure_active_key(JWT)
    keys.forget_cached_keys()
    made = []

    def client(service, **credentials):
        made.append(
            boto3.client(
                service,
                endpoint_url=idp_url + "/aws/",
                region_name="us-east-1",
                aws_access_key_id=credentials.get("key", ACCOUNT),
                aws_secret_access_key=credentials.get("secret", "local"),
                aws_session_token=credentials.get("token"),
                config=Config(retries={"max_attempts": 1}),
            )
        )
        return made[-1]

    yield client
    for made_client in made:
        made_client.close()
    jwks.forget()
    state.forget()


def role_for(local, idp_url, actions, **conditions) -> str:
    issuer = idp_url + "/oidc"
    iam = local("iam")
    arns = [p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]]
    if not arns:
        # A thumbprint that pins nothing: the local STS keeps it and never checks it.
        arns = [
            iam.create_open_id_connect_provider(
                Url=issuer, ClientIDList=["sts.amazonaws.com"], ThumbprintList=["0" * 40]
            )["OpenIDConnectProviderArn"]
        ]
    statement = {
        "Effect": "Allow",
        "Principal": {"Federated": arns[0]},
        "Action": list(actions),
    }
    if conditions:
        statement["Condition"] = {"StringEquals": conditions}
    name = f"r{len(iam.list_roles()['Roles'])}"
    document = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=document)["Role"]["Arn"]


ALL = ("sts:AssumeRoleWithWebIdentity", "sts:TagSession", "sts:SetSourceIdentity")
SESSION_CLAIMS = {TAGS_CLAIM: TAGS, SOURCE_IDENTITY_CLAIM: "alice"}


def tagged_token() -> str:
    return issue.issue(preset="github", options=tokens.Options(), claims=SESSION_CLAIMS).token


@pytest.mark.django_db(transaction=True)
def test_tags_and_source_identity_go_on_the_issued_session(local, idp_url):
    role = role_for(
        local, idp_url, ALL, **{"sts:SourceIdentity": "alice", "aws:RequestTag/team": "ci"}
    )
    answer = local("sts").assume_role_with_web_identity(
        RoleArn=role, RoleSessionName="ci", WebIdentityToken=tagged_token()
    )
    assert answer["SourceIdentity"] == "alice"
    credentials = answer["Credentials"]
    row = IssuedCredential.objects.get(access_key_id=credentials["AccessKeyId"])
    assert row.session_tags == {"team": "ci", "project": "app"}
    assert row.transitive_tag_keys == ["team"] and row.source_identity == "alice"
    who = local(
        "sts",
        key=credentials["AccessKeyId"],
        secret=credentials["SecretAccessKey"],
        token=credentials["SessionToken"],
    ).get_caller_identity()
    assert who["Arn"].endswith(":assumed-role/" + role.rsplit("/", 1)[1] + "/ci")
    # A token without them: no SourceIdentity in the answer, nothing stored.
    plain = issue.issue(preset="github", options=tokens.Options()).token
    role = role_for(local, idp_url, ("sts:AssumeRoleWithWebIdentity",))
    answer = local("sts").assume_role_with_web_identity(
        RoleArn=role, RoleSessionName="ci", WebIdentityToken=plain
    )
    assert "SourceIdentity" not in answer
    row = IssuedCredential.objects.get(access_key_id=answer["Credentials"]["AccessKeyId"])
    assert row.session_tags == {} and row.transitive_tag_keys == [] and row.source_identity == ""


# trust policy (actions, conditions) -> what the explanation names
DENIED = {
    "no sts:SetSourceIdentity": (ALL[:2], {}, "sts:SetSourceIdentity"),
    "no sts:TagSession": ((ALL[0], ALL[2]), {}, "sts:TagSession"),
    "another source identity": (ALL, {"sts:SourceIdentity": "bob"}, "sts:SourceIdentity"),
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("actions", "conditions", "explained"), DENIED.values(), ids=DENIED)
def test_the_trust_policy_must_allow_what_the_token_asks(
    local, idp_url, actions, conditions, explained
):
    role = role_for(local, idp_url, actions, **conditions)
    with pytest.raises(ClientError) as excinfo:
        local("sts").assume_role_with_web_identity(
            RoleArn=role, RoleSessionName="ci", WebIdentityToken=tagged_token()
        )
    response = excinfo.value.response
    assert response["Error"]["Code"] == "AccessDenied"
    assert explained in response["ResponseMetadata"]["HTTPHeaders"]["x-fedmock-explanation"]
    assert not IssuedCredential.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_thumbprints_are_kept_and_never_checked(local, idp_url):
    role = role_for(local, idp_url, ("sts:AssumeRoleWithWebIdentity",))
    iam = local("iam")
    arn = iam.list_open_id_connect_providers()["OpenIDConnectProviderList"][0]["Arn"]
    assert iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)["ThumbprintList"] == [
        "0" * 40
    ]
    iam.update_open_id_connect_provider_thumbprint(
        OpenIDConnectProviderArn=arn, ThumbprintList=["f" * 40]
    )
    token = issue.issue(preset="github", options=tokens.Options()).token
    assert local("sts").assume_role_with_web_identity(
        RoleArn=role, RoleSessionName="ci", WebIdentityToken=token
    )["Credentials"]


@pytest.mark.django_db(transaction=True)
def test_assume_role_with_saml_stores_its_session_tags_too(idp_url, demo):
    state.forget()
    minted = sso.mint("alice", saml_aws.AUDIENCE, role_arn=ADMIN)
    sts = boto3.client(
        "sts",
        endpoint_url=idp_url + "/aws/",
        region_name="us-east-1",
        config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1}),
    )
    try:
        answer = sts.assume_role_with_saml(
            RoleArn=ADMIN, PrincipalArn=PROVIDER, SAMLAssertion=minted.saml_response
        )
    finally:
        sts.close()
        state.forget()
    row = IssuedCredential.objects.get(access_key_id=answer["Credentials"]["AccessKeyId"])
    root = etree.fromstring(minted.xml.encode())
    sent = {
        attribute.get("Name").removeprefix(saml_aws.PRINCIPAL_TAG_PREFIX): attribute.findtext(
            "saml:AttributeValue", namespaces=NS
        )
        for attribute in root.iterfind(".//saml:Attribute", NS)
        if attribute.get("Name").startswith(saml_aws.PRINCIPAL_TAG_PREFIX)
    }
    assert sent and row.session_tags == sent
