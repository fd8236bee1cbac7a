"""sso.mint and mint_response: the browser's response without a browser, on the same pipeline."""

import base64
import datetime
import io
import json

import boto3
import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from lxml import etree
from moto import mock_aws

from idp import faults, identity, sso
from idp.models import AuditEvent, ServiceProvider
from idp.saml import aws
from idp.saml import constants as c
from idp.saml.errors import SamlError
from users.models import User

from .agents import ServiceProvider as Pysaml2SP
from .agents import parse_post_form

pytestmark = pytest.mark.django_db

ADMIN = "arn:aws:iam::111122223333:role/Admin"
ADMIN_VALUE = f"{ADMIN},arn:aws:iam::111122223333:saml-provider/fedmock"
AWS_ACS = "https://signin.aws.amazon.com/saml"


@pytest.fixture(autouse=True)
def fresh_process():
    faults._last_sent.clear()
    yield
    faults._last_sent.clear()


def layout(xml: bytes) -> list:
    """Where every element and attribute stands, and what each SAML Attribute holds;
    no IDs, instants, digests or signature values."""
    root = etree.fromstring(xml)
    tree = root.getroottree()
    shape = [(tree.getpath(e), sorted(e.attrib)) for e in root.iter() if isinstance(e.tag, str)]
    values = sorted(
        (a.get("Name"), a.get("NameFormat"), tuple(v.text for v in a))
        for a in root.iterfind(".//{*}Attribute")
    )
    return [shape, values]


def browser_response(username: str, role: str) -> bytes:
    client = Client()
    assert client.login(username=username, password=username)
    page = client.get("/saml/init/", {"sp": aws.AUDIENCE, "role": role})
    assert page.status_code == 200, page.content[:500]
    return base64.b64decode(parse_post_form(page.content.decode())["fields"]["SAMLResponse"])


def test_a_minted_response_has_the_browser_flows_layout(demo):
    minted = sso.mint("alice", aws.AUDIENCE, role_arn=ADMIN)
    browser = browser_response("alice", ADMIN)
    assert layout(base64.b64decode(minted.saml_response)) == layout(browser)
    root = etree.fromstring(base64.b64decode(minted.saml_response))
    # Signed as AWS wants it: the Assertion (R11), and the Response around it.
    assert root.find(f"{{{c.SAML}}}Assertion/{{{c.DS}}}Signature") is not None
    assert root.find(f"{{{c.DS}}}Signature") is not None
    assert (minted.acs_url, minted.scenario, minted.decrypted_xml) == (AWS_ACS, None, None)
    assert minted.findings == []
    assert root.get("ID") == minted.response_id
    assert etree.fromstring(minted.xml.encode()).get("ID") == minted.response_id


@mock_aws
def test_a_minted_response_for_alice_as_admin_is_accepted_by_sts(demo):
    minted = sso.mint("alice", aws.AUDIENCE, role_arn=ADMIN)
    role, provider = ADMIN_VALUE.split(",")
    answer = boto3.client("sts", region_name="us-east-1").assume_role_with_saml(
        RoleArn=role, PrincipalArn=provider, SAMLAssertion=minted.saml_response
    )
    assert answer["AssumedRoleUser"]["Arn"].endswith("/alice@example.com")


def test_a_minted_response_for_alice_as_admin_is_accepted_by_pysaml2(demo, tmp_path):
    """pysaml2 playing AWS's SP: its entity ID and ACS, the IdP's metadata."""
    sp = Pysaml2SP(tmp_path / "aws", identity.metadata_xml(), entity_id=aws.AUDIENCE, acs=AWS_ACS)
    request_id, _ = sp.redirect_request()
    minted = sso.mint("alice", aws.AUDIENCE, role_arn=ADMIN, in_response_to=request_id)
    accepted = sp.accept(minted.saml_response, request_id)
    assert accepted.ava[aws.ROLE] == [ADMIN_VALUE]
    assert accepted.ava[aws.ROLE_SESSION_NAME] == ["alice@example.com"]


def test_a_mint_is_audited_like_a_sign_on(demo):
    now = datetime.datetime(2031, 5, 6, 7, 8, 9, tzinfo=datetime.UTC)
    minted = sso.mint(
        "alice", aws.AUDIENCE, role_arn=ADMIN, relay_state="r", scenario="expired", now=now
    )
    event = AuditEvent.objects.get()
    assert (event.flow, event.outcome, event.username) == ("mint", "sent", "alice")
    assert event.response_id == minted.response_id and event.roles == [ADMIN]
    first, second = event.detail.splitlines()[:2]
    assert first.startswith("FAULT SCENARIO expired: ")
    assert "2031-05-06T07:08:09Z" in second
    assert minted.relay_state == "r"


def test_an_sp_initiated_shape_when_in_response_to_is_given(demo):
    minted = sso.mint("alice", aws.AUDIENCE, role_arn=ADMIN, in_response_to="_req1")
    root = etree.fromstring(base64.b64decode(minted.saml_response))
    assert root.get("InResponseTo") == "_req1"
    assert root.find(".//{*}SubjectConfirmationData").get("InResponseTo") == "_req1"
    assert AuditEvent.objects.get().request_id == "_req1"


