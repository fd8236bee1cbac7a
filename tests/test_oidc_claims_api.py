"""JWT claim rules through the claim-rule API (its new fields) and fixtures (check, apply,
dump, round trip)."""

import pytest
from rest_framework.test import APIClient

from idp import fixtures
from idp.api.models import ApiToken
from idp.models import ClaimRule
from idp.oidc.models import Client
from users.models import User

TAGS = r"https://aws\.amazon\.com/tags"


@pytest.fixture
def app(demo):
    client = Client.objects.create(
        name="App", client_id="app", client_type="public", redirect_uris="http://127.0.0.1/cb"
    )
    rule = ClaimRule(
        emits="jwt",
        oidc_client=client,
        source="attribute",
        source_attribute="attr.department",
        attribute_name=TAGS + ".principal_tags.Department",
        claim_type="list",
    )
    rule.full_clean()
    rule.save()
    return client


# --- the API ----------------------------------------------------------------------------


@pytest.fixture
def api(app) -> APIClient:
    user = User.objects.create_superuser("root", password="x")
    _, text = ApiToken.issue(user, name="test")
    made = APIClient()
    made.credentials(HTTP_AUTHORIZATION=f"Bearer {text}")
    return made


def test_the_api_creates_and_lists_a_clients_jwt_rules(api):
    body = {
        "emits": "jwt",
        "claim_type": "list",
        "oidc_client": "app",
        "source": "literal",
        "value": "Department",
        "attribute_name": TAGS + ".transitive_tag_keys",
    }
    created = api.post("/api/v1/claim-rules", body, format="json")
    assert created.status_code == 201, created.content
    assert {k: created.json()[k] for k in body} == body
    listed = api.get("/api/v1/claim-rules", {"oidc_client": "app"}).json()["results"]
    assert [rule["attribute_name"] for rule in listed] == [
        TAGS + ".principal_tags.Department",
        TAGS + ".transitive_tag_keys",
    ]
    assert api.get("/api/v1/claim-rules", {"global": "true"}).json()["results"] == [] or all(
        rule["oidc_client"] is None and rule["service_provider"] is None
        for rule in api.get("/api/v1/claim-rules", {"global": "true"}).json()["results"]
    )


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"oidc_client": "nobody"}, "oidc_client", "No OIDC client has the client_id 'nobody'"),
        ({"attribute_name": "exp"}, "attribute_name", "registered claim"),
        ({"attribute_name": TAGS}, "attribute_name", "a value and also the object"),
        ({"emits": "saml"}, "oidc_client", "SAML rule cannot apply to an OIDC client"),
        (
            {"oidc_client": None, "service_provider": "urn:amazon:webservices"},
            "service_provider",
            "not service providers",
        ),
        ({"claim_type": "boolean", "value": "maybe"}, "value", "true or false"),
    ],
)
def test_the_api_refuses_bad_jwt_rules_in_the_admins_words(api, change, field, words):
    body = {
        "emits": "jwt",
        "oidc_client": "app",
        "source": "literal",
        "value": "v",
        "attribute_name": "team",
        **change,
    }
    response = api.post("/api/v1/claim-rules", body, format="json")
    assert response.status_code == 400, response.content
    assert words in str(response.json())
    assert field in str(response.json())


def test_an_unknown_client_filter_is_a_404(api):
    response = api.get("/api/v1/claim-rules", {"oidc_client": "nobody"})
    assert response.status_code == 404
    assert "nobody" in response.json()["message"]


# --- fixtures -----------------------------------------------------------------------------

FIXTURE = {
    "oidc_clients": [
        {
            "client_id": "ci",
            "name": "CI",
            "client_type": "public",
            "redirect_uris": ["http://127.0.0.1/cb"],
        }
    ],
    "claim_rules": [
        {
            "order": 1,
            "emits": "jwt",
            "oidc_client": "ci",
            "claim_type": "list",
            "source": "attribute",
            "source_attribute": "attr.department",
            "attribute_name": TAGS + ".principal_tags.Department",
        },
        {
            "order": 2,
            "emits": "jwt",
            "claim_type": "boolean",
            "source": "literal",
            "value": "true",
            "attribute_name": "fedmock",
        },
    ],
}


