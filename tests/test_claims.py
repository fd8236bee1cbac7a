"""The claim rule engine, ready-made rule sets, the preview and the sign-on policy."""

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from idp import cache, claims, sso
from idp.models import AuditEvent, ClaimRule, ServiceProvider
from idp.presets import apply_rule_set
from idp.saml import aws
from idp.saml import constants as c
from users.models import Group, User

P = aws.ATTRIBUTE_PREFIX
ALICE_ROLE_ARNS = {
    "arn:aws:iam::111122223333:role/Admin",
    "arn:aws:iam::111122223333:role/ReadOnly",
    "arn:aws:iam::444455556666:role/Developer",
}


@pytest.fixture
def aws_sp(demo):
    return ServiceProvider.objects.get(entity_id=aws.AUDIENCE)


@pytest.fixture
def app(demo):
    sp = ServiceProvider.objects.create(name="App", entity_id="https://app.example/sp")
    sp.endpoints.create(location="https://app.example/acs", index=0, is_default=True)
    return sp


def alice() -> User:
    return User.objects.get(username="alice")


def rule(sp, **fields) -> ClaimRule:
    made = ClaimRule(
        service_provider=sp, attribute_name=fields.pop("attribute_name", "out"), **fields
    )
    made.full_clean()
    made.save()
    return made


def values(sp, user, name="out") -> tuple[str, ...]:
    return claims.release(user, sp).values(name)


# --- conditions and sources --------------------------------------------------


def test_literal_template_and_pass_through(app):
    rule(app, order=1, source="literal", value="fixed")
    rule(app, order=2, source="template", value="{first_name} of {attr.department}")
    rule(app, order=3, source="attribute", source_attribute="attr.costCenter")
    assert values(app, alice()) == ("fixed", "Alice of Engineering", "4711")


def test_values_accumulate_deduplicated_in_order(app):
    rule(app, order=1, source="literal", value="b")
    rule(app, order=2, source="literal", value="a")
    rule(app, order=3, source="literal", value="b")
    assert values(app, alice()) == ("b", "a")


def test_multi_valued_attribute_passes_through_every_value(app):
    user = alice()
    user.attributes.create(name="team", value="red")
    user.attributes.create(name="team", value="blue")
    rule(app, source="attribute", source_attribute="attr.team")
    rule(app, order=5, source="template", value="team-{attr.team}", attribute_name="t")
    assert values(app, user) == ("red", "blue")
    assert values(app, user, "t") == ("team-red", "team-blue")


def test_template_with_a_missing_input_gives_nothing(app):
    rule(app, source="template", value="{attr.title}")
    assert values(app, alice()) == ()


def test_member_of_is_transitive_and_can_be_negated(app):
    staff = Group.objects.create(name="Staff")
    Group.objects.get(name="Engineering").member_of.add(staff)
    rule(
        app,
        order=1,
        condition="member_of",
        condition_subject="Staff",
        source="literal",
        value="staff",
    )
    rule(
        app,
        order=2,
        condition="member_of",
        condition_subject="Staff",
        negate=True,
        source="literal",
        value="guest",
    )
    assert values(app, alice()) == ("staff",)
    assert values(app, User.objects.get(username="carol")) == ("guest",)


def test_attribute_matches(app):
    rule(
        app,
        condition="attribute_matches",
        condition_subject="attr.department",
        condition_pattern="^Eng",
        source="literal",
        value="builder",
    )
    assert values(app, alice()) == ("builder",)
    assert values(app, User.objects.get(username="bob")) == ()


def test_group_regex_accepts_adfs_and_okta_syntax(app):
    rule(
        app,
        order=1,
        source="group_regex",
        group_pattern=r"^AWS-(?<acct>\d+)-(?<r>\w+)$",
        value="${acct}/${r}",
    )
    rule(
        app,
        order=2,
        source="group_regex",
        group_pattern=r"^AWS-(?{{acct}}\d+)-Admin$",
        value="admin@{acct}",
        attribute_name="admin",
    )
    assert set(values(app, alice())) == {
        "111122223333/Admin",
        "111122223333/ReadOnly",
        "444455556666/Developer",
    }
    assert values(app, alice(), "admin") == ("admin@111122223333",)


def test_global_rules_apply_to_every_sp_and_disabled_ones_to_none(app, aws_sp):
    rule(None, source="literal", value="everywhere", attribute_name="global")
    rule(app, source="literal", value="off", attribute_name="global", enabled=False)
    assert values(app, alice(), "global") == ("everywhere",)
    assert values(aws_sp, alice(), "global") == ("everywhere",)


