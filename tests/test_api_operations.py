"""The operations over real HTTP with a token: sign-ons (exchanged with moto's STS), checks,
scenarios, reset, the key rollover, and the API's JSON errors."""

import base64
import datetime
import json
from pathlib import Path

import boto3
import pytest
from lxml import etree
from moto import mock_aws

import idp
from idp import keys, scenarios
from idp.api.operations import views
from idp.api.operations.views import KeyStep
from idp.models import AuditEvent, SigningKey
from idp.saml import aws
from idp.saml import constants as c

from .api_support import Api, assert_refusal, staff, token_for
from .heartbeats import beat

pytestmark = pytest.mark.django_db(transaction=True)

NS = {"samlp": c.SAMLP, "saml": c.SAML, "ds": c.DS}
ADMIN_ROLE = "arn:aws:iam::111122223333:role/Admin"
ADMIN_VALUE = f"{ADMIN_ROLE},arn:aws:iam::111122223333:saml-provider/fedmock"
DEMO_FIXTURE = Path(idp.__file__).parent / "fixture_data" / "demo.yaml"


@pytest.fixture
def api(idp_url):
    return Api(idp_url, token_for(staff("root", superuser=True)))


def mint(api: Api, **fields) -> dict:
    answer = api.post("/api/v1/sign-ons", {"user": "alice", "sp": aws.AUDIENCE, **fields})
    assert answer.status_code == 201, answer.text
    return answer.json()


def attribute_values(root, name: str) -> list[str]:
    path = f".//saml:Attribute[@Name='{name}']/saml:AttributeValue"
    return [value.text for value in root.iterfind(path, NS)]


# --- sign-ons ----------------------------------------------------------------------------


@mock_aws
def test_a_minted_response_for_alice_as_admin_is_exchanged_by_sts(demo, api):
    minted = mint(api, role=ADMIN_ROLE, relay_state="https://console.aws.amazon.com/")
    assert minted["acs_url"] == "https://signin.aws.amazon.com/saml"
    assert minted["relay_state"] == "https://console.aws.amazon.com/"
    assert (minted["findings"], minted["scenario"], minted["decrypted_xml"]) == ([], None, None)
    root = etree.fromstring(base64.b64decode(minted["saml_response"]))
    assert root.get("ID") == minted["response_id"]
    assert root.get("InResponseTo") is None  # IdP-initiated in shape
    assert minted["response_id"] in minted["xml"]
    assert root.find("saml:Assertion/ds:Signature", NS) is not None
    assert attribute_values(root, aws.ROLE) == [ADMIN_VALUE]
    assert attribute_values(root, aws.ROLE_SESSION_NAME) == ["alice@example.com"]

    role, provider = ADMIN_VALUE.split(",")
    answer = boto3.client("sts", region_name="us-east-1").assume_role_with_saml(
        RoleArn=role, PrincipalArn=provider, SAMLAssertion=minted["saml_response"]
    )
    assert answer["Credentials"]["AccessKeyId"]
    assert answer["AssumedRoleUser"]["Arn"].endswith("/alice@example.com")
    event = AuditEvent.objects.get(response_id=minted["response_id"])
    assert (event.flow, event.username, event.outcome) == ("mint", "alice", "sent")


def test_mint_answers_to_a_request_id_at_a_chosen_instant(demo, api):
    minted = mint(api, role=ADMIN_ROLE, in_response_to="_req-1", now="2030-01-02T03:04:05")
    root = etree.fromstring(base64.b64decode(minted["saml_response"]))
    assert root.get("InResponseTo") == "_req-1"
    assert root.get("IssueInstant").startswith("2030-01-02T03:04:05")


def test_mint_with_a_scenario_returns_the_broken_response_and_its_findings(demo, api):
    minted = mint(api, role=ADMIN_ROLE, scenario="expired")
    assert minted["scenario"] == "expired"
    assert scenarios.CATALOGUE["expired"].aws_rule in {f["rule"] for f in minted["findings"]}
    assert any(f["severity"] == "error" for f in minted["findings"])


MINT_REFUSALS = [
    # (the body's fields over alice at AWS, status, words in the message)
    ({"user": "nobody"}, 404, "nobody"),
    ({"sp": "https://nowhere.example/metadata"}, 404, "nowhere.example"),
    ({"role": "arn:aws:iam::999999999999:role/Root"}, 403, "999999999999"),
    ({"scenario": "no-such-fault"}, 400, "no-such-fault"),
    ({"in_response_to": "1 not an id"}, 400, "not an xs:ID"),
    ({"now": "yesterday"}, 400, "now:"),
    ({"relay_state": "x" * 1025}, 400, "relay_state:"),
    ({"user": None}, 400, "user:"),
    ({"sp": ["urn:amazon:webservices"]}, 400, "sp:"),
]


