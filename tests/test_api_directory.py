"""The directory API in process: users, groups, service providers, claim rules.

Every request carries a real bearer token (idp.api.models.ApiToken); the same endpoints
over real HTTP are in test_api_directory_http.py.
"""

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from idp import cache, claims, sso
from idp.api.models import ApiToken
from idp.models import ClaimRule, ServiceProvider
from idp.saml import constants as c
from users.models import Group, User

SP_ENTITY = "https://app.example/saml"
SP_METADATA = f"""<md:EntityDescriptor xmlns:md="{c.MD}" entityID="{SP_ENTITY}">
  <md:SPSSODescriptor protocolSupportEnumeration="{c.SAMLP}" WantAssertionsSigned="true">
    <md:NameIDFormat>{c.NAMEID_EMAIL}</md:NameIDFormat>
    <md:AssertionConsumerService Binding="{c.BINDING_POST}" Location="https://app.example/acs"
        index="0" isDefault="true"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>"""

ALL_DIRECTORY_PERMISSIONS = [
    f"{app}.{action}_{model}"
    for app, model in [
        ("users", "user"),
        ("users", "group"),
        ("idp", "serviceprovider"),
        ("idp", "claimrule"),
    ]
    for action in ("view", "add", "change", "delete")
]


def client_for(user: User) -> APIClient:
    _, text = ApiToken.issue(user, name="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {text}")
    return client


def staff(username: str, *permissions: str, superuser: bool = False) -> User:
    user = User.objects.create_user(username, is_staff=True, is_superuser=superuser)
    for name in permissions:
        app, codename = name.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app, codename=codename)
        )
    return User.objects.get(pk=user.pk)  # fresh: has_perm memoises


@pytest.fixture
def api(demo) -> APIClient:
    """A staff user with every directory permission, but not a superuser."""
    return client_for(staff("operator", *ALL_DIRECTORY_PERMISSIONS))


@pytest.fixture
def root(demo) -> APIClient:
    return client_for(User.objects.get(username="admin"))


