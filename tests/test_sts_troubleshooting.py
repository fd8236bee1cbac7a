"""AWS's SAML troubleshooting list, reproduced against the local STS at /aws/ over real HTTP.

One row per case users hit at AssumeRoleWithSAML: `breaks` sets the trap and names the
request, which the local STS must refuse with AWS's code and message while its
X-Fedmock-Explanation header and the audit name the cause; `fix` then does what the
explanation says, and the request it names must succeed. The success next to each refusal
is what makes the refusal the check's doing and not some other fault of the request."""

import io
from dataclasses import dataclass, field

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from django.core.management import call_command

from idp import identity, keys, sso
from idp.models import AuditEvent, PersistentNameID
from idp.saml import aws
from idp.sts import state

from .sts_support import ACCOUNT, ADMIN, PROVIDER, READ_ONLY, trust_policy

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass
class Ask:
    """One AssumeRoleWithSAML: whose assertion, broken how, for which role and how long."""

    user: str = "alice"
    role_arn: str = ADMIN
    scenario: str | None = None
    duration: int | None = None
    saml_response: str = field(default="", repr=False)

    def minted(self) -> "Ask":
        role = self.role_arn if self.user == "alice" else ""  # bob's one role: IdP-initiated
        minted = sso.mint(self.user, aws.AUDIENCE, role_arn=role, scenario=self.scenario)
        self.saml_response = minted.saml_response
        return self


class Rig:
    """The demo's local IAM (as `make run` seeds it) and unsigned STS calls, over HTTP."""

    def __init__(self, idp_url: str):
        self.url = idp_url + "/aws/"
        self.made = []

    def client(self, service: str, **config):
        self.made.append(
            boto3.client(
                service,
                endpoint_url=self.url,
                region_name="us-east-1",
                aws_access_key_id=ACCOUNT,
                aws_secret_access_key="local",
                config=Config(retries={"max_attempts": 1}, **config),
            )
        )
        return self.made[-1]

    def assume(self, ask: Ask) -> dict:
        extra = {} if ask.duration is None else {"DurationSeconds": ask.duration}
        sts = self.client("sts", signature_version=UNSIGNED)
        return sts.assume_role_with_saml(
            RoleArn=ask.role_arn,
            PrincipalArn=PROVIDER,
            SAMLAssertion=ask.saml_response,
            **extra,
        )


@pytest.fixture
def rig(idp_url, demo):
    """idp_url before demo: the provider's snapshot holds the live server's metadata."""
    state.forget()
    made = Rig(idp_url)
    assert state.provider_metadata(PROVIDER) == identity.metadata_xml()
    yield made
    # An open keep-alive connection would outlive the test in the live server's thread.
    for client in made.made:
        client.close()
    state.forget()


# --- the cases: each `breaks` returns the refused request, each `fix` the accepted one -------


def rotate_without_telling_iam(rig):
    # The next key is published, then signs (no worker beats here, so nothing waits).
    # IAM's copy of the metadata still holds only the old key.
    keys.stage()
    keys.activate()
    return Ask().minted()


def sync_the_provider(rig, refused, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCOUNT)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    out = io.StringIO()
    call_command(
        "sync_iam_provider",
        "--name",
        "fedmock",
        "--endpoint-url",
        rig.url,
        stdout=out,
        stderr=io.StringIO(),
    )
    assert f"Updated IAM SAML provider {PROVIDER}" in out.getvalue()
    return refused  # the very same assertion, now that IAM knows the new key


def nothing(rig):
    return None


def fresh_assertion(rig, refused, monkeypatch):
    return Ask(refused.user, refused.role_arn).minted()


def bob_asks_for_admin(rig):
    return Ask("bob", ADMIN).minted()


def bob_asks_for_his_role(rig, refused, monkeypatch):
    return Ask("bob", READ_ONLY).minted()


def bob_persistent_nameid() -> str:
    # SAML:sub is the assertion's NameID: for AWS a persistent, opaque value, not the username.
    return PersistentNameID.objects.get(
        user__username="bob", service_provider__entity_id=aws.AUDIENCE
    ).value


def read_only_only_for_bob(rig):
    Ask("bob", READ_ONLY).minted()  # bob's persistent NameID exists from his first sign-on
    rig.client("iam").update_assume_role_policy(
        RoleName="ReadOnly", PolicyDocument=trust_policy(**{"SAML:sub": bob_persistent_nameid()})
    )
    return Ask("alice", READ_ONLY).minted()