@pytest.mark.parametrize(
    ("arguments", "status", "title"),
    [
        ({"username": "nobody"}, 404, "Unknown user"),
        ({"sp_entity_id": "https://nowhere.example/"}, 404, "Unknown service provider"),
        ({"sp_entity_id": "\x00" * 2000}, 404, "Unknown service provider"),
        ({"role_arn": "arn:aws:iam::999999999999:role/Nope"}, 403, "You do not have this role"),
        ({"username": "carol"}, 403, "No AWS role for you"),
        ({"in_response_to": "1-not-an-id"}, 400, "in_response_to is not a request ID"),
        ({"in_response_to": "_" * 300}, 400, "in_response_to is not a request ID"),
        ({"scenario": "nope"}, 400, "Unknown fault scenario"),
        ({"scenario": "clock-skew:x"}, 400, "Bad value for a fault scenario"),
        ({"relay_state": "x" * 5000}, 400, None),
    ],
)
def test_refusals_are_4xx_with_a_hint(demo, arguments, status, title):
    call = {"username": "alice", "sp_entity_id": aws.AUDIENCE, **arguments}
    with pytest.raises(SamlError) as refusal:
        sso.mint(call.pop("username"), call.pop("sp_entity_id"), **call)
    assert refusal.value.status == status and refusal.value.hint
    assert title is None or refusal.value.title == title


def test_an_inactive_user_is_refused(demo):
    User.objects.filter(username="alice").update(is_active=False)
    with pytest.raises(SamlError) as refusal:
        sso.mint("alice", aws.AUDIENCE)
    assert refusal.value.status == 403


def test_a_blocked_response_is_refused_without_a_scenario_but_a_named_one_is_returned(demo):
    sp = ServiceProvider.objects.get(entity_id=aws.AUDIENCE)
    sp.rules.filter(attribute_name=aws.ROLE_SESSION_NAME).delete()  # R2: AWS would reject it
    with pytest.raises(SamlError) as refusal:
        sso.mint("alice", aws.AUDIENCE, role_arn=ADMIN)
    assert refusal.value.status == 409
    assert AuditEvent.objects.get().outcome == "refused"


def test_an_explicit_scenario_on_a_blocking_aws_sp_returns_its_findings(demo):
    sp = ServiceProvider.objects.get(entity_id=aws.AUDIENCE)
    assert sp.check_policy == ServiceProvider.CheckPolicy.BLOCK
    minted = sso.mint("alice", aws.AUDIENCE, role_arn=ADMIN, scenario="wrong-audience")
    assert {f.rule for f in minted.findings} == {"R10"}


def test_an_encrypting_sp_gets_the_decrypted_view_too(demo, tmp_path):
    sp = Pysaml2SP(tmp_path / "enc", identity.metadata_xml(), encryption=True)
    sp.register(tmp_path)
    ServiceProvider.objects.filter(entity_id=sp.entity_id).update(encrypt_assertions=True)
    minted = sso.mint("alice", sp.entity_id)
    assert "EncryptedAssertion" in minted.xml and "EncryptedAssertion" not in minted.decrypted_xml
    assert "<saml:Assertion" in minted.decrypted_xml


# --- The command ------------------------------------------------------------------


def run(*arguments: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("mint_response", *arguments, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_command_prints_base64_xml_or_json(demo):
    out, err = run("alice", aws.AUDIENCE, "--role", ADMIN)
    assert etree.fromstring(base64.b64decode(out.strip())).get("Destination") == AWS_ACS
    assert err == ""
    out, _ = run("alice", aws.AUDIENCE, "--role", ADMIN, "--format", "xml")
    assert etree.fromstring(out.encode()).tag == f"{{{c.SAMLP}}}Response"
    out, _ = run(
        "alice",
        aws.AUDIENCE,
        "--role",
        ADMIN,
        "--format",
        "json",
        "--scenario",
        "clock-skew:-900",
        "--relay-state",
        "rs",
        "--in-response-to",
        "_abc",
        "--now",
        "2030-01-02T03:04:05",
    )
    fields = json.loads(out)
    assert fields["scenario"] == "clock-skew:-900" and fields["relay_state"] == "rs"
    assert {f["rule"] for f in fields["findings"]} == {"R12"}
    issued = etree.fromstring(base64.b64decode(fields["saml_response"])).get("IssueInstant")
    assert issued == "2030-01-02T02:49:05Z"  # the named now, 900 s behind


def test_the_command_writes_findings_to_stderr(demo):
    _, err = run("alice", aws.AUDIENCE, "--role", ADMIN, "--scenario", "no-role")
    assert err.splitlines()[0].startswith("R1 error:")
    assert "no-role" in err.splitlines()[-1]


@pytest.mark.parametrize(
    "arguments",
    [
        ("nobody", aws.AUDIENCE),
        ("alice", "https://nowhere.example/"),
        ("alice", aws.AUDIENCE, "--scenario", "bogus"),
        ("alice", aws.AUDIENCE, "--role", "arn:aws:iam::1:role/X"),
        ("alice", aws.AUDIENCE, "--now", "yesterday"),
        ("alice", aws.AUDIENCE, "--format", "yaml"),
    ],
)
def test_the_command_refuses_in_one_line(demo, arguments):
    with pytest.raises(CommandError) as refusal:
        run(*arguments)
    assert "\n" not in str(refusal.value) and str(refusal.value)