def jwt_rules() -> list[tuple]:
    return sorted(
        ClaimRule.objects.filter(emits="jwt").values_list(
            "order", "attribute_name", "claim_type", "oidc_client__client_id"
        )
    )


def test_fixture_jwt_rules_apply_dump_and_round_trip(demo):
    fixtures.load(FIXTURE, source="test")
    assert jwt_rules() == [
        (1, TAGS + ".principal_tags.Department", "list", "ci"),
        (2, "fedmock", "boolean", None),
    ]
    dumped = [rule for rule in fixtures.dump()["claim_rules"] if rule.get("emits") == "jwt"]
    assert dumped == FIXTURE["claim_rules"]
    again = fixtures.load(FIXTURE, source="test")
    assert again.claim_rules == fixtures.Counts()  # nothing to change
    moved = {**FIXTURE, "claim_rules": [{**FIXTURE["claim_rules"][0], "oidc_client": None}]}
    moved["claim_rules"][0].pop("oidc_client")
    fixtures.load(moved, source="test", prune=True)
    assert jwt_rules() == [(1, TAGS + ".principal_tags.Department", "list", None)]


def test_dump_then_load_of_the_dump_changes_nothing(demo):
    fixtures.load(FIXTURE, source="test")
    before = jwt_rules()
    summary = fixtures.load(fixtures.dump(), source="dump")
    assert summary.claim_rules == fixtures.Counts()
    assert jwt_rules() == before


def rules_with(*rules) -> dict:
    return {**FIXTURE, "claim_rules": list(rules)}


JWT = {"emits": "jwt", "source": "literal", "value": "v"}


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (
            rules_with({**JWT, "attribute_name": "a"}, {**JWT, "attribute_name": "a.b"}),
            "claim_rules[1], attribute_name: a would be a value and also the object",
        ),
        (
            rules_with(
                {**JWT, "attribute_name": "a", "oidc_client": "ci"},
                {**JWT, "attribute_name": "a", "claim_type": "list"},
            ),
            "claim_rules[1], attribute_name: the claim a is a string in one rule and a list",
        ),
        (
            rules_with({**JWT, "attribute_name": "sub"}),
            "claim_rules[0], attribute_name: 'sub' is a registered claim",
        ),
        (
            rules_with(
                {"source": "literal", "value": "v", "attribute_name": "urn:x", "oidc_client": "ci"}
            ),
            "claim_rules[0], oidc_client: only a JWT rule applies to an OIDC client",
        ),
        (
            rules_with({**JWT, "attribute_name": "a", "oidc_client": 7}),
            "claim_rules[0], oidc_client: must be text",
        ),
        (
            rules_with({**JWT, "attribute_name": "a", "oidc_clients": "ci"}),
            "claim_rules[0], oidc_clients: unknown key",
        ),
        (
            {
                "service_providers": [
                    {"preset": "aws", "claim_rules": [{**JWT, "attribute_name": "a"}]}
                ]
            },
            "claim_rules[0], emits: a service provider's rules emit SAML attributes",
        ),
    ],
)
def test_fixture_errors_name_the_entry(demo, data, words):
    with pytest.raises(fixtures.FixtureError) as error:
        fixtures.check(data, source="f.yaml")
    assert words in error.value.detail


def test_a_rule_for_a_client_nobody_defines_fails_when_applied_and_changes_nothing(demo):
    data = {"claim_rules": [{**JWT, "attribute_name": "a", "oidc_client": "ghost"}]}
    before = ClaimRule.objects.count()
    with pytest.raises(fixtures.FixtureError) as error:
        fixtures.load(data, source="f.yaml")
    assert "claim_rules[0], oidc_client: no OIDC client has the client_id 'ghost'" in (
        error.value.detail
    )
    assert ClaimRule.objects.count() == before
