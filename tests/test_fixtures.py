"""Declarative fixtures (issue 9, part C): load, dump, prune, reset, errors and cost."""

import base64
import copy
import fnmatch
import io
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from idp import cache, fixtures
from idp.models import ClaimRule, ConfigGeneration, LoadedFixture, ServiceProvider
from idp.presets import ensure_aws_preset
from idp.saml import aws
from idp.saml import constants as c
from idp.saml.errors import SamlError
from users.models import Group, User, UserAttribute

APP = "https://app.example/sp"
APP_ACS = "https://app.example/acs"


def metadata(entity_id: str = APP, acs: str = APP_ACS, name_id: str = c.NAMEID_EMAIL) -> str:
    return (
        f'<md:EntityDescriptor xmlns:md="{c.MD}" entityID="{entity_id}">'
        f'<md:SPSSODescriptor protocolSupportEnumeration="{c.SAMLP}" '
        'WantAssertionsSigned="true">'
        f"<md:NameIDFormat>{name_id}</md:NameIDFormat>"
        f'<md:AssertionConsumerService Binding="{c.BINDING_POST}" Location="{acs}" '
        'index="0" isDefault="true"/></md:SPSSODescriptor></md:EntityDescriptor>'
    )


def rich() -> dict:
    """Every kind of entry, and most of the ways to write one."""
    return {
        "groups": [
            {"name": "Staff", "description": "everyone employed"},
            {"name": "Engineering", "member_of": ["Staff"]},
            {"name": "Platform", "description": "the platform team", "member_of": ["Engineering"]},
            {"name": "AWS-111122223333-Admin"},
        ],
        "users": [
            {
                "username": "dora",
                "password": "dora's secret",
                "email": "dora@example.com",
                "first_name": "Dora",
                "last_name": "Diaz",
                "attributes": {"department": "Platform", "tags": ["b", "a", "c"]},
                "groups": ["Platform", "AWS-111122223333-Admin"],
            },
            {"username": "eve", "password": "shared", "is_active": False},
            {"username": "finn", "password": "shared", "groups": ["Staff"]},
            {"username": "ops", "password": "ops", "is_staff": True, "is_superuser": True},
        ],
        "service_providers": [
            {
                "preset": "aws",
                "rule_set": "aws-okta",
                "check_policy": "warn",
                "fault_scenario": "expired",
                "claim_rules": [
                    {
                        "order": 50,
                        "attribute_name": aws.ATTRIBUTE_PREFIX + "PrincipalTag:team",
                        "source": "literal",
                        "value": "platform",
                        "condition": "member_of",
                        "condition_subject": "Platform",
                    }
                ],
            },
            {
                "metadata": metadata(),
                "name": "The app",
                "assertion_lifetime": 120,
                "claim_rules": [
                    {
                        "attribute_name": "dept",
                        "source": "attribute",
                        "source_attribute": "attr.department",
                    },
                    {"attribute_name": "dept", "source": "literal", "value": "second, same key"},
                ],
            },
            {
                "entity_id": "https://plain.example/sp",
                "endpoints": [
                    "https://plain.example/acs",
                    {"location": "https://plain.example/acs2", "binding": c.BINDING_REDIRECT},
                ],
            },
        ],
        "claim_rules": [
            {
                "order": 5,
                "attribute_name": "mail",
                "source": "attribute",
                "source_attribute": "email",
            }
        ],
    }


def load(data: dict, **options) -> fixtures.Summary:
    return fixtures.load(copy.deepcopy(data), source="test.yaml", **options)


def empty_database() -> None:
    User.objects.all().delete()
    Group.objects.all().delete()
    ServiceProvider.objects.all().delete()
    ClaimRule.objects.all().delete()
    LoadedFixture.objects.all().delete()


