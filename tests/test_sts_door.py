"""The local IAM slice at /aws/ over real HTTP: boto3 and sync_iam_provider, unchanged."""

import io
import json

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from django.core.management import call_command

from idp import identity
from idp.models import AuditEvent
from idp.sts import state, views

from .sts_support import stored_copy

pytestmark = pytest.mark.django_db(transaction=True)

ACCOUNT = "123456789012"  # the demo seeds 111122223333 and 444455556666; this one is empty
DEMO_PROVIDER = "arn:aws:iam::111122223333:saml-provider/fedmock"
PROVIDER = f"arn:aws:iam::{ACCOUNT}:saml-provider/fedmock"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Federated": PROVIDER},
            "Action": "sts:AssumeRoleWithSAML",
            "Condition": {"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}},
        }
    ],
}


@pytest.fixture(autouse=True)
def fresh_state():
    state.forget()
    yield
    state.forget()


@pytest.fixture
def client(idp_url):
    """A boto3 client of the local IAM or STS; botocore's own checks off when asked."""
    made = []

    def make(service, key=ACCOUNT, validate=True):
        made.append(
            boto3.client(
                service,
                endpoint_url=idp_url + "/aws/",
                region_name="us-east-1",
                aws_access_key_id=key,
                aws_secret_access_key="local",
                config=Config(parameter_validation=validate, retries={"max_attempts": 1}),
            )
        )
        return made[-1]

    yield make
    # An open keep-alive connection would outlive the test in the live server's thread.
    for made_client in made:
        made_client.close()