def test_rule_trace_says_why_alice_got_a_role(aws_sp):
    evaluation = claims.evaluate_for(alice(), aws_sp)
    [producer] = [o for o in evaluation.trace if o.rule.attribute_name == aws.ROLE and o.values]
    assert producer.rule.group_pattern.startswith("^AWS-")
    assert len(producer.values) == 3
    assert all(outcome.applied for outcome in evaluation.trace)


# --- validation when a rule is saved -------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        (
            {"source": "group_regex", "group_pattern": "(unclosed", "value": "x"},
            "group_pattern",
            "Not a valid regex",
        ),
        (
            {"source": "group_regex", "group_pattern": r"^(?P<account>\d+)$", "value": "{role}"},
            "value",
            "{role}",
        ),
        ({"source": "template", "value": "{password}"}, "value", "{password}"),
        ({"source": "template", "value": "{email.__class__}"}, "value", "__class__"),
        ({"source": "template", "value": ""}, "value", "needs a value"),
        ({"source": "attribute", "source_attribute": "password"}, "source_attribute", "attr."),
        (
            {"source": "literal", "value": "x", "condition": "member_of"},
            "condition_subject",
            "Name the group",
        ),
        (
            {
                "source": "literal",
                "value": "x",
                "condition": "attribute_matches",
                "condition_subject": "email",
                "condition_pattern": "[bad",
            },
            "condition_pattern",
            "Not a valid regex",
        ),
        (
            {"source": "literal", "value": "99999", "attribute_name": P + "SessionDuration"},
            "value",
            "R3",
        ),
        (
            {"source": "literal", "value": "x", "attribute_name": P + "PrincipalTag:aws:team"},
            "attribute_name",
            "R5",
        ),
    ],
)
def test_broken_rules_are_refused_with_the_reason(app, fields, field, message):
    candidate = ClaimRule(
        service_provider=app, attribute_name=fields.pop("attribute_name", "out"), **fields
    )
    with pytest.raises(ValidationError) as error:
        candidate.full_clean()
    assert message in " ".join(error.value.message_dict[field])


def test_admin_refuses_a_broken_rule_with_the_reason(client, app):
    client.login(username="admin", password="admin")
    response = client.post(
        "/admin/idp/claimrule/add/",
        {
            "service_provider": app.pk,
            "order": 1,
            "enabled": "on",
            "condition": "always",
            "source": "group_regex",
            "group_pattern": "(unclosed",
            "value": "x",
            "attribute_name": "out",
            "name_format": c.ATTRNAME_URI,
        },
    )
    assert response.status_code == 200
    assert "Not a valid regex" in response.content.decode()
    assert not ClaimRule.objects.filter(service_provider=app).exists()


# --- a fixed number of queries -----------------------------------------------


def test_evaluation_takes_a_fixed_number_of_queries(app, django_assert_num_queries, settings):
    settings.IDP_KEY_REFRESH_SECONDS = 3600  # as under gunicorn, where a thread does this
    user = alice()
    groups = Group.objects.bulk_create(Group(name=f"team-{i:03}") for i in range(500))
    user.directory_groups.add(*groups)
    ClaimRule.objects.bulk_create(
        ClaimRule(
            service_provider=app,
            order=i,
            source="group_regex",
            group_pattern=rf"^team-(?P<n>{i % 10}\d\d)$",
            value="{n}",
            attribute_name="teams",
        )
        for i in range(200)
    )
    small = User.objects.get(username="bob")
    # Cold: the rules, the group graph and the persistent NameID are read once...
    cache.forget()
    cache.refresh()
    with CaptureQueriesContext(connection) as cold_big:
        claims.release(user, app)
    cache.forget()
    cache.refresh()
    with CaptureQueriesContext(connection) as cold_small:
        claims.release(small, app)
    assert len(cold_big) == len(cold_small)
    claims.release(user, app)
    # ...then, until the directory or the configuration changes, none at all.
    with django_assert_num_queries(0):
        big = claims.release(user, app)
    assert len(big.values("teams")) == 500  # 200 rules matched 500 groups, de-duplicated
    with django_assert_num_queries(0):
        claims.release(small, app)


# --- ready-made rule sets ----------------------------------------------------


def role_arns(sp) -> set[str]:
    return {pair.role_arn for pair in aws.role_pairs(claims.release(alice(), sp))}


def test_adfs_and_okta_rule_sets_converge_on_alice(aws_sp, app):
    apply_rule_set(app, "aws-adfs")
    adfs = set(values(app, alice(), aws.ROLE))
    apply_rule_set(app, "aws-okta")
    okta = set(values(app, alice(), aws.ROLE))
    assert adfs == okta
    assert {aws.parse_role(v).role_arn for v in adfs} == ALICE_ROLE_ARNS == role_arns(aws_sp)
    assert all(v.startswith("arn:aws:iam::") and ":saml-provider/" in v.split(",")[0] for v in adfs)


