"""ID-token claims from the claim-rule engine: JWT rules, their shapes, scopes and checks."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from idp import cache, claims
from idp.models import ClaimRule, ServiceProvider
from idp.oidc import claim_shapes
from idp.oidc.models import Client
from idp.saml import aws
from idp.saml.errors import SamlError
from users.models import User

TAGS = r"https://aws\.amazon\.com/tags"


@pytest.fixture
def client(demo):
    return Client.objects.create(
        name="App", client_id="app", client_type="public", redirect_uris="http://127.0.0.1/cb"
    )


@pytest.fixture
def other_client(demo):
    return Client.objects.create(
        name="Other", client_id="other", client_type="public", redirect_uris="http://127.0.0.1/cb"
    )


@pytest.fixture
def aws_sp(demo):
    return ServiceProvider.objects.get(entity_id=aws.AUDIENCE)


def alice() -> User:
    return User.objects.get(username="alice")


def jwt_rule(client=None, **fields) -> ClaimRule:
    made = ClaimRule(emits="jwt", oidc_client=client, **fields)
    made.full_clean()
    made.save()
    return made


def token_claims(client, user=None) -> dict:
    return claims.id_token_claims(user or alice(), client).claims


# --- the pure shapes ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("department", ("department",)),
        ("a.b.c", ("a", "b", "c")),
        (r"a\.b", ("a.b",)),
        (
            TAGS + ".principal_tags.Department",
            ("https://aws.amazon.com/tags", "principal_tags", "Department"),
        ),
        (r"x\y.z", (r"x\y", "z")),  # a backslash before anything but a dot is literal
        (r"end\\", (r"end\\",)),  # only a dot is escaped
        ("kubernetes.io", ("kubernetes", "io")),
        (r"kubernetes\.io", ("kubernetes.io",)),
    ],
)
def test_claim_names_nest_as_keycloak_writes_them(name, path):
    assert claim_shapes.claim_path(name) == path


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("", "Name the claim"),
        (".a", "empty part at the start"),
        ("a..b", "empty part at position 3"),
        ("a.", "ends with a dot"),
        ("sub", "registered claim"),
        ("aud.x", "registered claim"),
        ("nonce", "registered claim"),
        ("at_hash", "registered claim"),
    ],
)
def test_claim_name_problems(name, words):
    assert words in claim_shapes.name_problem(name)


def test_a_reserved_name_escaped_inside_another_name_is_fine():
    assert claim_shapes.name_problem(r"sub\.team") == ""
    assert claim_shapes.name_problem("team.sub") == ""


@pytest.mark.parametrize(
    ("claim_type", "values", "value", "note"),
    [
        ("string", ("a",), "a", ""),
        ("string", ("a", "b", "c"), "a", "kept 'a', dropped 'b', 'c'"),
        ("list", ("a",), ["a"], ""),
        ("list", ("a", "b"), ["a", "b"], ""),
        ("boolean", ("true",), True, ""),
        ("boolean", ("FALSE",), False, ""),
        ("boolean", ("false", "true"), False, "kept 'false'"),
    ],
)
def test_each_claim_type_shapes_the_values(claim_type, values, value, note):
    shaped = claim_shapes.shape(claim_type, values)
    assert shaped.value == value
    assert (note in shaped.note) and bool(shaped.note) == bool(note)


@pytest.mark.parametrize(
    ("a", "b", "words"),
    [
        ((("a",), "string"), (("a", "b"), "string"), "a value and also the object"),
        ((("a", "b", "c"), "list"), (("a",), "list"), "a value and also the object"),
        ((("a",), "string"), (("a",), "list"), "a string in one rule and a list"),
        ((("a",), "list"), (("a",), "list"), ""),
        ((("a", "b"), "list"), (("a", "c"), "string"), ""),
        ((("a.b",), "list"), (("a", "b"), "list"), ""),  # an escaped dot is not nesting
    ],
)
def test_conflicts(a, b, words):
    assert (words in claim_shapes.conflict(a, b)) and bool(words) == bool(
        claim_shapes.conflict(a, b)
    )
    assert bool(claim_shapes.conflict(b, a)) == bool(words)


def test_a_boolean_claim_refuses_other_text():
    with pytest.raises(claim_shapes.ClaimShapeError, match="true or false, not 'yes'"):
        claim_shapes.shape("boolean", ("yes",))


# --- the engine -------------------------------------------------------------------


def test_aws_session_tags_come_out_as_the_object_aws_reads(client):
    base = TAGS + ".principal_tags."
    jwt_rule(
        client,
        order=1,
        source="attribute",
        source_attribute="attr.department",
        attribute_name=base + "Department",
        claim_type="list",
    )
    jwt_rule(
        client,
        order=2,
        source="attribute",
        source_attribute="attr.costCenter",
        attribute_name=base + "CostCenter",
        claim_type="list",
    )
    jwt_rule(
        client,
        order=3,
        source="literal",
        value="Department",
        attribute_name=TAGS + ".transitive_tag_keys",
        claim_type="list",
    )
    assert token_claims(client) == {
        "https://aws.amazon.com/tags": {
            "principal_tags": {"Department": ["Engineering"], "CostCenter": ["4711"]},
            "transitive_tag_keys": ["Department"],
        }
    }


@pytest.mark.parametrize(
    ("claim_type", "expected", "noted"),
    [
        ("string", "AWS-111122223333-Admin", True),
        (
            "list",
            [
                "AWS-111122223333-Admin",
                "AWS-111122223333-ReadOnly",
                "AWS-444455556666-Developer",
                "Engineering",
            ],
            False,
        ),
    ],
)
def test_string_keeps_the_first_value_and_the_trace_says_so(client, claim_type, expected, noted):
    jwt_rule(
        client,
        source="attribute",
        source_attribute="groups",
        attribute_name="teams",
        claim_type=claim_type,
    )
    result = claims.id_token_claims(alice(), client)
    assert result.claims == {"teams": expected}
    (outcome,) = result.trace
    assert bool(outcome.note) == noted
    if noted:
        assert "make it a list claim" in outcome.note


def test_values_accumulate_across_rules_deduplicated(client):
    jwt_rule(client, order=1, source="literal", value="b", attribute_name="x", claim_type="list")
    jwt_rule(client, order=2, source="literal", value="a", attribute_name="x", claim_type="list")
    jwt_rule(client, order=3, source="literal", value="b", attribute_name="x", claim_type="list")
    assert token_claims(client) == {"x": ["b", "a"]}


def test_boolean_claims_from_conditions(client):
    jwt_rule(
        client,
        order=1,
        condition="member_of",
        condition_subject="Engineering",
        source="literal",
        value="true",
        attribute_name="engineer",
        claim_type="boolean",
    )
    jwt_rule(
        client,
        order=2,
        condition="member_of",
        condition_subject="Engineering",
        negate=True,
        source="literal",
        value="false",
        attribute_name="engineer",
        claim_type="boolean",
    )
    assert token_claims(client) == {"engineer": True}
    assert token_claims(client, User.objects.get(username="bob")) == {"engineer": False}


def test_conditions_templates_group_regexes_and_provider_work_as_for_saml(client):
    jwt_rule(
        client,
        order=1,
        source="template",
        value="{first_name} at {provider}",
        attribute_name="greeting",
    )
    jwt_rule(
        client,
        order=2,
        source="group_regex",
        group_pattern=r"^AWS-(?P<account>\d{12})-(?P<role>\w+)$",
        value="{account}:{role}",
        attribute_name="roles",
        claim_type="list",
    )
    jwt_rule(
        client,
        order=3,
        condition="attribute_matches",
        condition_subject="attr.department",
        condition_pattern="^Fin",
        source="literal",
        value="yes",
        attribute_name="finance",
    )
    assert token_claims(client) == {
        "greeting": "Alice at app",
        "roles": ["111122223333:Admin", "111122223333:ReadOnly", "444455556666:Developer"],
    }
    trace = claims.id_token_claims(alice(), client).trace
    assert [outcome.applied for outcome in trace] == [True, True, False]


def test_a_rule_that_gives_no_value_sends_no_claim(client):
    jwt_rule(client, source="attribute", source_attribute="attr.nothing", attribute_name="n")
    assert token_claims(client) == {}


def test_scopes_global_jwt_rules_reach_every_client_and_client_rules_only_theirs(
    client, other_client
):
    jwt_rule(None, order=1, source="literal", value="g", attribute_name="everywhere")
    jwt_rule(client, order=2, source="literal", value="c", attribute_name="mine")
    assert token_claims(client) == {"everywhere": "g", "mine": "c"}
    assert token_claims(other_client) == {"everywhere": "g"}


def test_global_jwt_rules_never_reach_sps_and_saml_rules_never_clients(client, aws_sp):
    before = claims.release(alice(), aws_sp).attributes
    jwt_rule(None, source="literal", value="x", attribute_name=r"https://example\.com/jwt")
    saml = ClaimRule(source="literal", value="y", attribute_name="https://example.com/saml")
    saml.full_clean()
    saml.save()
    release = claims.release(alice(), aws_sp)
    assert {a.name for a in release.attributes} == {a.name for a in before} | {
        "https://example.com/saml"
    }
    assert token_claims(client) == {"https://example.com/jwt": "x"}


def test_existing_rules_stay_saml_rules(aws_sp):
    assert set(ClaimRule.objects.values_list("emits", flat=True)) == {"saml"}


def test_a_warm_evaluation_runs_no_sql(client):
    jwt_rule(client, source="literal", value="v", attribute_name="x")
    user = alice()
    token_claims(client, user)
    with CaptureQueriesContext(connection) as queries:
        token_claims(client, user)
    assert [q["sql"] for q in queries] == []
    cache.forget()
    with CaptureQueriesContext(connection) as queries:
        token_claims(client, user)
    assert len(queries) <= 6  # the rules, then the directory entry, as for SAML


# --- refusals when saving, else 409s at sign-on --------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"attribute_name": "sub"}, "attribute_name", "registered claim"),
        ({"attribute_name": "exp"}, "attribute_name", "registered claim"),
        ({"attribute_name": "a..b"}, "attribute_name", "empty part"),
        ({"claim_type": "boolean", "value": "yes"}, "value", "true or false"),
        ({"claim_type": "number"}, "claim_type", "not a valid choice"),
    ],
)
def test_jwt_rules_are_checked_when_saved(client, fields, field, words):
    made = ClaimRule(
        emits="jwt",
        oidc_client=client,
        source="literal",
        **{"value": "v", "attribute_name": "x", **fields},
    )
    with pytest.raises(ValidationError) as error:
        made.full_clean()
    assert words in " ".join(error.value.message_dict[field])


def test_aws_attribute_checks_do_not_apply_to_jwt_rules(client):
    # As a SAML attribute this name breaks R6 (a Role pair); as a claim it is only a name.
    jwt_rule(
        client, source="literal", value="anything", attribute_name=aws.ATTRIBUTE_PREFIX + "Role"
    )


def test_a_rule_may_not_cross_kinds(client, aws_sp):
    saml_for_client = ClaimRule(
        oidc_client=client, source="literal", value="v", attribute_name="https://e.com/a"
    )
    with pytest.raises(ValidationError) as error:
        saml_for_client.full_clean()
    assert "SAML rule cannot apply to an OIDC client" in str(error.value)
    jwt_for_sp = ClaimRule(
        emits="jwt", service_provider=aws_sp, source="literal", value="v", attribute_name="x"
    )
    with pytest.raises(ValidationError) as error:
        jwt_for_sp.full_clean()
    assert "not service providers" in str(error.value)


@pytest.mark.parametrize(
    "fields",
    [
        {"emits": "saml", "oidc_client": True},
        {"emits": "jwt", "service_provider": True},
        {"emits": "jwt", "service_provider": True, "oidc_client": True},
    ],
)
def test_the_database_refuses_crossed_kinds_too(client, aws_sp, fields):
    targets = {"oidc_client": client, "service_provider": aws_sp}
    row = ClaimRule(
        source="literal",
        value="v",
        attribute_name="x",
        **{k: targets[k] if v is True else v for k, v in fields.items()},
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        row.save()


@pytest.mark.parametrize(
    ("first", "second", "words"),
    [
        ({"attribute_name": "a"}, {"attribute_name": "a.b"}, "a value and also the object"),
        ({"attribute_name": "a.b.c"}, {"attribute_name": "a"}, "a value and also the object"),
        ({"attribute_name": "a"}, {"attribute_name": "a", "claim_type": "list"}, "a string"),
    ],
)
def test_conflicts_are_refused_when_saving(client, first, second, words):
    jwt_rule(client, source="literal", value="v", **first)
    clash = ClaimRule(emits="jwt", oidc_client=client, source="literal", value="v", **second)
    with pytest.raises(ValidationError) as error:
        clash.full_clean()
    assert words in " ".join(error.value.message_dict["attribute_name"])


def test_conflicts_count_only_rules_that_reach_the_same_client(client, other_client):
    jwt_rule(client, source="literal", value="v", attribute_name="a")
    jwt_rule(other_client, source="literal", value="v", attribute_name="a.b")  # fine
    global_clash = ClaimRule(emits="jwt", source="literal", value="v", attribute_name="a.c")
    with pytest.raises(ValidationError):
        global_clash.full_clean()  # a global rule reaches both clients
    disabled = ClaimRule(
        emits="jwt", enabled=False, source="literal", value="v", attribute_name="a.c"
    )
    disabled.full_clean()  # checked when it is enabled


@pytest.mark.parametrize(
    ("rows", "words"),
    [
        ([("a", "string"), ("a.b", "string")], "a value and also the object"),
        ([("a", "string"), ("a", "list")], "a string in one rule and a list"),
        ([("sub", "string")], "registered claim"),
    ],
)
def test_rules_saved_around_the_checks_are_a_409_at_sign_on(client, rows, words):
    # bulk_create skips clean(), as a raw write or two concurrent saves would.
    ClaimRule.objects.bulk_create(
        ClaimRule(
            emits="jwt",
            oidc_client=client,
            order=i,
            source="literal",
            value="v",
            attribute_name=name,
            claim_type=claim_type,
        )
        for i, (name, claim_type) in enumerate(rows)
    )
    cache.forget()
    with pytest.raises(SamlError) as error:
        token_claims(client)
    assert error.value.status == 409
    assert words in error.value.detail


def test_a_boolean_template_that_renders_other_text_is_a_409(client):
    jwt_rule(
        client, source="template", value="{first_name}", attribute_name="flag", claim_type="boolean"
    )
    with pytest.raises(SamlError) as error:
        token_claims(client)
    assert error.value.status == 409
    assert "true or false, not 'Alice'" in error.value.detail
