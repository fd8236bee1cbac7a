"""The whole loop over real HTTP: a minted assertion -> AssumeRoleWithSAML at the local STS
-> credentials -> GetCallerIdentity; and what the local STS refuses that moto accepts."""

import json

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from idp import identity, sso
from idp.models import AuditEvent
from idp.saml import aws
from idp.sts import state

from .sts_support import ADMIN, PROVIDER, SIGNIN, stored_copy, trust_policy

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def local_aws(idp_url, demo):
    """The demo's local IAM, as `make run` seeds it: the provider fedmock (this IdP's
    metadata, snapshotted with IDP_BASE_URL already the live server's, hence the fixture
    order) and the roles Admin, ReadOnly (111122223333) and Developer (444455556666)."""
    state.forget()
    made = []

    def client(service, config=None, **credentials):
        if config is None and not credentials:
            credentials = {"aws_access_key_id": "111122223333", "aws_secret_access_key": "local"}
        made.append(
            boto3.client(
                service,
                endpoint_url=idp_url + "/aws/",
                region_name="us-east-1",
                config=config or Config(retries={"max_attempts": 1}),
                **credentials,
            )
        )
        return made[-1]

    assert stored_copy(PROVIDER) == state.undated(identity.metadata_xml().decode())
    yield client
    # An open keep-alive connection would outlive the test in the live server's thread.
    for made_client in made:
        made_client.close()
    state.forget()


def assume(client, saml_response: str) -> dict:
    sts = client("sts", config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1}))
    return sts.assume_role_with_saml(
        RoleArn=ADMIN, PrincipalArn=PROVIDER, SAMLAssertion=saml_response
    )


def as_credentials(answer: dict) -> dict:
    credentials = answer["Credentials"]
    return {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
    }


def refusal(excinfo) -> tuple[str, str, str]:
    response = excinfo.value.response
    return (
        response["Error"]["Code"],
        response["Error"]["Message"],
        response["ResponseMetadata"]["HTTPHeaders"].get("x-fedmock-explanation", ""),
    )


def test_the_demo_seeds_the_providers_and_roles(local_aws):
    iam = local_aws("iam")
    # GitHubDeploy: the demo's web-identity role (AssumeRoleWithWebIdentity).
    assert sorted(r["RoleName"] for r in iam.list_roles()["Roles"]) == [
        "Admin",
        "GitHubDeploy",
        "ReadOnly",
    ]
    developer = local_aws("iam", aws_access_key_id="444455556666", aws_secret_access_key="x")
    assert developer.get_role(RoleName="Developer")["Role"]["AssumeRolePolicyDocument"] == (
        with_broker(json.loads(trust_policy().replace("111122223333", "444455556666")))
    )
    assert iam.get_role(RoleName="Admin")["Role"]["AssumeRolePolicyDocument"] == with_broker(
        json.loads(trust_policy())
    )


def with_broker(document: dict) -> dict:
    """The demo's roles also trust the custom identity broker (fedmock's local root)."""
    document["Statement"].append(
        {
            "Sid": "FedmockBroker",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
            "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
        }
    )
    return document


def test_assume_role_with_saml_then_get_caller_identity_until_expiry(local_aws, settings):
    minted = sso.mint("alice", aws.AUDIENCE, role_arn=ADMIN)
    answer = assume(local_aws, minted.saml_response)
    assert answer["AssumedRoleUser"]["Arn"] == (
        "arn:aws:sts::111122223333:assumed-role/Admin/alice@example.com"
    )
    assert answer["Audience"] == SIGNIN and answer["Issuer"] == identity.entity_id()
    assert answer["Credentials"]["AccessKeyId"].startswith("ASIA")

    sts = local_aws("sts", **as_credentials(answer))
    identity_ = sts.get_caller_identity()
    assert identity_["Arn"] == "arn:aws:sts::111122223333:assumed-role/Admin/alice@example.com"
    assert identity_["Account"] == "111122223333"
    assert identity_["UserId"].endswith(":alice@example.com")
    # Its role ID is the role's, as IAM's GetRole shows it.
    role_id = local_aws("iam").get_role(RoleName="Admin")["Role"]["RoleId"]
    assert identity_["UserId"] == f"{role_id}:alice@example.com"

    # One hour later on the IdP's clock (no sleeping), the same credentials are refused.
    settings.IDP_CLOCK_OFFSET = 3601
    with pytest.raises(ClientError) as excinfo:
        sts.get_caller_identity()
    code, message, explanation = refusal(excinfo)
    assert (code, message) == (
        "ExpiredToken",
        "The security token included in the request is expired",
    )
    assert "expired at" in explanation and "IdP clock" in explanation