def test_okta_filter_also_matches_okta_group_names(app):
    apply_rule_set(app, "aws-okta")
    user = User.objects.get(username="carol")
    user.directory_groups.add(Group.objects.create(name="aws_777788889999_Auditor"))
    assert values(app, user, aws.ROLE) == (
        "arn:aws:iam::777788889999:saml-provider/fedmock,arn:aws:iam::777788889999:role/Auditor",
    )


def test_apply_rule_set_command(app):
    out = io.StringIO()
    call_command("apply_rule_set", "generic", "--sp", app.entity_id, stdout=out)
    assert "Applied 'Generic'" in out.getvalue()
    release = claims.release(alice(), app)
    assert release.values("email") == ("alice@example.com",)
    assert release.values("givenName") == ("Alice",)
    assert release.values("sn") == ("Anders",)
    assert "Engineering" in release.values("groups")


def test_apply_rule_set_to_an_unknown_sp_is_a_command_error(db):
    with pytest.raises(CommandError, match="No service provider"):
        call_command("apply_rule_set", "generic", "--sp", "urn:nobody")


IC_METADATA = f"""<md:EntityDescriptor xmlns:md="{c.MD}"
    entityID="https://us-east-1.signin.aws.amazon.com/platform/saml/d-9067c3a1b2">
  <md:SPSSODescriptor WantAssertionsSigned="true" protocolSupportEnumeration="{c.SAMLP}">
    <md:NameIDFormat>{c.NAMEID_EMAIL}</md:NameIDFormat>
    <md:AssertionConsumerService Binding="{c.BINDING_POST}" index="0" isDefault="true"
      Location="https://us-east-1.signin.aws.amazon.com/platform/saml/acs/5d9e2c2a-2b64-4f6e-a1f9"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>"""


def test_identity_center_preset_from_its_metadata(demo, tmp_path):
    path = tmp_path / "ic.xml"
    path.write_text(IC_METADATA)
    call_command(
        "import_sp_metadata", str(path), "--rule-set", "aws-identity-center", stdout=io.StringIO()
    )
    sp = ServiceProvider.objects.get(entity_id__contains="platform/saml/d-9067c3a1b2")
    assert sp.profile == "identity_center" and sp.nameid_format == c.NAMEID_EMAIL
    preview = sso.preview(alice(), sp)
    assert preview.release.name_id.value == "alice@example.com"
    assert preview.release.values(P + "AccessControl:department") == ("Engineering",)
    assert preview.findings == []


# --- the preview -----------------------------------------------------------------


def test_preview_page_explains_alice(client, aws_sp):
    client.login(username="admin", password="admin")
    page = client.get(
        f"/admin/idp/serviceprovider/{aws_sp.pk}/preview/", {"user": alice().pk}
    ).content.decode()
    assert "Role from AWS-&lt;account&gt;-&lt;role&gt; groups" in page
    assert "arn:aws:iam::444455556666:role/Developer" in page
    assert "saml:namequalifier (111122223333/fedmock)" in page
    assert "ds:Signature" in page
    assert "No findings" not in page and "None." in page


def test_preview_shows_findings_for_carol(client, aws_sp):
    client.login(username="admin", password="admin")
    carol = User.objects.get(username="carol")
    page = client.get(f"/admin/idp/serviceprovider/{aws_sp.pk}/preview/", {"user": carol.pk})
    assert "R1 error" in page.content.decode()


def test_preview_creates_no_audit_event(aws_sp):
    sso.preview(alice(), aws_sp)
    assert not AuditEvent.objects.exists()


def test_rule_set_admin_page(client, app):
    client.login(username="admin", password="admin")
    response = client.post(
        f"/admin/idp/serviceprovider/{app.pk}/rule-set/", {"rule_set": "aws-adfs"}
    )
    assert response.status_code == 302
    assert app.rules.count() == 2


def test_check_response_admin_page(client, demo):
    client.login(username="admin", password="admin")
    page = client.post("/admin/idp/serviceprovider/check-response/", {"response": "<a/>"})
    assert "SAML error" in page.content.decode()


# --- the sign-on policy -------------------------------------------------------------


def break_session_duration(sp):
    sp.rules.filter(attribute_name=aws.SESSION_DURATION).update(value="99999")


def test_block_policy_shows_the_findings_instead_of_sending(client, aws_sp):
    break_session_duration(aws_sp)
    client.login(username="alice", password="alice")
    response = client.get("/saml/init/", {"sp": aws.AUDIENCE})
    body = response.content.decode()
    assert response.status_code == 409
    assert "AWS would reject this response" in body
    assert "R3 error" in body and "SAMLResponse" not in body
    assert "R3 error" in AuditEvent.objects.get().detail