def refusal(response, status: int) -> dict:
    """The house error shape, as JSON, with the expected status."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert {"title", "message", "hint", "status"} <= set(body), body
    assert body["status"] == status
    return body


# ---------------------------------------------------------------------------- users


def test_user_round_trip_with_multi_valued_attributes(api):
    created = api.post(
        "/api/v1/users",
        {
            "username": "dana",
            "email": "dana@example.com",
            "password": "s3cret pass",
            "attributes": {"mail": ["dana@example.com", "d@example.com"], "department": ["Ops"]},
            "groups": ["Engineering", "AWS-111122223333-ReadOnly"],
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert "password" not in body and "pbkdf2" not in created.content.decode()
    assert body["attributes"] == {
        "department": ["Ops"],
        "mail": ["dana@example.com", "d@example.com"],
    }
    assert body["groups"] == ["AWS-111122223333-ReadOnly", "Engineering"]
    dana = User.objects.get(username="dana")
    assert dana.check_password("s3cret pass") and dana.password.startswith("md5$")
    assert dana.attribute_values()["mail"] == ["dana@example.com", "d@example.com"]
    assert api.get("/api/v1/users/dana").json() == body

    patched = api.patch(
        "/api/v1/users/dana", {"attributes": {"mail": ["new@example.com"]}}, format="json"
    )
    assert patched.json()["attributes"] == {"mail": ["new@example.com"]}
    assert patched.json()["groups"] == body["groups"]  # PATCH leaves what it omits

    replaced = api.put("/api/v1/users/dana", {"username": "dana"}, format="json")
    assert replaced.status_code == 200, replaced.content
    assert (replaced.json()["attributes"], replaced.json()["groups"]) == ({}, [])
    assert replaced.json()["email"] == ""  # PUT replaces: omitted fields take their defaults
    assert User.objects.get(username="dana").check_password("s3cret pass")  # never read back

    assert api.delete("/api/v1/users/dana").status_code == 204
    assert not User.objects.filter(username="dana").exists()


def test_user_without_password_cannot_sign_in_with_one(api):
    assert api.post("/api/v1/users", {"username": "erin"}, format="json").status_code == 201
    assert not User.objects.get(username="erin").has_usable_password()


def test_user_list_is_paginated_and_filters_by_effective_group(api):
    Group.objects.get(name="Engineering").member_of.add(Group.objects.create(name="Everyone"))
    listed = api.get("/api/v1/users", {"limit": 2}).json()
    assert listed["count"] == 5 and len(listed["results"]) == 2 and listed["next"]
    assert [u["username"] for u in listed["results"]] == ["admin", "alice"]
    everyone = api.get("/api/v1/users", {"group": "Everyone"}).json()
    assert [u["username"] for u in everyone["results"]] == ["alice"]  # through Engineering
    assert "Everyone" in everyone["results"][0]["effective_groups"]
    assert "Everyone" not in everyone["results"][0]["groups"]
    for name in ("Nobody", "Eng\x00ineering"):
        body = refusal(api.get("/api/v1/users", {"group": name}), 400)
        assert "is named" in body["fields"]["group"]


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        ({"groups": ["Engineering", "No Such Group"]}, "groups", "No Such Group"),
        ({"attributes": {"1bad": ["x"]}}, "attributes", "start with a letter"),
        ({"attributes": {"dept": ["line\nbreak"]}}, "attributes", "control characters"),
        ({"attributes": {"dept": ["a", "a"]}}, "attributes", "appears twice"),
        ({"attributes": {"dept": "Ops"}}, "attributes", "list"),
        ({"attributes": ["dept"]}, "attributes", "dictionary"),
        ({"attributes": {"dept": ["x" * 1025]}}, "attributes", "1024"),
        ({"email": "not-an-address"}, "email", "valid email"),
        ({"username": "has space"}, "username", "letters"),
        ({"username": "alice"}, "username", "already exists"),
    ],
)
def test_user_refusals_name_the_field(api, payload, field, words):
    body = refusal(api.post("/api/v1/users", {"username": "frank", **payload}, format="json"), 400)
    assert words in str(body["fields"][field]), body
    assert not User.objects.filter(username="frank").exists()


@pytest.mark.parametrize(
    ("as_superuser", "method", "url", "payload", "status"),
    [
        # A staff user who may add and change users still cannot grant admin rights...
        (False, "post", "/api/v1/users", {"username": "mallory", "is_staff": True}, 403),
        (False, "post", "/api/v1/users", {"username": "m2", "is_superuser": True}, 403),
        (False, "patch", "/api/v1/users/carol", {"is_staff": True}, 403),
        # ...nor touch an account that has them (its password, say).
        (False, "patch", "/api/v1/users/admin", {"password": "mine now"}, 403),
        (False, "delete", "/api/v1/users/admin", None, 403),
        # Sending the flags as they are is not a change (a GET-then-PUT round trip).
        (False, "patch", "/api/v1/users/carol", {"is_staff": False, "first_name": "C"}, 200),
        (True, "patch", "/api/v1/users/carol", {"is_staff": True}, 200),
        (True, "post", "/api/v1/users", {"username": "ops2", "is_superuser": True}, 201),
    ],
)
def test_admin_rights_are_granted_only_by_a_superuser(
    api, root, as_superuser, method, url, payload, status
):
    client = root if as_superuser else api
    response = getattr(client, method)(url, payload, format="json")
    assert response.status_code == status, response.content
    if status == 403:
        assert "superuser" in refusal(response, 403)["message"]
        assert User.objects.get(username="admin").check_password("admin")
        assert not User.objects.filter(username__in=["mallory", "m2"]).exists()
        assert not User.objects.get(username="carol").is_staff


# ---------------------------------------------------------------------------- groups


def test_group_nesting_and_counts(api):
    made = api.post(
        "/api/v1/groups",
        {"name": "All Staff", "description": "everyone"},
        format="json",
    )
    assert made.status_code == 201, made.content
    child = api.post(
        "/api/v1/groups", {"name": "R&D/Platform", "member_of": ["All Staff"]}, format="json"
    )
    assert child.status_code == 201, child.content
    api.patch("/api/v1/groups/Engineering", {"member_of": ["R&D/Platform"]}, format="json")
    top = api.get("/api/v1/groups/All Staff").json()
    assert top == {
        "name": "All Staff",
        "description": "everyone",
        "member_of": [],
        "subgroups": ["R&D/Platform"],
        "direct_member_count": 0,
        "effective_member_count": 1,  # alice, through Engineering and R&D/Platform
    }
    # A name with '/' is one key, sent as it is or percent-encoded.
    assert api.get("/api/v1/groups/R%26D%2FPlatform").json()["subgroups"] == ["Engineering"]
    assert api.get("/api/v1/groups/R&D/Platform").json()["member_of"] == ["All Staff"]
    alice = api.get("/api/v1/users/alice").json()
    assert {"All Staff", "R&D/Platform", "Engineering"} <= set(alice["effective_groups"])
    assert "All Staff" not in alice["groups"]


@pytest.mark.parametrize(
    ("group", "parents"),
    [
        ("Top", ["Bottom"]),  # Bottom is inside Middle, inside Top
        ("Middle", ["Bottom"]),
        ("Top", ["Top"]),
    ],
)
def test_group_cycles_are_refused_in_the_admins_words(api, group, parents):
    top, middle, bottom = (Group.objects.create(name=n) for n in ("Top", "Middle", "Bottom"))
    middle.member_of.add(top)
    bottom.member_of.add(middle)
    body = refusal(api.patch(f"/api/v1/groups/{group}", {"member_of": parents}, format="json"), 400)
    assert "would create a cycle" in body["fields"]["member_of"], body
    assert "Remove one of the two memberships" in body["message"]
    assert list(top.member_of.all()) == []


def test_group_refusals(api):
    body = refusal(api.post("/api/v1/groups", {"name": "Engineering"}, format="json"), 400)
    assert "already exists" in body["fields"]["name"]
    body = refusal(
        api.post("/api/v1/groups", {"name": "New", "member_of": ["Ghost"]}, format="json"), 400
    )
    assert "Ghost" in body["fields"]["member_of"]
    body = refusal(api.post("/api/v1/groups", {"name": "tab\there"}, format="json"), 400)
    assert "control characters" in body["fields"]["name"]


# ---------------------------------------------------------------------------- SPs


def test_service_provider_from_metadata_xml_then_settings(api):
    created = api.post(
        "/api/v1/service-providers",
        {"metadata_xml": SP_METADATA, "name": "App", "check_policy": "warn"},
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["entity_id"], body["name"], body["check_policy"]) == (SP_ENTITY, "App", "warn")
    assert body["nameid_format"] == c.NAMEID_EMAIL
    assert body["endpoints"] == [
        {
            "location": "https://app.example/acs",
            "binding": c.BINDING_POST,
            "index": 0,
            "is_default": True,
        }
    ]
    assert "EntityDescriptor" in body["metadata_xml"]
    # The same metadata again updates the registered SP, as the admin's import does.
    again = api.post(
        "/api/v1/service-providers",
        {"metadata_xml": SP_METADATA.replace("/acs", "/acs-new")},
        format="json",
    )
    assert again.status_code == 200, again.content
    assert again.json()["endpoints"][0]["location"] == "https://app.example/acs-new"
    assert again.json()["name"] == "App"

    for url in (
        f"/api/v1/service-providers/{SP_ENTITY}",
        "/api/v1/service-providers/https%3A%2F%2Fapp.example%2Fsaml",
    ):
        assert api.get(url).json()["entity_id"] == SP_ENTITY
    patched = api.patch(
        f"/api/v1/service-providers/{SP_ENTITY}",
        {"assertion_lifetime": 120, "sign_response": False, "default_relay_state": "/home"},
        format="json",
    )
    assert patched.status_code == 200, patched.content
    sp = ServiceProvider.objects.get(entity_id=SP_ENTITY)
    assert (sp.assertion_lifetime, sp.sign_response, sp.default_relay_state) == (
        120,
        False,
        "/home",
    )
    listed = api.get("/api/v1/service-providers").json()["results"]
    assert {s["entity_id"] for s in listed} == {SP_ENTITY, "urn:amazon:webservices"}
    assert "metadata_xml" not in listed[0]
    assert api.delete(f"/api/v1/service-providers/{SP_ENTITY}").status_code == 204
    assert not ServiceProvider.objects.filter(entity_id=SP_ENTITY).exists()


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        ({"metadata_xml": "not xml at all"}, "metadata_xml", "not well-formed"),
        ({"metadata_xml": "<html/>"}, "metadata_xml", "not SAML metadata"),
        (
            {"metadata_xml": SP_METADATA.replace("https://app.example/acs", "javascript:x")},
            "metadata_xml",
            "not an http",
        ),
        ({}, "metadata_xml", "exactly one"),
        (
            {"metadata_xml": SP_METADATA, "metadata_url": "https://x.example/md"},
            "metadata_url",
            "exactly one",
        ),
        ({"metadata_url": "ftp://x.example/md"}, "metadata_url", "http or https"),
        ({"metadata_url": "http://127.0.0.1:9/md"}, "metadata_url", "could not be fetched"),
        (
            {"metadata_xml": SP_METADATA, "rule_set": "no-such-set"},
            "rule_set",
            "not a valid choice",
        ),
        ({"metadata_xml": SP_METADATA, "assertion_lifetime": 5}, "assertion_lifetime", "30"),
        (
            {"metadata_xml": SP_METADATA, "profile": "aws", "sign_assertion": False},
            "sign_assertion",
            "R11",
        ),
    ],
)
def test_service_provider_refusals(api, payload, field, words):
    body = refusal(api.post("/api/v1/service-providers", payload, format="json"), 400)
    assert words in str(body["fields"][field]), body
    assert not ServiceProvider.objects.filter(entity_id=SP_ENTITY).exists()  # rolled back


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        ({"assertion_lifetime": 99999}, "assertion_lifetime", "3600"),
        ({"profile": "aws", "sign_assertion": False}, "sign_assertion", "R11"),
        ({"encrypt_assertions": True}, "encrypt_assertions", "encryption certificate"),
        ({"request_certificate": "junk"}, "request_certificate", "Not a PEM certificate"),
        ({"iam_provider_name": "has space"}, "iam_provider_name", "R15"),
        ({"profile": "oidc"}, "profile", "not a valid choice"),
    ],
)
def test_service_provider_settings_refusals(api, payload, field, words):
    before = ServiceProvider.objects.get(entity_id="urn:amazon:webservices")
    body = refusal(
        api.patch("/api/v1/service-providers/urn:amazon:webservices", payload, format="json"),
        400,
    )
    assert words in str(body["fields"][field]), body
    after = ServiceProvider.objects.get(entity_id="urn:amazon:webservices")
    assert after.updated_at == before.updated_at


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"fault_scenario": "no-such-scenario"}, 400, "no-such-scenario"),
        ({"fault_scenario": "clock-skew:abc"}, 400, "clock-skew"),
        # The model's own rule: a blocking AWS SP would send nothing broken.
        ({"fault_scenario": "expired"}, 400, "warn"),
        ({"fault_scenario": "expired", "check_policy": "warn"}, 200, ""),
        ({"fault_scenario": "clock-skew:600", "check_policy": "warn"}, 200, ""),
    ],
)
def test_fault_profile_passes_through_to_the_model(api, change, status, words):
    url = "/api/v1/service-providers/urn:amazon:webservices"
    response = api.patch(url, change, format="json")
    sp = ServiceProvider.objects.get(entity_id="urn:amazon:webservices")
    if status == 400:
        assert words in refusal(response, 400)["fields"]["fault_scenario"]
        assert sp.fault_scenario == ""
    else:
        assert response.status_code == 200, response.content
        assert response.json()["fault_scenario"] == sp.fault_scenario == change["fault_scenario"]


def test_rule_set_is_applied(api):
    api.post("/api/v1/service-providers", {"metadata_xml": SP_METADATA}, format="json")
    applied = api.post(
        f"/api/v1/service-providers/{SP_ENTITY}/rule-set",
        {"rule_set": "aws-identity-center"},
        format="json",
    )
    assert applied.status_code == 200, applied.content
    sp = ServiceProvider.objects.get(entity_id=SP_ENTITY)
    assert applied.json()["rule_set"] == "aws-identity-center"
    assert [r["id"] for r in applied.json()["claim_rules"]] == list(
        sp.rules.order_by("order", "id").values_list("id", flat=True)
    )
    assert sp.profile == "identity_center" and sp.nameid_source == "email"
    body = refusal(
        api.post(
            f"/api/v1/service-providers/{SP_ENTITY}/rule-set", {"rule_set": "x"}, format="json"
        ),
        400,
    )
    assert "not a valid choice" in body["fields"]["rule_set"]


def test_rule_set_that_does_not_fit_is_refused_in_the_admins_words(api, key_pems):
    sp = ServiceProvider.objects.get(entity_id="urn:amazon:webservices")
    sp.encryption_certificate = key_pems[1].decode()
    sp.encrypt_assertions = True
    sp.save()
    rules_before = list(sp.rules.values_list("id", flat=True))
    body = refusal(
        api.post(
            "/api/v1/service-providers/urn:amazon:webservices/rule-set",
            {"rule_set": "aws-identity-center"},
            format="json",
        ),
        400,
    )
    assert body["title"] == "The rule set aws-identity-center does not fit this SP"
    assert "does not accept encrypted assertions" in body["message"]
    assert list(sp.rules.values_list("id", flat=True)) == rules_before
    # The same refusal when the rule set comes with the metadata, named as that field.
    body = refusal(
        api.post(
            "/api/v1/service-providers",
            {
                "metadata_xml": SP_METADATA.replace(SP_ENTITY, sp.entity_id),
                "rule_set": "aws-identity-center",
            },
            format="json",
        ),
        400,
    )
    assert "does not accept encrypted assertions" in body["fields"]["rule_set"]
    assert list(sp.rules.values_list("id", flat=True)) == rules_before
    assert [e.location for e in sp.endpoints.all()] == ["https://signin.aws.amazon.com/saml"]


# ---------------------------------------------------------------------------- claim rules


def test_claim_rules_of_a_service_provider(api):
    url = "/api/v1/service-providers/urn:amazon:webservices/claim-rules"
    listed = api.get(url).json()
    assert [r["friendly_name"] for r in listed][:2] == ["Role", "RoleSessionName"]
    assert [r["order"] for r in listed] == sorted(r["order"] for r in listed)
    created = api.post(
        url,
        {
            "order": 50,
            "source": "attribute",
            "source_attribute": "attr.team",
            "attribute_name": "https://aws.amazon.com/SAML/Attributes/PrincipalTag:team",
            "friendly_name": "PrincipalTag:team",
            "service_provider": None,  # the URL decides; this is ignored
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    rule = created.json()
    assert rule["service_provider"] == "urn:amazon:webservices"
    assert api.get(url).json()[-1]["id"] == rule["id"]
    item = f"/api/v1/claim-rules/{rule['id']}"
    assert api.get(item).json() == rule
    assert api.patch(item, {"enabled": False}, format="json").json()["enabled"] is False
    assert api.delete(item).status_code == 204
    assert not ClaimRule.objects.filter(pk=rule["id"]).exists()


def test_global_claim_rules(api):
    created = api.post(
        "/api/v1/claim-rules",
        {"source": "literal", "value": "fedmock", "attribute_name": "urn:example:issuer"},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["service_provider"] is None
    listed = api.get("/api/v1/claim-rules", {"global": "true"}).json()["results"]
    assert [r["id"] for r in listed] == [created.json()["id"]]
    by_sp = api.get("/api/v1/claim-rules", {"service_provider": "urn:amazon:webservices"})
    assert by_sp.json()["count"] == 5
    moved = api.patch(
        f"/api/v1/claim-rules/{created.json()['id']}",
        {"service_provider": "urn:amazon:webservices"},
        format="json",
    )
    assert moved.json()["service_provider"] == "urn:amazon:webservices"


BROKEN_RULES = [
    (
        {"source": "group_regex", "value": "{role}", "group_pattern": "(?P<role>"},
        "group_pattern",
        "Not a valid regex",
    ),
    ({"source": "template", "value": "{nonsense}"}, "value", "neither a user field"),
    ({"source": "literal", "value": ""}, "value", "needs a value"),
    ({"source": "attribute", "source_attribute": "password"}, "source_attribute", "Use one of"),
    (
        {"source": "literal", "value": "x", "condition": "member_of"},
        "condition_subject",
        "Name the group",
    ),
    ({"source": "literal", "value": "x", "condition": "nope"}, "condition", "not a valid choice"),
    (
        {
            "source": "literal",
            "value": "x",
            "attribute_name": "https://aws.amazon.com/SAML/Attributes/PrincipalTag:" + "k" * 129,
        },
        "attribute_name",
        "R5",
    ),
    (
        {
            "source": "literal",
            "value": "99999",
            "attribute_name": "https://aws.amazon.com/SAML/Attributes/SessionDuration",
        },
        "value",
        "SessionDuration",
    ),
]


@pytest.mark.parametrize(("change", "field", "words"), BROKEN_RULES)
def test_broken_claim_rules_get_the_admins_message(api, change, field, words):
    rule = ClaimRule.objects.filter(service_provider__entity_id="urn:amazon:webservices").first()
    before = ClaimRule.objects.values().get(pk=rule.pk)
    body = refusal(api.patch(f"/api/v1/claim-rules/{rule.pk}", change, format="json"), 400)
    assert field in body["fields"] and words in str(body["fields"][field]), body
    assert ClaimRule.objects.values().get(pk=rule.pk) == before
    created = api.post(
        "/api/v1/service-providers/urn:amazon:webservices/claim-rules",
        {"attribute_name": "urn:example:x", **change},
        format="json",
    )
    assert field in refusal(created, 400)["fields"]


# ---------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("method", "url", "words"),
    [
        ("get", "/api/v1/users/nobody", "No user 'nobody'"),
        ("delete", "/api/v1/users/nobody", "No user"),
        ("get", "/api/v1/groups/No Such Group", "No directory group"),
        ("patch", "/api/v1/groups/No Such Group", "No directory group"),
        ("get", "/api/v1/service-providers/urn:nobody", "urn:nobody"),
        ("get", "/api/v1/service-providers/urn:nobody/claim-rules", "urn:nobody"),
        ("post", "/api/v1/service-providers/urn:nobody/claim-rules", "urn:nobody"),
        ("post", "/api/v1/service-providers/urn:nobody/rule-set", "urn:nobody"),
        ("get", "/api/v1/claim-rules/999999", "No claim rule"),
        ("get", "/api/v1/claim-rules?service_provider=urn:nobody", "urn:nobody"),
        # No key holds a control character (and PostgreSQL refuses NUL in a query).
        ("get", "/api/v1/users/a%00b", "No user"),
        ("get", "/api/v1/groups/a%00b", "No directory group"),
        ("get", "/api/v1/service-providers/urn:a%00b", "urn:a"),
        ("get", "/api/v1/claim-rules?service_provider=urn:a%00b", "urn:a"),
    ],
)
def test_unknown_names_are_json_404s(api, method, url, words):
    payload = None if method == "get" else {"rule_set": "aws-preset"}  # a GET's data is its query
    body = refusal(getattr(api, method)(url, payload, format="json"), 404)
    assert words in body["message"]


def _only(*permissions):
    return lambda: client_for(staff("limited", *permissions))


WRITES = [
    ("post", "/api/v1/users", {"username": "zed"}),
    ("patch", "/api/v1/users/carol", {"first_name": "X"}),
    ("put", "/api/v1/users/carol", {"username": "carol"}),
    ("delete", "/api/v1/users/carol", None),
    ("post", "/api/v1/groups", {"name": "Zed"}),
    ("patch", "/api/v1/groups/Finance", {"description": "x"}),
    ("delete", "/api/v1/groups/Finance", None),
    ("post", "/api/v1/service-providers", {"metadata_xml": SP_METADATA}),
    ("patch", "/api/v1/service-providers/urn:amazon:webservices", {"enabled": False}),
    ("delete", "/api/v1/service-providers/urn:amazon:webservices", None),
    ("post", "/api/v1/service-providers/urn:amazon:webservices/rule-set", {"rule_set": "aws-okta"}),
    (
        "post",
        "/api/v1/service-providers/urn:amazon:webservices/claim-rules",
        {"source": "literal", "value": "x", "attribute_name": "urn:x"},
    ),
    ("post", "/api/v1/claim-rules", {"source": "literal", "value": "x", "attribute_name": "urn:x"}),
]


@pytest.mark.parametrize(("method", "url", "payload"), WRITES)
@pytest.mark.parametrize(
    "permissions",
    [
        (),
        # Views of everything, but no add, change or delete.
        tuple(p for p in ALL_DIRECTORY_PERMISSIONS if ".view_" in p),
    ],
    ids=["none", "view-only"],
)
def test_staff_without_permission_gets_403_on_writes(demo, method, url, payload, permissions):
    client = client_for(staff("limited", *permissions))
    generation = _state()
    body = refusal(getattr(client, method)(url, payload, format="json"), 403)
    assert "permission" in body["message"]
    assert _state() == generation


def _state():
    return (
        sorted(User.objects.values_list("username", "first_name")),
        sorted(Group.objects.values_list("name", "description")),
        sorted(ServiceProvider.objects.values_list("entity_id", "enabled", "profile")),
        sorted(ClaimRule.objects.values_list("id", "attribute_name")),
    )


@pytest.mark.parametrize(
    ("permissions", "allowed"),
    [
        # The admin's apply_rule_set: change the SP, add and delete claim rules.
        (("idp.change_serviceprovider", "idp.add_claimrule", "idp.delete_claimrule"), True),
        (("idp.change_serviceprovider", "idp.add_claimrule"), False),
        (("idp.add_claimrule", "idp.delete_claimrule"), False),
    ],
)
def test_rule_set_needs_the_admins_permissions(demo, permissions, allowed):
    client = client_for(staff("limited", *permissions))
    response = client.post(
        "/api/v1/service-providers/urn:amazon:webservices/rule-set",
        {"rule_set": "aws-okta"},
        format="json",
    )
    assert response.status_code == (200 if allowed else 403), response.content


@pytest.mark.parametrize(
    ("permissions", "status"),
    [
        # Registering needs add; updating a registered SP needs change (the admin's import).
        (("idp.add_serviceprovider",), 201),
        (("idp.change_serviceprovider",), 403),
        (("idp.add_serviceprovider", "idp.add_claimrule"), 403),  # rule set: add + delete rules
    ],
)
def test_registering_needs_add_and_a_rule_set_its_rule_permissions(demo, permissions, status):
    client = client_for(staff("limited", *permissions))
    payload = {"metadata_xml": SP_METADATA}
    if "idp.add_claimrule" in permissions:
        payload["rule_set"] = "aws-identity-center"
    response = client.post("/api/v1/service-providers", payload, format="json")
    assert response.status_code == status, response.content
    assert ServiceProvider.objects.filter(entity_id=SP_ENTITY).exists() == (status == 201)


def test_updating_a_registered_sp_needs_change(demo):
    sp = ServiceProvider.objects.get(entity_id="urn:amazon:webservices")
    metadata = SP_METADATA.replace(SP_ENTITY, sp.entity_id)
    for permissions, status in [
        (("idp.add_serviceprovider",), 403),
        (("idp.change_serviceprovider",), 200),
    ]:
        User.objects.filter(username="limited").delete()
        client = client_for(staff("limited", *permissions))
        response = client.post(
            "/api/v1/service-providers", {"metadata_xml": metadata}, format="json"
        )
        assert response.status_code == status, response.content
    assert [e.location for e in sp.endpoints.all()] == ["https://app.example/acs"]


# ---------------------------------------------------------------------------- sign-ons see it


def test_changes_reach_the_next_sign_on_at_once(api):
    """The API writes through the ORM paths the cache listens to: no stale release."""
    sp = ServiceProvider.objects.get(entity_id="urn:amazon:webservices")
    carol = User.objects.get(username="carol")

    def release() -> dict[str, list[str]]:
        return {
            a.name.rsplit("/", 1)[-1]: list(a.values) for a in claims.release(carol, sp).attributes
        }

    assert "Role" not in release()  # warm the cache: carol has no groups
    api.patch(
        "/api/v1/users/carol",
        {"groups": ["AWS-111122223333-Admin"], "attributes": {"department": ["Ops", "QA"]}},
        format="json",
    )
    warm = release()
    assert warm["Role"] == [
        "arn:aws:iam::111122223333:role/Admin,arn:aws:iam::111122223333:saml-provider/fedmock"
    ]
    assert warm["PrincipalTag:department"] == ["Ops", "QA"]
    api.post("/api/v1/groups", {"name": "AWS-444455556666-Auditor"}, format="json")
    api.patch("/api/v1/groups/AWS-444455556666-Auditor", {"member_of": []}, format="json")
    api.patch(
        "/api/v1/groups/AWS-111122223333-Admin",
        {"member_of": ["AWS-444455556666-Auditor"]},
        format="json",
    )
    assert len(release()["Role"]) == 2  # nesting, seen through the cached group graph
    api.patch(
        "/api/v1/service-providers/urn:amazon:webservices",
        {"iam_provider_name": "other"},
        format="json",
    )
    sp = cache.service_provider("urn:amazon:webservices")
    assert sp.iam_provider_name == "other"
    assert all("saml-provider/other" in value for value in release()["Role"])
    preview = sso.preview(carol, sp)
    assert "PrincipalTag:department" in preview.xml and ">QA<" in preview.xml


@pytest.mark.parametrize(
    ("url", "grow"),
    [
        ("/api/v1/users", lambda i: _user_with_everything(f"bulk{i}")),
        ("/api/v1/service-providers", lambda i: _service_provider(f"urn:bulk:{i}")),
        (
            "/api/v1/claim-rules",
            lambda i: ClaimRule.objects.create(
                source="literal", value="x", attribute_name=f"urn:bulk:{i}"
            ),
        ),
    ],
)
def test_lists_take_a_fixed_number_of_queries(api, url, grow):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api.get(url).status_code == 200
        return len(captured)

    grow(0)
    few = queries()
    for i in range(1, 20):
        grow(i)
    assert queries() == few


def _user_with_everything(username: str) -> None:
    user = User.objects.create_user(username)
    user.attributes.create(name="a", value="1")
    user.attributes.create(name="a", value="2")
    user.directory_groups.set(Group.objects.all())


def _service_provider(entity_id: str) -> None:
    ServiceProvider.objects.create(entity_id=entity_id, name=entity_id).endpoints.create(
        location="https://sp.example/acs"
    )