def test_a_wrong_secret_is_a_signature_mismatch(local_aws):
    answer = assume(local_aws, sso.mint("alice", aws.AUDIENCE, role_arn=ADMIN).saml_response)
    forged = {**as_credentials(answer), "aws_secret_access_key": "not-the-secret"}
    with pytest.raises(ClientError) as excinfo:
        local_aws("sts", **forged).get_caller_identity()
    assert refusal(excinfo)[0] == "SignatureDoesNotMatch"


def test_issued_credentials_assume_another_role_the_trust_policy_names(local_aws):
    answer = assume(local_aws, sso.mint("alice", aws.AUDIENCE, role_arn=ADMIN).saml_response)
    iam = local_aws("iam")
    iam.create_role(
        RoleName="Auditor",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"AWS": ADMIN}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )
    sts = local_aws("sts", **as_credentials(answer))
    chained = sts.assume_role(
        RoleArn="arn:aws:iam::111122223333:role/Auditor", RoleSessionName="audit"
    )
    assert chained["AssumedRoleUser"]["Arn"].endswith(":assumed-role/Auditor/audit")
    with pytest.raises(ClientError) as excinfo:
        sts.assume_role(
            RoleArn="arn:aws:iam::111122223333:role/Auditor",
            RoleSessionName="audit",
            DurationSeconds=7200,
        )
    assert refusal(excinfo)[0] == "ValidationError"
    # A root's key (LocalStack-style) is not the role the policy names.
    with pytest.raises(ClientError) as excinfo:
        local_aws("sts").assume_role(
            RoleArn="arn:aws:iam::111122223333:role/Auditor", RoleSessionName="root"
        )
    code, message, explanation = refusal(excinfo)
    assert code == "AccessDenied" and message == (
        "User: arn:aws:iam::111122223333:root is not authorized to perform: sts:AssumeRole "
        "on resource: arn:aws:iam::111122223333:role/Auditor"
    )
    assert explanation


def test_get_federation_token_gives_working_credentials(local_aws):
    token = local_aws("sts").get_federation_token(Name="contractor")
    assert token["FederatedUser"]["Arn"] == "arn:aws:sts::111122223333:federated-user/contractor"
    who = local_aws("sts", **as_credentials(token)).get_caller_identity()
    assert who["Arn"] == token["FederatedUser"]["Arn"]
    with pytest.raises(ClientError) as excinfo:
        local_aws("sts", **as_credentials(token)).get_federation_token(Name="again")
    assert refusal(excinfo)[:2] == (
        "AccessDenied",
        "Cannot call GetFederationToken with session credentials",
    )


# What moto's own STS (mock_aws) accepts and the local STS refuses: the reason it exists.
BROKEN = [
    ("wrong-audience", None, "InvalidIdentityToken", "audience"),
    ("expired", None, "ExpiredTokenException", "NotOnOrAfter"),
    ("unknown-key", None, "InvalidIdentityToken", "signature"),
    (None, {"SAML:sub": "bob"}, "AccessDenied", "SAML:sub"),
    (None, {"actions": ["sts:AssumeRoleWithSAML"]}, "AccessDenied", "sts:TagSession"),
]


@pytest.mark.parametrize("scenario, condition, code, cause", BROKEN)
def test_moto_accepts_what_the_local_sts_refuses(local_aws, scenario, condition, code, cause):
    if condition:
        local_aws("iam").update_assume_role_policy(
            RoleName="Admin", PolicyDocument=trust_policy(**condition)
        )
    minted = sso.mint("alice", aws.AUDIENCE, role_arn=ADMIN, scenario=scenario)

    with pytest.raises(ClientError) as excinfo:
        assume(local_aws, minted.saml_response)
    got_code, message, explanation = refusal(excinfo)
    assert got_code == code and message
    assert cause.lower() in explanation.lower()
    event = AuditEvent.objects.filter(flow="sts", outcome="refused").latest("created_at")
    assert event.sp_entity_id == "sts:AssumeRoleWithSAML" and event.detail.startswith(code)

    with mock_aws():
        moto_sts = boto3.client("sts", region_name="us-east-1")
        accepted = moto_sts.assume_role_with_saml(
            RoleArn=ADMIN, PrincipalArn=PROVIDER, SAMLAssertion=minted.saml_response
        )
    assert accepted["Credentials"]["AccessKeyId"]