def drop_tag_session(rig):
    rig.client("iam").update_assume_role_policy(
        RoleName="Admin", PolicyDocument=trust_policy(actions=["sts:AssumeRoleWithSAML"])
    )
    return Ask().minted()  # the demo's users carry session tags (PrincipalTag attributes)


def allow_tag_session(rig, refused, monkeypatch):
    rig.client("iam").update_assume_role_policy(RoleName="Admin", PolicyDocument=trust_policy())
    return refused


def one_hour_admin(rig):
    rig.client("iam").update_role(RoleName="Admin", MaxSessionDuration=3600)
    return Ask(duration=3601).minted()


def within_the_maximum(rig, refused, monkeypatch):
    return Ask(duration=3600).minted()


CASES = [
    pytest.param(
        rotate_without_telling_iam,
        sync_the_provider,
        "InvalidIdentityToken",
        "Response signature invalid",
        ("does not verify against any certificate", "a rotation", "sync_iam_provider"),
        id="signature-invalid-after-rotation",
    ),
    pytest.param(
        lambda rig: Ask(scenario="expired").minted(),
        fresh_assertion,
        "ExpiredTokenException",
        "Response has expired",
        ("NotOnOrAfter", "STS judged it at", "clock"),
        id="expired",
    ),
    pytest.param(
        lambda rig: Ask(scenario="wrong-audience").minted(),
        fresh_assertion,
        "InvalidIdentityToken",
        "Response does not contain the required audience",
        ("https://wrong-audience.fedmock.invalid/", "urn:amazon:webservices"),
        id="wrong-audience",
    ),
    pytest.param(
        bob_asks_for_admin,
        bob_asks_for_his_role,
        "AccessDenied",
        "Not authorized to perform sts:AssumeRoleWithSAML",
        (f"RoleArn {ADMIN}", "is not a pair in the assertion's Role attribute", READ_ONLY),
        id="role-not-in-assertion",
    ),
    pytest.param(
        read_only_only_for_bob,
        bob_asks_for_his_role,
        "AccessDenied",
        "Not authorized to perform sts:AssumeRoleWithSAML",
        ('"FedmockSignIn"', "condition StringEquals SAML:sub", "did not match the request's"),
        id="trust-policy-saml-sub-of-another-user",
    ),
    pytest.param(
        drop_tag_session,
        allow_tag_session,
        "AccessDenied",
        "Not authorized to perform sts:TagSession",
        ("No statement allows sts:TagSession", "does not cover sts:TagSession"),
        id="missing-sts-tag-session",
    ),
    pytest.param(
        one_hour_admin,
        within_the_maximum,
        "ValidationError",
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        ("DurationSeconds is 3601", "MaxSessionDuration is 3600"),
        id="duration-above-role-maximum",
    ),
]


@pytest.mark.parametrize("breaks, fix, code, message, causes", CASES)
def test_troubleshooting_reproduced(rig, monkeypatch, breaks, fix, code, message, causes):
    refused = breaks(rig)
    with pytest.raises(ClientError) as excinfo:
        rig.assume(refused)
    response = excinfo.value.response
    assert (response["Error"]["Code"], response["Error"]["Message"]) == (code, message)
    explanation = response["ResponseMetadata"]["HTTPHeaders"]["x-fedmock-explanation"]
    event = AuditEvent.objects.filter(flow="sts", outcome="refused").latest("created_at")
    assert event.sp_entity_id == "sts:AssumeRoleWithSAML"
    assert event.detail.startswith(f"{code}: {message}\n")
    for cause in causes:
        assert cause in explanation and cause in event.detail

    accepted = rig.assume(fix(rig, refused, monkeypatch))
    assert accepted["AssumedRoleUser"]["Arn"].startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/")
    assert accepted["Credentials"]["AccessKeyId"].startswith("ASIA")


def test_the_saml_sub_condition_compares_the_persistent_nameid_not_the_username(rig):
    # What people write first is the username; AWS (and the local STS) compare the NameID,
    # which AssumeRoleWithSAML's answer gives as Subject.
    subject = rig.assume(Ask("bob", READ_ONLY).minted())["Subject"]
    assert subject == bob_persistent_nameid() != "bob"
    rig.client("iam").update_assume_role_policy(
        RoleName="ReadOnly", PolicyDocument=trust_policy(**{"SAML:sub": "bob"})
    )
    with pytest.raises(ClientError) as excinfo:
        rig.assume(Ask("bob", READ_ONLY).minted())
    assert excinfo.value.response["Error"]["Code"] == "AccessDenied"
    headers = excinfo.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert subject in headers["x-fedmock-explanation"]
