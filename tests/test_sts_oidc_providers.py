"""IAM OpenID Connect providers in the local IAM at /aws/, over real HTTP with boto3."""

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from idp.sts import state

pytestmark = pytest.mark.django_db(transaction=True)

ACCOUNT = "123456789012"
GITHUB = "https://token.actions.githubusercontent.com"
THUMB = "6938fd4d98bab03faadb97b34396831e3780aea1"


@pytest.fixture(autouse=True)
def fresh_state():
    state.forget()
    yield
    state.forget()


@pytest.fixture
def iam(idp_url):
    client = boto3.client(
        "iam",
        endpoint_url=idp_url + "/aws/",
        region_name="us-east-1",
        aws_access_key_id=ACCOUNT,
        aws_secret_access_key="local",
        config=Config(parameter_validation=False, retries={"max_attempts": 1}),
    )
    yield client
    client.close()


def test_oidc_provider_lifecycle(iam):
    arn = iam.create_open_id_connect_provider(
        Url=GITHUB + "/", ClientIDList=["sts.amazonaws.com"], ThumbprintList=[THUMB]
    )["OpenIDConnectProviderArn"]
    assert arn == f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
    got = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    assert got["Url"] == "token.actions.githubusercontent.com"
    assert got["ClientIDList"] == ["sts.amazonaws.com"]
    assert got["ThumbprintList"] == [THUMB]
    listed = iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
    assert [entry["Arn"] for entry in listed] == [arn]
    # moto's backend holds it too (loaded from the database as the SAML providers are)
    assert arn in state.iam_backend(ACCOUNT).open_id_providers
    iam.update_open_id_connect_provider_thumbprint(
        OpenIDConnectProviderArn=arn, ThumbprintList=["A" * 40, "b" * 40]
    )
    got = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    assert got["ThumbprintList"] == ["a" * 40, "b" * 40]
    with pytest.raises(ClientError) as excinfo:
        iam.create_open_id_connect_provider(Url=GITHUB, ClientIDList=["x"])
    assert excinfo.value.response["Error"]["Code"] == "EntityAlreadyExists"
    iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    assert iam.list_open_id_connect_providers()["OpenIDConnectProviderList"] == []
    with pytest.raises(ClientError) as excinfo:
        iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    error = excinfo.value.response["Error"]
    assert (error["Code"], error["Message"]) == (
        "NoSuchEntity",
        f"OpenIDConnect Provider not found for arn {arn}",
    )


def test_loopback_http_issuer_is_allowed(iam):
    arn = iam.create_open_id_connect_provider(
        Url="http://127.0.0.1:8000/oidc", ClientIDList=["sts.amazonaws.com"]
    )["OpenIDConnectProviderArn"]
    assert arn == f"arn:aws:iam::{ACCOUNT}:oidc-provider/127.0.0.1:8000/oidc"


@pytest.mark.parametrize(
    ("url", "client_ids", "thumbprints", "code", "message"),
    [
        ("http://example.com", [], [], "ValidationError", "Invalid Open ID Connect Provider URL"),
        ("ftp://127.0.0.1/x", [], [], "ValidationError", "Invalid Open ID Connect Provider URL"),
        ("https://", [], [], "ValidationError", "Invalid Open ID Connect Provider URL"),
        (
            "https://a.example/?q=1",
            [],
            [],
            "ValidationError",
            "Invalid Open ID Connect Provider URL",
        ),
        ("https://u@a.example", [], [], "ValidationError", "Invalid Open ID Connect Provider URL"),
        ("https://" + "a" * 250, [], [], "ValidationError", "255"),
        (
            GITHUB,
            [f"c{i}" for i in range(101)],
            [],
            "LimitExceeded",
            "ClientIdsPerOpenIdConnectProvider: 100",
        ),
        (GITHUB, ["x" * 256], [], "ValidationError", "clientIDList"),
        (GITHUB, [], ["a" * 40] * 6, "InvalidInput", "fewer than 5"),
        (GITHUB, [], ["a" * 39], "ValidationError", "thumbprintList"),
        (GITHUB, [], ["g" * 40], "ValidationError", "thumbprintList"),
    ],
)
def test_create_refusals(iam, url, client_ids, thumbprints, code, message):
    with pytest.raises(ClientError) as excinfo:
        iam.create_open_id_connect_provider(
            Url=url, ClientIDList=client_ids, ThumbprintList=thumbprints
        )
    error = excinfo.value.response["Error"]
    assert error["Code"] == code
    assert message in error["Message"]
    assert iam.list_open_id_connect_providers()["OpenIDConnectProviderList"] == []


def test_update_thumbprint_of_unknown_provider(iam):
    with pytest.raises(ClientError) as excinfo:
        iam.update_open_id_connect_provider_thumbprint(
            OpenIDConnectProviderArn=f"arn:aws:iam::{ACCOUNT}:oidc-provider/nope.example",
            ThumbprintList=[THUMB],
        )
    assert excinfo.value.response["Error"]["Code"] == "NoSuchEntity"