@pytest.mark.parametrize(("fields", "status", "words"), MINT_REFUSALS)
def test_mint_refusals_are_json(demo, api, fields, status, words):
    body = {"user": "alice", "sp": aws.AUDIENCE, "role": ADMIN_ROLE, **fields}
    assert_refusal(api.post("/api/v1/sign-ons", body), status, words)


def test_mint_without_a_user_names_the_missing_fields(demo, api):
    body = assert_refusal(api.post("/api/v1/sign-ons", {}), 400)
    assert set(body["fields"]) == {"user", "sp"}


# --- checks ------------------------------------------------------------------------------


def test_a_minted_response_checks_clean_against_the_metadata(demo, api, idp_url):
    minted = mint(api, role=ADMIN_ROLE)
    metadata = api.get("/saml/metadata/").text
    answer = api.post(
        "/api/v1/checks", {"saml_response": minted["saml_response"], "metadata": metadata}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"verdict": "accept", "findings": [], "note": None}


def test_a_check_judges_time_as_of_now(demo, api):
    minted = mint(api, role=ADMIN_ROLE)
    later = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)).isoformat()
    answer = api.post("/api/v1/checks", {"saml_response": minted["saml_response"], "now": later})
    body = answer.json()
    assert body["verdict"] == "reject"
    assert "R12" in {f["rule"] for f in body["findings"] if f["severity"] == "error"}
    assert body["note"] == f"Without metadata {aws.WITHOUT_METADATA}"


def test_a_check_of_something_else_rejects_it_with_r13(demo, api):
    body = api.post("/api/v1/checks", {"saml_response": "not base64 at all!"}).json()
    assert body["verdict"] == "reject"
    assert [f["rule"] for f in body["findings"]] == ["R13"]


def test_a_check_with_unusable_metadata_is_refused(demo, api):
    minted = mint(api, role=ADMIN_ROLE)
    answer = api.post(
        "/api/v1/checks",
        {"saml_response": minted["saml_response"], "metadata": "<EntityDescriptor/>"},
    )
    assert 400 <= answer.status_code < 500
    assert_refusal(answer, answer.status_code)


CHECK_BODIES = [
    # (the raw body, its content type, status, words)
    (b"{not json", "application/json", 400, "JSON parse error"),
    (b"[]", "application/json", 400, "Expected a dictionary"),
    (b"saml_response=eA==", "application/x-www-form-urlencoded", 415, "Unsupported media type"),
    (
        json.dumps({"saml_response": "x" * (views.s.MAX_CHECKED_RESPONSE + 1)}).encode(),
        "application/json",
        400,
        "saml_response: Ensure this field has no more than",
    ),
    (b"{}", "application/json", 400, "saml_response: This field is required"),
]


@pytest.mark.parametrize(("raw", "content_type", "status", "words"), CHECK_BODIES)
def test_malformed_bodies_are_json_refusals(signing_key, api, raw, content_type, status, words):
    answer = api.post("/api/v1/checks", data=raw, headers={"Content-Type": content_type})
    assert_refusal(answer, status, words)