def count_hashing(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = fixtures.applying.make_password

    def counted(password, *args, **kwargs):
        calls.append(password)
        return real(password, *args, **kwargs)

    monkeypatch.setattr(fixtures.applying, "make_password", counted)
    return calls


def generation() -> int:
    return ConfigGeneration.current()


# --- load, dump, reload -----------------------------------------------------------------


def test_dump_loads_back_to_the_same_state(db):
    load(rich())
    first = fixtures.dump()
    assert yaml.safe_load(fixtures.to_yaml(first)) == first  # the YAML itself round-trips
    empty_database()
    assert fixtures.dump() == {
        "groups": [],
        "users": [],
        "service_providers": [],
        "claim_rules": [],
    }
    summary = fixtures.load(yaml.safe_load(fixtures.to_yaml(first)), source="dump.yaml")
    assert summary.users.created == 4 and summary.service_providers.created == 3
    assert fixtures.dump() == first
    assert User.objects.get(username="dora").check_password("dora's secret")


def test_json_and_empty_values_load_like_yaml(db, tmp_path):
    data = rich()
    data["users"][1]["groups"] = None  # `groups:` with nothing after it
    data["users"][1]["attributes"] = None
    path = tmp_path / "fixture.json"
    path.write_text(json.dumps(data))
    fixtures.load_file(path)
    from_json = fixtures.dump()
    empty_database()
    load(rich())
    assert without_hashes(fixtures.dump()) == without_hashes(from_json)


def without_hashes(dumped: dict) -> dict:
    """Two loads of one password differ only in the salt."""
    for user in dumped["users"]:
        user.pop("password_hash")
    return dumped


def test_the_loaded_state_is_what_the_file_says(db):
    load(rich())
    dora = User.objects.get(username="dora")
    assert dora.attribute_values() == {"department": ["Platform"], "tags": ["b", "a", "c"]}
    assert (dora.email, dora.first_name, dora.is_staff) == ("dora@example.com", "Dora", False)
    assert not User.objects.get(username="eve").is_active
    ops = User.objects.get(username="ops")
    assert ops.is_staff and ops.is_superuser and ops.check_password("ops")
    platform = Group.objects.get(name="Platform")
    assert list(platform.member_of.values_list("name", flat=True)) == ["Engineering"]
    sp = ServiceProvider.objects.get(entity_id=aws.AUDIENCE)
    # preset, then the rule set's settings and rules, then the entry's own settings
    assert (sp.profile, sp.nameid_source, sp.check_policy) == ("aws", "email", "warn")
    assert sp.fault_scenario == "expired"
    assert [r.order for r in sp.rules.order_by("order")] == [10, 20, 50]
    app = ServiceProvider.objects.get(entity_id=APP)
    assert (app.name, app.assertion_lifetime, app.nameid_format) == ("The app", 120, c.NAMEID_EMAIL)
    assert app.metadata_xml == metadata()
    assert [e.location for e in app.endpoints.all()] == [APP_ACS]
    assert app.rules.count() == 2
    plain = ServiceProvider.objects.get(entity_id="https://plain.example/sp")
    assert [(e.index, e.binding, e.is_default) for e in plain.endpoints.all()] == [
        (0, c.BINDING_POST, True),
        (1, c.BINDING_REDIRECT, False),
    ]
    assert ClaimRule.objects.filter(service_provider=None).count() == 1


def test_reloading_changes_nothing_and_hashes_nothing(db, monkeypatch):
    load(rich())
    before, generation_before = fixtures.dump(), generation()
    hashing = count_hashing(monkeypatch)
    summary = load(rich())
    assert not summary.changed, str(summary)
    assert hashing == []
    assert fixtures.dump() == before
    assert generation() == generation_before  # nothing to tell the other workers


def test_each_distinct_password_is_hashed_once(db, monkeypatch):
    hashing = count_hashing(monkeypatch)
    users = [{"username": f"u{i}", "password": "same" if i % 2 else "other"} for i in range(50)]
    load({"users": users})
    assert sorted(hashing) == ["other", "same"]
    assert User.objects.get(username="u3").check_password("same")
    assert User.objects.get(username="u4").check_password("other")


def test_a_named_entry_is_replaced_whole(db):
    load(rich())
    changed = rich()
    changed["users"][0] = {"username": "dora", "password": "new", "attributes": {"x": "1"}}
    changed["groups"][2] = {"name": "Platform"}
    summary = load(changed)
    assert (summary.users.updated, summary.groups.updated) == (1, 1)
    dora = User.objects.get(username="dora")
    assert (dora.email, dora.attribute_values(), dora.directory_groups.count()) == (
        "",
        {"x": ["1"]},
        0,
    )
    assert dora.check_password("new")
    assert not Group.objects.get(name="Platform").member_of.exists()


def test_the_aws_preset_is_the_sp_the_migration_creates(db):
    ServiceProvider.objects.all().delete()
    ensure_aws_preset(ServiceProvider)
    created_by_migration = fixtures.dump()["service_providers"]
    ServiceProvider.objects.all().delete()
    load({"service_providers": [{"preset": "aws"}]})
    assert fixtures.dump()["service_providers"] == created_by_migration


# --- prune ------------------------------------------------------------------------------


def extras() -> None:
    """What an operator or a test adds by hand, beside the fixture."""
    User.objects.create_user("stray", password="x")
    User.objects.create_user("operator", password="x", is_staff=True)
    User.objects.create_superuser("root", password="x")
    Group.objects.create(name="Stray")
    stray = ServiceProvider.objects.create(name="Stray", entity_id="https://stray.example/sp")
    stray.rules.create(attribute_name="s", source="literal", value="s")
    ClaimRule.objects.create(attribute_name="global-stray", source="literal", value="g", order=9)
    app = ServiceProvider.objects.get(entity_id=APP)
    app.rules.create(attribute_name="app-stray", source="literal", value="a", order=99)


@pytest.mark.parametrize(
    ("prune", "users", "groups", "sps", "global_rules"),
    [
        (
            False,
            {"dora", "eve", "finn", "ops", "stray", "operator", "root"},
            {"Staff", "Engineering", "Platform", "AWS-111122223333-Admin", "Stray"},
            {aws.AUDIENCE, APP, "https://plain.example/sp", "https://stray.example/sp"},
            {"mail", "global-stray"},
        ),
        (
            True,
            {"dora", "eve", "finn", "ops", "operator", "root"},  # staff are never pruned
            {"Staff", "Engineering", "Platform", "AWS-111122223333-Admin"},
            {aws.AUDIENCE, APP, "https://plain.example/sp"},
            {"mail"},
        ),
    ],
)
def test_prune_removes_exactly_what_the_file_does_not_name(
    db, prune, users, groups, sps, global_rules
):
    load(rich())
    extras()
    summary = load(rich(), prune=prune)
    assert set(User.objects.values_list("username", flat=True)) == users
    assert set(Group.objects.values_list("name", flat=True)) == groups
    assert set(ServiceProvider.objects.values_list("entity_id", flat=True)) == sps
    globals_ = ClaimRule.objects.filter(service_provider=None)
    assert set(globals_.values_list("attribute_name", flat=True)) == global_rules
    # A named SP's rules are the file's, pruned or not.
    app_rules = ServiceProvider.objects.get(entity_id=APP).rules
    assert set(app_rules.values_list("attribute_name", flat=True)) == {"dept"}
    assert (summary.users.deleted, summary.groups.deleted) == ((1, 1) if prune else (0, 0))
    assert summary.service_providers.deleted == (1 if prune else 0)
    # app-stray always; with prune, the global stray and the pruned SP's rule as well
    assert summary.claim_rules.deleted == (3 if prune else 1)
    load(rich(), prune=True)
    named = fixtures.dump()
    assert [u["username"] for u in named["users"]] == [
        "dora",
        "eve",
        "finn",
        "operator",
        "ops",
        "root",
    ]


# --- reset ------------------------------------------------------------------------------


def test_reset_restores_the_loaded_state_without_hashing(db, monkeypatch):
    load(rich())
    loaded = fixtures.dump()
    dora = User.objects.get(username="dora")
    dora.set_password("changed")
    dora.email = "changed@example.com"
    dora.save()
    dora.attributes.all().delete()
    dora.directory_groups.clear()
    Group.objects.get(name="Engineering").delete()
    User.objects.get(username="finn").delete()
    User.objects.create_user("stray")
    sp = ServiceProvider.objects.get(entity_id=APP)
    sp.assertion_lifetime = 600
    sp.save()
    sp.rules.all().delete()
    ServiceProvider.objects.filter(entity_id="https://plain.example/sp").delete()
    assert fixtures.dump() != loaded
    hashing = count_hashing(monkeypatch)
    summary = fixtures.reset()
    assert hashing == []
    assert fixtures.dump() == loaded
    assert summary.users.deleted == 1 and summary.users.created == 1
    assert User.objects.get(username="dora").check_password("dora's secret")


def test_reset_is_stored_in_the_database_without_plain_passwords(db):
    load(rich())
    stored = LoadedFixture.objects.get()
    assert stored.source == "test.yaml"
    assert "dora's secret" not in str(stored.data)
    assert all("password_hash" in user for user in stored.data["users"])


def test_reset_reads_a_metadata_file_once(db, tmp_path):
    (tmp_path / "sp.xml").write_text(metadata())
    fixture = tmp_path / "fixture.yaml"
    fixture.write_text(yaml.safe_dump({"service_providers": [{"metadata_file": "sp.xml"}]}))
    fixtures.load_file(fixture)
    (tmp_path / "sp.xml").unlink()
    ServiceProvider.objects.filter(entity_id=APP).delete()
    fixtures.reset()
    assert ServiceProvider.objects.get(entity_id=APP).metadata_xml == metadata()


def test_only_a_fixture_file_may_name_a_metadata_file(db, tmp_path):
    (tmp_path / "sp.xml").write_text(metadata())
    data = {"service_providers": [{"metadata_file": str(tmp_path / "sp.xml")}]}
    with pytest.raises(fixtures.FixtureError, match="only a fixture file"):
        fixtures.load(data, source=str(tmp_path / "fixture.yaml"))
    fixtures.load(data, source="fixture.yaml", base_dir=tmp_path)
    assert ServiceProvider.objects.filter(entity_id=APP).exists()


def test_reset_without_a_loaded_fixture_is_refused(db):
    LoadedFixture.objects.all().delete()
    with pytest.raises(SamlError) as caught:
        fixtures.reset()
    assert caught.value.status == 409 and "load_fixtures" in caught.value.hint


def test_after_seed_demo_reset_restores_the_demo(demo):
    seeded = fixtures.dump()
    User.objects.create_user("left-over")
    User.objects.get(username="alice").attributes.all().delete()
    fixtures.reset()
    assert fixtures.dump() == seeded


# --- broken fixtures: one error each, naming the file, the entry and the field ----------

BROKEN = [
    ("top-level key", "usres: []\n", "", "usres", "unknown key"),
    ("top level a list", "- username: x\n", "", "", "must be a mapping"),
    (
        "unknown user key",
        "users: [{username: al, pasword: x}]\n",
        "users[0]",
        "pasword",
        "unknown key",
    ),
    ("missing username", "users: [{email: a@example.com}]\n", "users[0]", "username", "is missing"),
    (
        "wrong type",
        "users: [{username: al, is_active: 'yes'}]\n",
        "users[0] (al)",
        "is_active",
        "true or false",
    ),
    (
        "a number as text",
        "users: [{username: al, attributes: {costCenter: [4711]}}]\n",
        "users[0] (al)",
        "attributes.costCenter[0]",
        "must be text",
    ),
    (
        "bad e-mail",
        "users: [{username: al, email: not-mail}]\n",
        "users[0] (al)",
        "email",
        "valid email",
    ),
    (
        "twice the same user",
        "users: [{username: al}, {username: al}]\n",
        "users[1] (al)",
        "username",
        "already users[0]",
    ),
    (
        "unknown group",
        "users: [{username: al, groups: [Nobody]}]\n",
        "users[0] (al)",
        "groups[0]",
        "no group 'Nobody'",
    ),
    (
        "unknown hasher",
        "users: [{username: al, password_hash: 'rot13$x'}]\n",
        "users[0] (al)",
        "password_hash",
        "hasher",
    ),
    (
        "cycle",
        "groups: [{name: A, member_of: [B]}, {name: B, member_of: [C]},\n"
        "  {name: C, member_of: [A]}]\n",
        "groups[2] (C)",
        "member_of[0]",
        "A -> B -> C -> A",
    ),
    (
        "self member",
        "groups: [{name: A, member_of: [A]}]\n",
        "groups[0] (A)",
        "member_of[0]",
        "member of itself",
    ),
    (
        "unknown preset",
        "service_providers: [{preset: azure}]\n",
        "service_providers[0]",
        "preset",
        "no preset 'azure'",
    ),
    (
        "bad metadata",
        "service_providers: [{metadata: '<not-metadata/>'}]\n",
        "service_providers[0]",
        "metadata",
        "not SAML metadata",
    ),
    (
        "missing metadata file",
        "service_providers: [{metadata_file: nope.xml}]\n",
        "service_providers[0]",
        "metadata_file",
        "cannot read",
    ),
    (
        "no entity ID",
        "service_providers: [{name: x}]\n",
        "service_providers[0]",
        "entity_id",
        "is missing",
    ),
    (
        "unknown rule set",
        "service_providers: [{entity_id: 'https://a', rule_set: aws-azure}]\n",
        "service_providers[0] (https://a)",
        "rule_set",
        "no rule set",
    ),
    (
        "unknown setting",
        "service_providers: [{entity_id: 'https://a', sign_everything: true}]\n",
        "service_providers[0]",
        "sign_everything",
        "unknown key",
    ),
    (
        "bad setting value",
        "service_providers: [{entity_id: 'https://a', assertion_lifetime: 5}]\n",
        "service_providers[0] (https://a)",
        "assertion_lifetime",
        "greater than or equal to 30",
    ),
    (
        "AWS without a signed assertion",
        "service_providers: [{preset: aws, sign_assertion: false}]\n",
        "service_providers[0] (urn:amazon:webservices)",
        "sign_assertion",
        "R11",
    ),
    (
        "broken claim rule",
        "service_providers: [{entity_id: 'https://a', claim_rules:\n"
        "  [{attribute_name: x, source: template, value: '{nope}'}]}]\n",
        "service_providers[0] (https://a) claim_rules[0]",
        "value",
        "{nope}",
    ),
    (
        "bad rule regex",
        "claim_rules: [{attribute_name: x, source: group_regex, group_pattern: '(', value: x}]\n",
        "claim_rules[0]",
        "group_pattern",
        "Not a valid regex",
    ),
    (
        "unknown fault scenario",
        "service_providers: [{entity_id: 'https://a', fault_scenario: melted}]\n",
        "service_providers[0] (https://a)",
        "fault_scenario",
        "melted",
    ),
    (
        "bad endpoint",
        "service_providers: [{entity_id: 'https://a', endpoints: ['ftp://a/acs']}]\n",
        "service_providers[0] (https://a)",
        "endpoints[0].location",
        "valid URL",
    ),
    (
        "yaml syntax",
        "users:\n  - username: al\n   email: x\n",
        "line 3, column 4",
        "",
        "not valid YAML",
    ),
]


@pytest.mark.parametrize(
    ("text", "entry", "field", "words"), [case[1:] for case in BROKEN], ids=[c[0] for c in BROKEN]
)
def test_a_broken_fixture_gives_one_clear_error(db, tmp_path, text, entry, field, words):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    before = fixtures.dump()
    with pytest.raises(fixtures.FixtureError) as caught:
        fixtures.load_file(path)
    error = caught.value
    assert (error.source, error.entry, error.field) == (str(path), entry, field)
    assert words in error.detail
    assert error.detail.startswith(", ".join(p for p in (str(path), entry, field) if p) + ": ")
    assert error.status == 400 and error.hint
    assert fixtures.dump() == before  # nothing written
    with pytest.raises(CommandError) as command:
        call_command("load_fixtures", str(path))
    assert "\n" not in str(command.value) and words in str(command.value)


def test_a_missing_file_is_named(db, tmp_path):
    path = tmp_path / "absent.yaml"
    with pytest.raises(CommandError, match=re.escape(f"{path}: no such file")):
        call_command("load_fixtures", str(path))


def test_an_error_after_writing_began_rolls_everything_back(db, monkeypatch):
    before = fixtures.dump()

    def fail(self):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(fixtures.applying._Writer, "_global_rules", fail)
    with pytest.raises(RuntimeError):
        load(rich())
    assert fixtures.dump() == before


# --- commands -------------------------------------------------------------------------


def test_the_commands_round_trip_through_a_file(db, tmp_path):
    empty_database()
    source = tmp_path / "in.yaml"
    source.write_text(yaml.safe_dump(rich()))
    out = io.StringIO()
    call_command("load_fixtures", str(source), stdout=out)
    assert out.getvalue() == (
        f"Loaded {source}: users 4 created, 0 updated, 0 deleted; groups 4 created, 0 updated, "
        "0 deleted; service providers 3 created, 0 updated, 0 deleted; claim rules 10 created, "
        "0 updated, 0 deleted.\n"
    )
    dumped = tmp_path / "out.yaml"
    call_command("dump_fixtures", "--output", str(dumped), stderr=io.StringIO())
    stdout = io.StringIO()
    call_command("dump_fixtures", stdout=stdout)
    assert stdout.getvalue() == dumped.read_text()
    empty_database()
    call_command("load_fixtures", str(dumped), "--prune", stdout=io.StringIO())
    assert fixtures.to_yaml(fixtures.dump()) == dumped.read_text()


# --- a loaded user signs on, and sees the fixture's values at once ---------------------


def sign_on_attributes(client) -> str:
    page = client.get("/saml/init/", {"sp": APP}).content.decode()
    value = re.search(r'name="SAMLResponse" value="([^"]+)"', page)
    assert value, page
    return base64.b64decode(value[1]).decode()


def test_a_loaded_user_signs_on_and_sees_each_reload_at_once(client, signing_key):
    data = rich()
    load(data)
    assert client.login(username="dora", password="dora's secret")
    assert ">Platform<" in sign_on_attributes(client)
    data["users"][0]["attributes"]["department"] = "Research"
    load(data)  # no signal fired for these rows: the fixture bumps the generation itself
    xml = sign_on_attributes(client)
    assert ">Research<" in xml and ">Platform<" not in xml


def test_a_change_bumps_the_generation_once(db):
    load(rich())
    before = generation()
    data = rich()
    for user in data["users"]:
        user["email"] = f"{user['username']}@changed.example"
    load(data, prune=True)
    assert generation() == before + 1


# --- cost: the number of statements does not grow with the number of users -------------


def directory(count: int, email_domain: str = "example.com", department: str = "D") -> dict:
    return {
        "groups": [{"name": "All"}, {"name": "Half", "member_of": ["All"]}],
        "users": [
            {
                "username": f"user{i:05}",
                "password": "load-test",
                "email": f"user{i}@{email_domain}",
                "attributes": {"department": department, "costCenter": [str(i), "x"]},
                "groups": ["Half"] if i % 2 else ["All"],
            }
            for i in range(count)
        ],
        "service_providers": [{"preset": "aws"}],
    }


def statements(action) -> int:
    with CaptureQueriesContext(connection) as queries:
        action()
    return len(queries)


def test_statements_do_not_grow_with_the_number_of_users(db):
    counts = {}
    for users in (100, 1000):
        empty_database()
        counts[users] = (
            statements(lambda n=users: load(directory(n))),
            statements(lambda n=users: load(directory(n))),
            statements(lambda n=users: load(directory(n, "changed.example", "E"))),
            statements(fixtures.reset),
            statements(fixtures.dump),
        )
        assert User.objects.count() == users
        assert UserAttribute.objects.count() == 3 * users
    assert counts[100] == counts[1000], counts
    created, unchanged, changed, reset, dumped = counts[1000]
    # dumped: 11 since the TOTP devices (one query for all users).
    assert created <= 30 and unchanged <= 16 and changed <= 20 and dumped <= 11, counts


def test_a_staff_operator_survives_every_reset(db):
    load(directory(3))
    User.objects.create_user("ci-bot", is_staff=True)
    fixtures.reset()
    assert User.objects.filter(username="ci-bot").exists()
    cache.forget()


def test_the_demo_fixture_ships_with_the_package():
    """seed_demo and the pytest plugin read it from the installed package, not the checkout."""
    root = Path(fixtures.__file__).resolve().parents[2]
    config = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["idp"]
    relative = fixtures.DEMO.relative_to(root / "idp").as_posix()
    assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns)
    users = [u["username"] for u in fixtures.read(fixtures.DEMO)["users"]]
    assert users == ["alice", "bob", "carol", "admin"]