def error_of(excinfo) -> tuple[str, str, int, str]:
    response = excinfo.value.response
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    return (
        response["Error"]["Code"],
        response["Error"]["Message"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        headers.get("x-fedmock-explanation", ""),
    )


def test_saml_provider_lifecycle(demo, client):
    iam = client("iam")
    metadata = identity.metadata_xml().decode()
    arn = iam.create_saml_provider(Name="fedmock", SAMLMetadataDocument=metadata)["SAMLProviderArn"]
    assert arn == PROVIDER
    listed = iam.list_saml_providers()["SAMLProviderList"]
    assert [entry["Arn"] for entry in listed] == [PROVIDER]
    got = iam.get_saml_provider(SAMLProviderArn=arn)
    assert got["SAMLMetadataDocument"] == metadata and got["CreateDate"]

    changed = metadata.replace("<md:NameIDFormat>", "<md:NameIDFormat>", 1) + "\n"
    assert iam.update_saml_provider(SAMLProviderArn=arn, SAMLMetadataDocument=changed)
    assert iam.get_saml_provider(SAMLProviderArn=arn)["SAMLMetadataDocument"] == changed

    with pytest.raises(ClientError) as excinfo:
        iam.create_saml_provider(Name="fedmock", SAMLMetadataDocument=metadata)
    assert error_of(excinfo)[:3] == (
        "EntityAlreadyExists",
        "SAMLProvider fedmock already exists",
        409,
    )
    # Another account (a 12-digit key names it, as LocalStack's do) has its own providers.
    demo_providers = client("iam", key="444455556666").list_saml_providers()["SAMLProviderList"]
    assert [entry["Arn"] for entry in demo_providers] == [
        "arn:aws:iam::444455556666:saml-provider/fedmock"
    ]

    iam.delete_saml_provider(SAMLProviderArn=arn)
    with pytest.raises(ClientError) as excinfo:
        iam.get_saml_provider(SAMLProviderArn=arn)
    code, message, status, explanation = error_of(excinfo)
    assert (code, status) == ("NoSuchEntity", 404) and PROVIDER in message
    assert "no SAML provider" in explanation
    assert iam.list_saml_providers()["SAMLProviderList"] == []


@pytest.mark.parametrize(
    "name, document, code, words",
    [
        ("bad name!", "x" * 1000, "ValidationError", "regular expression pattern"),
        ("short", "<md/>", "ValidationError", "greater than or equal to 1000"),
        ("prose", "not metadata " * 100, "InvalidInput", "Could not parse metadata"),
        ("bom", "\ufeff" + "x" * 1000, "InvalidInput", "Could not parse metadata"),
    ],
)
def test_create_saml_provider_refusals(demo, client, name, document, code, words):
    iam = client("iam", validate=False)
    with pytest.raises(ClientError) as excinfo:
        iam.create_saml_provider(Name=name, SAMLMetadataDocument=document)
    got_code, message, status, explanation = error_of(excinfo)
    assert (got_code, status) == (code, 400) and words in message and explanation
    event = AuditEvent.objects.get(flow="sts")
    assert event.outcome == "refused" and event.detail.startswith(code)
    assert event.sp_entity_id == "iam:CreateSAMLProvider"


def test_too_many_keys_in_metadata_is_limit_exceeded(demo, client):
    metadata = identity.metadata_xml().decode()
    start = metadata.index("<md:KeyDescriptor")
    descriptor = metadata[start : metadata.index("</md:KeyDescriptor>") + 19]
    eleven = metadata.replace(descriptor, descriptor * 11, 1)
    with pytest.raises(ClientError) as excinfo:
        client("iam").create_saml_provider(Name="many", SAMLMetadataDocument=eleven)
    assert error_of(excinfo)[:3] == (
        "LimitExceeded",
        "Cannot exceed quota for KeysPerSAMLProvider: 10",
        409,
    )


def test_role_lifecycle(demo, client):
    iam = client("iam")
    created = iam.create_role(
        RoleName="Admin", AssumeRolePolicyDocument=json.dumps(TRUST), MaxSessionDuration=7200
    )["Role"]
    assert created["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/Admin"
    assert created["RoleId"].startswith("AROA") and created["MaxSessionDuration"] == 7200
    got = iam.get_role(RoleName="Admin")["Role"]
    assert got["RoleId"] == created["RoleId"]
    assert got["AssumeRolePolicyDocument"] == TRUST  # botocore decodes the JSON
    assert [role["RoleName"] for role in iam.list_roles()["Roles"]] == ["Admin"]

    narrower = {**TRUST, "Statement": [{**TRUST["Statement"][0], "Condition": {}}]}
    iam.update_assume_role_policy(RoleName="Admin", PolicyDocument=json.dumps(narrower))
    assert iam.get_role(RoleName="Admin")["Role"]["AssumeRolePolicyDocument"] == narrower

    with pytest.raises(ClientError) as excinfo:
        iam.create_role(RoleName="admin", AssumeRolePolicyDocument=json.dumps(TRUST))
    assert error_of(excinfo)[:3] == (
        "EntityAlreadyExists",
        "Role with name admin already exists.",
        409,
    )
    with pytest.raises(ClientError) as excinfo:
        iam.update_assume_role_policy(RoleName="Admin", PolicyDocument="{not json")
    assert error_of(excinfo)[0] == "MalformedPolicyDocument"

    iam.update_role(RoleName="Admin", Description="admins", MaxSessionDuration=3600)
    iam.update_role(RoleName="Admin", MaxSessionDuration=43200)  # the description stays
    got = iam.get_role(RoleName="Admin")["Role"]
    assert (got["MaxSessionDuration"], got.get("Description")) == (43200, "admins")
    with pytest.raises(ClientError) as excinfo:
        iam.update_role(RoleName="Admin", MaxSessionDuration=43201)
    assert error_of(excinfo)[0] == "ValidationError"
    assert iam.get_role(RoleName="Admin")["Role"]["MaxSessionDuration"] == 43200

    iam.delete_role(RoleName="Admin")
    with pytest.raises(ClientError) as excinfo:
        iam.get_role(RoleName="Admin")
    assert error_of(excinfo)[:3] == (
        "NoSuchEntity",
        "The role with name Admin cannot be found.",
        404,
    )


@pytest.mark.parametrize(
    "params, code, words",
    [
        (
            {
                "RoleName": "R",
                "AssumeRolePolicyDocument": json.dumps(TRUST),
                "MaxSessionDuration": 60,
            },
            "ValidationError",
            "greater than or equal to 3600",
        ),
        (
            {
                "RoleName": "R",
                "AssumeRolePolicyDocument": json.dumps(TRUST),
                "MaxSessionDuration": 50000,
            },
            "ValidationError",
            "less than or equal to 43200",
        ),
        (
            {"RoleName": "R" * 65, "AssumeRolePolicyDocument": json.dumps(TRUST)},
            "ValidationError",
            "less than or equal to 64",
        ),
        (
            {"RoleName": "R", "AssumeRolePolicyDocument": '{"Statement": 1}'},
            "MalformedPolicyDocument",
            "",
        ),
    ],
)
def test_create_role_refusals(demo, client, params, code, words):
    with pytest.raises(ClientError) as excinfo:
        client("iam", validate=False).create_role(**params)
    got_code, message, status, explanation = error_of(excinfo)
    assert (got_code, status) == (code, 400) and words in message and explanation


def test_sync_iam_provider_against_the_local_iam(demo, idp_url, monkeypatch):
    # The demo's snapshot was taken before IDP_BASE_URL became the live server's: stale,
    # as IAM's copy is after an IdP moves, until sync_iam_provider updates it.
    assert stored_copy(DEMO_PROVIDER) != state.undated(identity.metadata_xml().decode())
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFEDMOCKLOCAL")  # the default account's root
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    sync = ["sync_iam_provider", "--name", "fedmock", "--endpoint-url", idp_url + "/aws/"]
    out = io.StringIO()
    call_command(*sync, stdout=out, stderr=io.StringIO())
    assert f"Updated IAM SAML provider {DEMO_PROVIDER}" in out.getvalue()
    assert stored_copy(DEMO_PROVIDER) == state.undated(identity.metadata_xml().decode())

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCOUNT)  # an empty account: created there
    call_command(*sync, stdout=out, stderr=io.StringIO())
    assert f"Created IAM SAML provider {PROVIDER}" in out.getvalue()
    assert stored_copy(PROVIDER) == state.undated(identity.metadata_xml().decode())


@pytest.mark.parametrize(
    "body, code, status",
    [
        ({"Action": "DeleteEverything", "Version": "2010-05-08"}, "InvalidAction", 400),
        ({"Version": "2010-05-08"}, "InvalidAction", 400),
        ({"Action": "ListRoles", "Version": "2010-05-08"}, "MissingAuthenticationToken", 403),
        ({"Action": "AssumeRoleWithSAML"}, "ValidationError", 400),
        (
            {
                "Action": "AssumeRoleWithSAML",
                "RoleArn": "a" * 20,
                "PrincipalArn": "b" * 20,
                "SAMLAssertion": "c" * 4,
                "DurationSeconds": "soon",
            },
            "InvalidParameterValue",
            400,
        ),
    ],
)
def test_hostile_query_requests_are_aws_errors_not_500(demo, idp_url, body, code, status):
    response = requests.post(idp_url + "/aws/", data=body, timeout=10)
    assert response.status_code == status
    assert f"<Code>{code}</Code>" in response.text and "<Type>Sender</Type>" in response.text
    assert response.headers["X-Fedmock-Explanation"].isascii()


def test_a_forged_temporary_key_or_signature_is_refused(demo, idp_url):
    response = requests.post(
        idp_url + "/aws/",
        data={"Action": "GetCallerIdentity", "Version": "2011-06-15"},
        headers={
            "Authorization": "AWS4-HMAC-SHA256 Credential=ASIANEVERISSUED/20260101/us-east-1/"
            "sts/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + "0" * 64,
            "X-Amz-Date": "20260101T000000Z",
        },
        timeout=10,
    )
    assert response.status_code == 403 and "<Code>InvalidClientTokenId</Code>" in response.text
    garbled = requests.post(
        idp_url + "/aws/",
        data={"Action": "GetCallerIdentity"},
        headers={"Authorization": "AWS4-HMAC-SHA256 nonsense\u00e9".encode()},
        timeout=10,
    )
    assert garbled.status_code == 400 and "<Code>IncompleteSignature</Code>" in garbled.text


def test_the_explanation_header_is_one_ascii_line():
    line = views.one_line(("first\nline", "caf\u00e9 \u2603", "x" * 5000))
    assert line.isascii() and "\n" not in line and len(line) <= views.EXPLANATION_MAX
    assert line.startswith("first line | caf\\xe9 \\u2603 | x")