def test_a_body_beyond_the_upload_limit_is_refused_unread(signing_key, api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    raw = json.dumps({"saml_response": "x" * 2000}).encode()
    answer = api.post("/api/v1/checks", data=raw, headers={"Content-Type": "application/json"})
    assert_refusal(answer, 413, "larger than 1000 bytes")


# --- scenarios ---------------------------------------------------------------------------


def test_the_scenario_catalogue(signing_key, api):
    answer = api.get("/api/v1/scenarios")
    assert answer.status_code == 200, answer.text
    listed = answer.json()
    assert [entry["name"] for entry in listed] == list(scenarios.CATALOGUE)
    for entry in listed:
        scenario = scenarios.CATALOGUE[entry["name"]]
        for field in ("breaks", "aws_rule", "aws_error", "sp_rule", "parameter", "default"):
            assert entry[field] == getattr(scenario, field), (entry["name"], field)
        assert entry["refused_by"] == list(scenario.refused_by)


# --- reset -------------------------------------------------------------------------------


def test_reset_without_a_loaded_fixture_is_409_with_a_hint(signing_key, api):
    body = assert_refusal(api.post("/api/v1/reset"), 409)
    assert "load_fixtures" in body["hint"]


def test_reset_restores_the_loaded_fixture(signing_key, api):
    from idp import fixtures
    from users.models import User

    fixtures.load_file(DEMO_FIXTURE)
    User.objects.filter(username="alice").delete()
    User.objects.create_user("stray")
    answer = api.post("/api/v1/reset")
    assert answer.status_code == 200, answer.text
    summary = answer.json()
    assert summary["source"].endswith("demo.yaml")
    assert summary["users"]["created"] == 1 and summary["users"]["deleted"] == 1
    assert User.objects.filter(username="alice").exists()
    assert not User.objects.filter(username="stray").exists()


# --- signing keys ------------------------------------------------------------------------


def test_the_key_rollover_over_the_api(signing_key, api):
    listed = api.get("/api/v1/signing-keys").json()
    assert [(k["fingerprint"], k["state"], k["signs"]) for k in listed] == [
        (signing_key.fingerprint, "active", True)
    ]

    staged = api.post("/api/v1/signing-keys", {"days": 30})
    assert staged.status_code == 201, staged.text
    new = staged.json()["key"]
    assert (new["state"], new["signs"], new["published"]) == ("next", False, True)
    assert 28 <= new["days_left"] <= 30
    assert "rotate_key activate" in staged.json()["next_step"]
    assert_refusal(api.post("/api/v1/signing-keys"), 409, "already staged")

    activated = api.post(f"/api/v1/signing-keys/{new['fingerprint'][:16]}/activate")
    assert activated.status_code == 200, activated.text
    assert (activated.json()["key"]["state"], activated.json()["key"]["signs"]) == ("active", True)

    signer = new["fingerprint"]
    assert_refusal(api.post(f"/api/v1/signing-keys/{signer}/retire"), 409, "signs")
    retired = api.post(f"/api/v1/signing-keys/{signing_key.fingerprint.upper()}/retire")
    assert retired.status_code == 200, retired.text
    assert retired.json()["key"]["state"] == "retired"
    assert retired.json()["key"]["published"] is False
    states = {k["fingerprint"]: k["state"] for k in api.get("/api/v1/signing-keys").json()}
    assert states == {signing_key.fingerprint: "retired", signer: "active"}


def test_a_worker_that_stays_behind_answers_409_naming_it(signing_key, api, monkeypatch):
    slept = []
    monkeypatch.setattr(KeyStep, "sleep", staticmethod(slept.append))
    staged = api.post("/api/v1/signing-keys").json()["key"]
    beat(4242, key_sets={})  # live, and has not loaded the staged key
    answer = api.post(f"/api/v1/signing-keys/{staged['fingerprint']}/activate")
    assert_refusal(answer, 409, "web-1 pid 4242 has no saml keys loaded")
    assert answer.headers["Retry-After"] == "1"
    assert 0 < sum(slept) <= keys.HTTP_PATIENCE_SECONDS
    assert SigningKey.objects.get(fingerprint=staged["fingerprint"]).state == "next"
    beat(4242)  # caught up
    answer = api.post(f"/api/v1/signing-keys/{staged['fingerprint']}/activate")
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        ("/api/v1/signing-keys/00ff/activate", None, 404, "00ff"),
        ("/api/v1/signing-keys/not-hex/retire", None, 404, "not-hex"),
        ("/api/v1/signing-keys", {"days": 0}, 400, "days:"),
        ("/api/v1/signing-keys", {"days": "forever"}, 400, "days:"),
    ],
)
def test_key_step_refusals(signing_key, api, path, body, status, words):
    SigningKey.objects.filter(fingerprint__startswith="00ff").delete()
    assert_refusal(api.post(path, body), status, words)
    assert SigningKey.objects.count() == 1


def test_activate_without_a_staged_key_is_409(signing_key, api):
    answer = api.post(f"/api/v1/signing-keys/{signing_key.fingerprint}/activate")
    assert_refusal(answer, 409, "no key in state next")


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/", "/api/v2/users", "/api/v1/nope", "/api/v1/reset/x"])
def test_unknown_api_paths_answer_json_404(signing_key, api, path):
    body = assert_refusal(api.get(path), 404, path)
    assert "/api/docs" in body["hint"]


def test_unknown_paths_outside_the_api_stay_html(signing_key, api):
    page = api.get("/nope/")
    assert page.status_code == 404 and page.headers["Content-Type"].startswith("text/html")


def test_a_wrong_method_is_json_405(signing_key, api):
    assert_refusal(api.get("/api/v1/sign-ons"), 405, '"GET" not allowed')


def test_a_failure_under_the_api_answers_json_500(signing_key, api, monkeypatch):
    def broken():
        raise RuntimeError("the database went away")

    monkeypatch.setattr(views.keys, "is_signer_expression", broken)  # what the list calls
    body = assert_refusal(api.get("/api/v1/signing-keys"), 500)
    assert "the database went away" not in json.dumps(body)