def test_warn_policy_sends_and_records_the_findings(client, aws_sp):
    break_session_duration(aws_sp)
    aws_sp.check_policy = "warn"
    aws_sp.save()
    client.login(username="alice", password="alice")
    response = client.get("/saml/init/", {"sp": aws.AUDIENCE})
    assert response.status_code == 200
    assert "SAMLResponse" in response.content.decode()
    event = AuditEvent.objects.get()
    assert event.outcome == "sent" and "R3 error" in event.detail


# --- found in review ------------------------------------------------------------


def test_an_empty_capture_fills_in_as_empty_text(app):
    rule(
        app,
        source="group_regex",
        group_pattern=r"^AWS-(?P<account>\d{12})-(?P<path>(?:\w+/)*)(?P<role>\w+)$",
        value="role/{path}{role}",
    )
    assert "role/Admin" in values(app, alice())


def test_a_pattern_too_large_to_compile_is_refused(app):
    candidate = ClaimRule(
        service_provider=app,
        attribute_name="out",
        source="group_regex",
        group_pattern="a{4294967296}",
        value="x",
    )
    with pytest.raises(ValidationError, match="too large"):
        candidate.full_clean()


def test_control_characters_in_names_are_refused(app):
    candidate = ClaimRule(
        service_provider=app, attribute_name="bad\x0bname", source="literal", value="x"
    )
    with pytest.raises(ValidationError, match="control characters"):
        candidate.full_clean()


def test_malformed_roles_are_reported_as_r1_not_as_no_role(client, aws_sp):
    aws_sp.rules.filter(attribute_name=aws.ROLE).update(
        value="arn:aws:iam::{account}:role/{role}, arn:aws:iam::{account}:saml-provider/{provider}"
    )
    client.login(username="alice", password="alice")
    body = client.get("/saml/init/", {"sp": aws.AUDIENCE}).content.decode()
    assert "No AWS role for you" not in body
    assert "R1 error" in body and "white space" in body


# --- caches follow changes ------------------------------------------------------


def test_directory_changes_reach_the_next_sign_on(app):
    rule(app, source="attribute", source_attribute="attr.department")
    rule(app, order=2, source="attribute", source_attribute="groups", attribute_name="groups")
    user = alice()
    assert values(app, user) == ("Engineering",)
    attribute = user.attributes.get(name="department")
    attribute.value = "Research"
    attribute.save()
    assert values(app, user) == ("Research",)
    Group.objects.create(name="Lab").members.add(user)
    assert "Lab" in values(app, user, "groups")


def test_another_process_change_is_seen_within_the_refresh_interval(app, settings, monkeypatch):
    from types import SimpleNamespace

    from django.db.models import F

    from idp.models import ConfigGeneration

    settings.IDP_KEY_REFRESH_SECONDS = 1.0
    clock = SimpleNamespace(now=1000.0)  # the cache's monotonic clock, moved by hand
    monkeypatch.setattr(cache, "time", SimpleNamespace(monotonic=lambda: clock.now))
    cache.refresh()
    made = rule(app, source="literal", value="old")
    assert values(app, alice()) == ("old",)
    # As another worker would: change the row and bump the counter, bypassing this cache.
    ClaimRule.objects.filter(pk=made.pk).update(value="new")
    ConfigGeneration.objects.filter(pk=1).update(value=F("value") + 1)
    clock.now = 1000.999
    assert values(app, alice()) == ("old",)  # still cached here...
    clock.now = 1001.0
    assert values(app, alice()) == ("new",)  # ...until the refresh interval has passed


def test_editing_a_persistent_name_id_reaches_the_next_sign_on(aws_sp):
    from idp.models import PersistentNameID

    first = claims.release(alice(), aws_sp).name_id.value
    row = PersistentNameID.objects.get(value=first)
    row.value = "renamed"
    row.save()
    assert claims.release(alice(), aws_sp).name_id.value == "renamed"


def test_a_read_that_races_a_change_is_not_kept(app):
    """A value read before a change must not land in the tables made after it."""
    from idp.models import ConfigGeneration

    user = alice()
    stale = User.objects.get(pk=user.pk)

    def load_then_change():
        User.objects.filter(pk=user.pk).update(is_active=False)
        ConfigGeneration.objects.filter(pk=1).update(value=999)
        cache.refresh()  # as the watcher would, mid-query
        return stale

    cache._memo("users", "race", load_then_change)
    assert "race" not in cache._cache.fresh_tables()["users"]
