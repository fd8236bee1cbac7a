"""Declarative fixtures: one YAML (or JSON) file describes the directory and the SPs.

    groups:            [{name, description?, member_of?: [group]}]
    users:             [{username, password? | password_hash?, email?, first_name?,
                         last_name?, is_active?, is_staff?, is_superuser?,
                         attributes?: {name: value | [values]}, groups?: [group]}]
    service_providers: [{entity_id?, preset?, metadata? | metadata_file?, rule_set?,
                         endpoints?: [location | {location, binding?, index?, is_default?}],
                         claim_rules?: [rule], <any ServiceProvider field>}]
    claim_rules:       [rule]   (global: every SP)

An entry the file names ends up exactly as the file says: fields it leaves out take their
defaults, and its attributes, memberships, endpoints and rules are replaced. Entries it
does not name are left alone, unless `prune`: then they are deleted, except staff and
superusers (operators, whose API tokens a reset must not delete). Everything happens in
one transaction, with a constant number of SQL statements per kind whatever the number
of users: the database is read into maps once, and rows are written with one
executemany per kind (Django's bulk_create splits into 999-parameter statements on
SQLite, 90 users each).

Passwords: each distinct password text is hashed once per load, and every user sharing it
shares that hash (salt included). That turns 10,000 PBKDF2 runs into one; the trade-off
is that the hashes show which users share a password, which suits test directories, not
real ones. A user whose stored hash already verifies keeps it (one check per distinct
hash and text), so reloading the same file changes nothing.
"""

import dataclasses
import datetime
import itertools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from django.contrib.auth.hashers import check_password, identify_hasher, make_password
from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.utils import timezone

from users.models import Group, User, UserAttribute

from . import cache
from .models import AssertionConsumerService, ClaimRule, LoadedFixture, ServiceProvider
from .presets import AWS_PRESET_SETTINGS, RULE_SETS
from .saml import aws
from .saml import constants as c
from .saml.errors import SamlError
from .saml.metadata import parse_sp_metadata

DEMO = Path(__file__).resolve().parent / "fixture_data" / "demo.yaml"

KINDS = ("users", "groups", "service_providers", "claim_rules")
TOP_LEVEL = ("groups", "users", "service_providers", "claim_rules", "iam")
USER_FIELDS = ("email", "first_name", "last_name", "is_active", "is_staff", "is_superuser")
USER_KEYS = ("username", "password", "password_hash", *USER_FIELDS, "attributes", "groups")
GROUP_KEYS = ("name", "description", "member_of")
ENDPOINT_KEYS = ("location", "binding", "index", "is_default")
SP_SPECIAL_KEYS = (
    "entity_id",
    "preset",
    "metadata",
    "metadata_file",
    "rule_set",
    "endpoints",
    "claim_rules",
)
# Every ServiceProvider column a fixture may set; a field added to the model (such as
# fault_scenario) is settable without a change here.
SP_SETTINGS = tuple(
    f.name
    for f in ServiceProvider._meta.concrete_fields
    if f.editable and f.name not in ("id", "entity_id")
)
RULE_FIELDS = tuple(
    f.name
    for f in ClaimRule._meta.concrete_fields
    if f.editable and f.name not in ("id", "service_provider")
)


@dataclass(frozen=True)
class Preset:
    entity_id: str
    name: str
    settings: dict
    endpoints: tuple[str, ...]
    rule_set: str


# The same SP that presets.ensure_aws_preset creates (a test holds the two together).
PRESETS = {
    "aws": Preset(
        entity_id=aws.AUDIENCE,
        name="AWS",
        settings={
            **AWS_PRESET_SETTINGS,
            "check_policy": "block",
            "iam_provider_name": "fedmock",
            "sign_assertion": True,
            "sign_response": True,
        },
        endpoints=(aws.SIGNIN_ACS,),
        rule_set="aws-preset",
    ),
}


class FixtureError(SamlError):
    """A fixture that cannot be loaded; the detail names the file, the entry and the field."""

    def __init__(self, source: str, entry: str, field: str, problem: str, hint: str = ""):
        where = ", ".join(part for part in (source, entry, field) if part)
        # One line: PyYAML's and the metadata parser's messages span several.
        problem, hint = " ".join(problem.split()), " ".join(hint.split())
        super().__init__(
            "The fixture cannot be loaded",
            f"{where}: {problem}",
            hint or "Correct the fixture file and load it again.",
        )
        self.source = source
        self.entry = entry
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class Counts:
    created: int = 0
    updated: int = 0
    deleted: int = 0


@dataclass(frozen=True)
class Summary:
    source: str
    users: Counts
    groups: Counts
    service_providers: Counts
    claim_rules: Counts

    @property
    def changed(self) -> bool:
        return any(dataclasses.astuple(getattr(self, kind)) != (0, 0, 0) for kind in KINDS)

    def __str__(self) -> str:
        parts = []
        for kind in KINDS:
            n = getattr(self, kind)
            label = kind.replace("_", " ")
            parts.append(f"{label} {n.created} created, {n.updated} updated, {n.deleted} deleted")
        return "; ".join(parts)


# --- reading and checking -------------------------------------------------------------


def read(path: str | Path) -> dict:
    """A fixture file's data; a missing file or broken YAML is a FixtureError."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FixtureError(source, "", "", "no such file.", "Check the path.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise FixtureError(source, "", "", f"cannot be read ({error}).") from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = f"not valid YAML: {error.problem or error.context}."
        raise FixtureError(source, where, "", problem) from None
    except yaml.YAMLError as error:
        raise FixtureError(source, "", "", f"not valid YAML: {error}.") from None
    return {} if data is None else data


class _Checker:
    """Type checks that name the entry and the field of the first problem."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, entry: str, field: str, problem: str, hint: str = "") -> FixtureError:
        return FixtureError(self.source, entry, field, problem, hint)

    def mapping(self, value, entry: str, field: str, allowed: Iterable[str]) -> dict:
        allowed = tuple(allowed)
        if not isinstance(value, dict):
            raise self.fail(entry, field, f"must be a mapping, not {_type(value)}.")
        for key in value:
            if not isinstance(key, str) or key not in allowed:
                raise self.fail(
                    entry,
                    f"{field}.{key}" if field else str(key),
                    "unknown key.",
                    f"Allowed keys here: {', '.join(allowed)}.",
                )
        return value

    def entries(self, data: dict, kind: str) -> list:
        value = data.get(kind, [])
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(kind, "", f"must be a list, not {_type(value)}.")
        return value

    def text(self, value, entry: str, field: str, *, required: bool = False) -> str:
        if not isinstance(value, str):
            raise self.fail(
                entry,
                field,
                f"must be text, not {_type(value)}.",
                "Quote values that YAML would read as numbers, dates or booleans.",
            )
        if required and not value.strip():
            raise self.fail(entry, field, "must not be empty.")
        return self.no_nul(value, entry, field)

    def no_nul(self, value: str, entry: str, field: str) -> str:
        # YAML's "\0" escape makes one; the admin's forms refuse it and PostgreSQL cannot
        # store it, so a fixture that loads here would fail there.
        if "\x00" in value:
            raise self.fail(entry, field, "contains a NUL character (\\0).", "Remove it.")
        return value

    def names(self, value, entry: str, field: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.fail(entry, field, f"must be a list, not {_type(value)}.")
        names = []
        for i, item in enumerate(value):
            name = self.text(item, entry, f"{field}[{i}]", required=True)
            if name in names:
                raise self.fail(entry, f"{field}[{i}]", f"{name!r} is listed twice.")
            names.append(name)
        return tuple(names)

    def value(self, model, name: str, value, entry: str, field: str = ""):
        """Type and validators of one model field, without touching the database."""
        model_field = model._meta.get_field(name)
        expected = _python_type(model_field)
        if type(value) is not expected:  # bool is an int subclass: no isinstance here
            raise self.fail(
                entry,
                field or name,
                f"must be {_TYPE_NAMES[expected]}, not {_type(value)}.",
                "Quote values that YAML would read as numbers, dates or booleans."
                if expected is str
                else "",
            )
        if expected is str:
            self.no_nul(value, entry, field or name)
        try:
            model_field.clean(value, None)
        except ValidationError as error:
            raise self.fail(entry, field or name, " ".join(error.messages)) from None
        return value

    def model(self, instance, entry: str, prefix: str = "", exclude=()) -> None:
        """The model's own validation (clean() included), without unique checks (queries)."""
        try:
            instance.full_clean(
                exclude=list(exclude), validate_unique=False, validate_constraints=False
            )
        except ValidationError as error:
            field, messages = next(iter(error.message_dict.items()))
            label = "" if field == "__all__" else f"{prefix}{field}"
            raise self.fail(entry, label, " ".join(messages)) from None


_TYPE_NAMES = {str: "text", bool: "true or false", int: "a whole number"}


def _given(item: dict, key: str, default):
    """An optional list or mapping; `groups:` with nothing after it (null) is empty too."""
    value = item.get(key)
    return default if value is None else value


def _python_type(field) -> type:
    if isinstance(field, models.BooleanField):
        return bool
    if isinstance(field, models.IntegerField):
        return int
    return str


def _type(value) -> str:
    if value is None:
        return "empty"
    return {
        bool: "true/false",
        int: "a number",
        float: "a number",
        str: "text",
        list: "a list",
        dict: "a mapping",
        datetime.date: "a date",
        datetime.datetime: "a date and time",
    }.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class GroupSpec:
    entry: str
    name: str
    description: str
    member_of: tuple[str, ...]


@dataclass(frozen=True)
class UserSpec:
    entry: str
    username: str
    password: str | None
    password_hash: str | None
    fields: dict
    attributes: tuple[tuple[str, str], ...]  # sorted by name, values in file order
    groups: tuple[str, ...]
    raw: dict


@dataclass(frozen=True)
class RuleSpec:
    entry: str
    fields: dict  # every rule field, defaults filled in


@dataclass(frozen=True)
class SpSpec:
    entry: str
    entity_id: str
    fields: dict  # every setting, defaults filled in
    endpoints: tuple[tuple, ...]  # (location, binding, index, is_default), by index
    rules: tuple[RuleSpec, ...]
    raw: dict  # as stored for a reset: metadata_file read in


@dataclass(frozen=True)
class Plan:
    source: str
    groups: tuple[GroupSpec, ...]
    users: tuple[UserSpec, ...]
    service_providers: tuple[SpSpec, ...]
    claim_rules: tuple[RuleSpec, ...]
    iam: Any = None  # idp.sts.fixtures.IamSpec; None: the file has no iam: section


def check(data: Any, *, source: str, base_dir: Path | None = None) -> Plan:
    """The whole fixture checked, with references and nesting, before anything is written.

    metadata_file is read relative to base_dir, and refused without one: data that did not
    come from a file (an API body, say) must not make the server read its files.
    """
    checker = _Checker(source)
    checker.mapping(data, "", "", TOP_LEVEL)
    groups = _check_groups(checker, checker.entries(data, "groups"))
    known = {g.name: g for g in groups}
    users = _check_users(checker, checker.entries(data, "users"), known)
    sps = _check_sps(checker, checker.entries(data, "service_providers"), base_dir)
    rules = _check_rules(checker, checker.entries(data, "claim_rules"), "claim_rules")
    iam = None
    if "iam" in data:  # the local STS's IAM slice (idp/sts/fixtures.py)
        from .sts import fixtures as sts_fixtures

        iam = sts_fixtures.check(checker, data["iam"], base_dir)
    return Plan(source, groups, users, sps, rules, iam)


def _check_groups(checker: _Checker, entries: list) -> tuple[GroupSpec, ...]:
    specs: dict[str, GroupSpec] = {}
    for i, item in enumerate(entries):
        entry = f"groups[{i}]"
        checker.mapping(item, entry, "", GROUP_KEYS)
        if "name" not in item:
            raise checker.fail(entry, "name", "is missing.")
        name = checker.value(Group, "name", item["name"], entry)
        entry = f"groups[{i}] ({name})"
        if name in specs:
            raise checker.fail(entry, "name", f"{name!r} is already {specs[name].entry}.")
        description = checker.value(Group, "description", item.get("description", ""), entry)
        parents = checker.names(_given(item, "member_of", []), entry, "member_of")
        specs[name] = GroupSpec(entry, name, description, parents)
    for spec in specs.values():
        for j, parent in enumerate(spec.member_of):
            if parent not in specs:
                raise checker.fail(
                    spec.entry,
                    f"member_of[{j}]",
                    f"no group {parent!r} in this file.",
                    "List every group under groups:.",
                )
    _refuse_cycles(checker, specs)
    return tuple(specs.values())


def _refuse_cycles(checker: _Checker, specs: dict[str, GroupSpec]) -> None:
    """Nesting must stay a hierarchy, as the admin enforces (users.models.check_parents).

    Only the file's edges can close a cycle: they point at groups the file names, so no
    path leaves the file's groups, and the database's own edges are acyclic already.
    """
    done: set[str] = set()
    for start in specs:
        if start in done:
            continue
        path: list[str] = []
        on_path: set[str] = set()
        stack = [(start, iter(specs[start].member_of))]
        path.append(start)
        on_path.add(start)
        while stack:
            name, parents = stack[-1]
            parent = next(parents, None)
            if parent is None:
                stack.pop()
                path.pop()
                on_path.discard(name)
                done.add(name)
            elif parent in on_path:
                loop = path[path.index(parent) :] + [parent]
                raise checker.fail(
                    specs[name].entry,
                    f"member_of[{specs[name].member_of.index(parent)}]",
                    f"makes {parent!r} a member of itself: {' -> '.join(loop)}.",
                    "Remove one of these memberships.",
                )
            elif parent not in done:
                stack.append((parent, iter(specs[parent].member_of)))
                path.append(parent)
                on_path.add(parent)


def _check_users(checker: _Checker, entries: list, groups: dict) -> tuple[UserSpec, ...]:
    specs: dict[str, UserSpec] = {}
    for i, item in enumerate(entries):
        entry = f"users[{i}]"
        checker.mapping(item, entry, "", USER_KEYS)
        if "username" not in item:
            raise checker.fail(entry, "username", "is missing.")
        username = checker.value(User, "username", item["username"], entry)
        entry = f"users[{i}] ({username})"
        if username in specs:
            raise checker.fail(
                entry, "username", f"{username!r} is already {specs[username].entry}."
            )
        password = item.get("password")
        password_hash = item.get("password_hash")
        if password is not None and password_hash is not None:
            raise checker.fail(entry, "password", "give password or password_hash, not both.")
        if password is not None:
            checker.text(password, entry, "password")
        if password_hash is not None:
            checker.text(password_hash, entry, "password_hash")
            if not password_hash.startswith("!"):  # "!…" is Django's unusable password
                try:
                    identify_hasher(password_hash)
                except ValueError:
                    raise checker.fail(
                        entry,
                        "password_hash",
                        "not a hash of any configured password hasher.",
                        "Use a hash from dump_fixtures, or give password instead.",
                    ) from None
        fields = {
            "email": "",
            "first_name": "",
            "last_name": "",
            "is_active": True,
            "is_staff": False,
            "is_superuser": False,
        }
        for name in USER_FIELDS:
            if name in item:
                fields[name] = checker.value(User, name, item[name], entry)
        attributes = _check_attributes(checker, _given(item, "attributes", {}), entry)
        member_of = checker.names(_given(item, "groups", []), entry, "groups")
        for j, group in enumerate(member_of):
            if group not in groups:
                raise checker.fail(
                    entry,
                    f"groups[{j}]",
                    f"no group {group!r} in this file.",
                    "List every group under groups:.",
                )
        specs[username] = UserSpec(
            entry, username, password, password_hash, fields, attributes, member_of, item
        )
    return tuple(specs.values())


def _check_attributes(checker: _Checker, value, entry: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise checker.fail(entry, "attributes", f"must be a mapping, not {_type(value)}.")
    pairs = []
    for name in sorted(value, key=str):
        field = f"attributes.{name}"
        if not isinstance(name, str):
            raise checker.fail(entry, field, "attribute names must be text.")
        checker.value(UserAttribute, "name", name, entry, field)
        values = value[name]
        values = [values] if isinstance(values, str) else values
        if not isinstance(values, list):
            raise checker.fail(
                entry,
                field,
                f"must be text or a list of text, not {_type(values)}.",
                "Quote values that YAML would read as numbers, dates or booleans.",
            )
        seen = set()
        for j, item in enumerate(values):
            checker.value(UserAttribute, "value", item, entry, f"{field}[{j}]")
            if item in seen:
                raise checker.fail(entry, f"{field}[{j}]", f"{item!r} is listed twice.")
            seen.add(item)
            pairs.append((name, item))
    return tuple(pairs)


def _check_rules(checker: _Checker, entries, where: str) -> tuple[RuleSpec, ...]:
    if not isinstance(entries, list):
        raise checker.fail(where, "", f"must be a list, not {_type(entries)}.")
    specs = []
    for i, item in enumerate(entries):
        entry = f"{where}[{i}]"
        specs.append(_check_rule(checker, item, entry))
    return tuple(specs)


def _check_rule(checker: _Checker, item, entry: str, trusted: bool = False) -> RuleSpec:
    checker.mapping(item, entry, "", RULE_FIELDS)
    if not trusted:
        for name, value in item.items():
            expected = _python_type(ClaimRule._meta.get_field(name))
            if type(value) is not expected:
                raise checker.fail(
                    entry, name, f"must be {_TYPE_NAMES[expected]}, not {_type(value)}."
                )
            if expected is str:
                checker.no_nul(value, entry, name)
    rule = ClaimRule(**item)
    checker.model(rule, entry, exclude=["service_provider"])
    return RuleSpec(entry, {name: getattr(rule, name) for name in RULE_FIELDS})


def _check_sps(checker: _Checker, entries: list, base_dir: Path | None) -> tuple[SpSpec, ...]:
    specs: dict[str, SpSpec] = {}
    for i, item in enumerate(entries):
        spec = _check_sp(checker, item, f"service_providers[{i}]", base_dir)
        if spec.entity_id in specs:
            raise checker.fail(
                spec.entry,
                "entity_id",
                f"{spec.entity_id!r} is already {specs[spec.entity_id].entry}.",
            )
        specs[spec.entity_id] = spec
    return tuple(specs.values())


def _check_sp(checker: _Checker, item, entry: str, base_dir: Path | None) -> SpSpec:
    checker.mapping(item, entry, "", (*SP_SPECIAL_KEYS, *SP_SETTINGS))
    raw = dict(item)
    settings: dict = {}
    endpoints: list[tuple] = []
    rule_set = ""
    entity_id = ""
    name = ""
    if "preset" in item:
        preset_name = checker.text(item["preset"], entry, "preset")
        preset = PRESETS.get(preset_name)
        if preset is None:
            raise checker.fail(
                entry,
                "preset",
                f"no preset {preset_name!r}.",
                f"Presets: {', '.join(sorted(PRESETS))}.",
            )
        entity_id, name, rule_set = preset.entity_id, preset.name, preset.rule_set
        settings.update(preset.settings)
        endpoints = [
            (location, c.BINDING_POST, i, i == 0) for i, location in enumerate(preset.endpoints)
        ]
    if "metadata" in item and "metadata_file" in item:
        raise checker.fail(entry, "metadata_file", "give metadata or metadata_file, not both.")
    xml = None
    if "metadata_file" in item:
        relative = checker.text(item["metadata_file"], entry, "metadata_file", required=True)
        if base_dir is None:
            raise checker.fail(
                entry,
                "metadata_file",
                "only a fixture file can name a metadata file.",
                "Give the metadata inline (metadata: ...).",
            )
        path = base_dir / relative
        try:
            xml = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise checker.fail(
                entry,
                "metadata_file",
                f"cannot read {path} ({error.__class__.__name__}).",
                "The path is relative to the fixture file.",
            ) from None
        del raw["metadata_file"]
        raw["metadata"] = xml
    elif "metadata" in item:
        xml = checker.text(item["metadata"], entry, "metadata", required=True)
    if xml is not None:
        field = "metadata_file" if "metadata_file" in item else "metadata"
        try:
            described = parse_sp_metadata(xml.encode("utf-8"))
        except SamlError as error:
            raise checker.fail(
                entry, field, f"{error.title}: {error.detail}".rstrip(": "), error.hint
            ) from None
        entity_id = described.entity_id
        name = name or described.entity_id[:200]
        settings.update(_metadata_settings(described))
        settings["metadata_xml"] = xml
        if described.assertion_consumer_services:
            endpoints = [
                (e.location, e.binding, e.index, e.is_default)
                for e in described.assertion_consumer_services
            ]
    if "entity_id" in item:
        given = checker.value(ServiceProvider, "entity_id", item["entity_id"], entry)
        if xml is not None and given != entity_id:
            raise checker.fail(
                entry, "entity_id", f"the metadata describes {entity_id!r}, not {given!r}."
            )
        entity_id = given
    if not entity_id:
        raise checker.fail(entry, "entity_id", "is missing.", "Give entity_id, metadata or preset.")
    entry = f"{entry} ({entity_id})"
    if "rule_set" in item:
        rule_set = checker.text(item["rule_set"], entry, "rule_set")
        if rule_set not in RULE_SETS:
            raise checker.fail(
                entry,
                "rule_set",
                f"no rule set {rule_set!r}.",
                f"Rule sets: {', '.join(sorted(RULE_SETS))}.",
            )
    if rule_set:
        settings.update(RULE_SETS[rule_set].sp_settings)
    for key in SP_SETTINGS:
        if key in item:
            settings[key] = item[key]
            checker.value(ServiceProvider, key, item[key], entry)
    settings.setdefault("name", name or entity_id[:200])
    if "endpoints" in item:
        endpoints = _check_endpoints(checker, _given(item, "endpoints", []), entry)
    sp = ServiceProvider(entity_id=entity_id, **settings)
    checker.model(sp, entry)
    rules = []
    if rule_set:
        for j, rule in enumerate(RULE_SETS[rule_set].rules):
            rules.append(_check_rule(checker, rule, f"{entry} rule_set {rule_set}[{j}]", True))
    rules += _check_rules(checker, _given(item, "claim_rules", []), f"{entry} claim_rules")
    fields = {key: getattr(sp, key) for key in SP_SETTINGS}
    return SpSpec(
        entry, entity_id, fields, tuple(sorted(endpoints, key=lambda e: e[2])), tuple(rules), raw
    )


def _check_endpoints(checker: _Checker, value, entry: str) -> list[tuple]:
    if not isinstance(value, list):
        raise checker.fail(entry, "endpoints", f"must be a list, not {_type(value)}.")
    endpoints, indexes = [], set()
    for i, item in enumerate(value):
        field = f"endpoints[{i}]"
        if isinstance(item, str):
            item = {"location": item}
        checker.mapping(item, entry, field, ENDPOINT_KEYS)
        if "location" not in item:
            raise checker.fail(entry, f"{field}.location", "is missing.")
        values = {"binding": c.BINDING_POST, "index": i, "is_default": i == 0, **item}
        for key, v in values.items():
            checker.value(AssertionConsumerService, key, v, entry, f"{field}.{key}")
        if values["index"] in indexes:
            raise checker.fail(entry, f"{field}.index", f"index {values['index']} is used twice.")
        indexes.add(values["index"])
        endpoints.append(tuple(values[k] for k in ENDPOINT_KEYS))
    return endpoints


def _metadata_settings(described) -> dict:
    """What registry.register_from_metadata takes from metadata, as settings."""
    settings: dict = {"require_signed_requests": described.authn_requests_signed}
    if described.signing_certificates:
        settings["request_certificate"] = described.signing_certificates[0]
    if described.encryption_certificates:
        settings["encryption_certificate"] = described.encryption_certificates[0]
    if described.want_assertions_signed:
        settings["sign_assertion"] = True
    supported = [f for f in described.name_id_formats if f in c.NAMEID_FORMATS]
    if supported:
        settings["nameid_format"] = supported[0]
        settings["nameid_source"] = {
            c.NAMEID_EMAIL: ServiceProvider.NameIDSource.EMAIL,
            c.NAMEID_TRANSIENT: ServiceProvider.NameIDSource.TRANSIENT,
            c.NAMEID_UNSPECIFIED: ServiceProvider.NameIDSource.USERNAME,
        }.get(supported[0], ServiceProvider.NameIDSource.PERSISTENT)
    return settings


# --- applying --------------------------------------------------------------------------


def load(
    data: Any,
    *,
    source: str,
    prune: bool = False,
    missing_only: bool = False,
    base_dir: Path | None = None,
) -> Summary:
    """Apply a fixture in one transaction and remember it for `reset()`.

    missing_only (seed_demo without --reset): create what the database lacks and leave
    every existing entry as it is.
    """
    plan = check(data, source=source, base_dir=base_dir)
    with transaction.atomic(), cache.one_bump():
        # Two resets at once (two workers, PostgreSQL) would insert the same users: the
        # second waits here. SQLite's IMMEDIATE transactions serialise them anyway.
        list(LoadedFixture.objects.select_for_update().filter(pk=1).values_list("pk"))
        writer = _Writer(plan, prune=prune, missing_only=missing_only)
        summary = writer.run()
        if plan.iam is not None:
            from .sts import fixtures as sts_fixtures

            sts_fixtures.apply(
                plan.iam,
                _Checker(source),
                prune=prune,
                missing_only=missing_only,
                now=timezone.now(),
            )
        LoadedFixture.objects.update_or_create(
            pk=1,
            defaults={
                "source": source,
                "data": _stored(data, plan, writer.password_hashes),
                "loaded_at": timezone.now(),
            },
        )
        if writer.changed:
            # The writes below bypass Django's signals; every worker must still see them.
            cache.bump()
    return summary


def load_file(path: str | Path, *, prune: bool = False, missing_only: bool = False) -> Summary:
    data = read(path)
    return load(
        data, source=str(path), prune=prune, missing_only=missing_only, base_dir=Path(path).parent
    )


def reset() -> Summary:
    """Re-apply the last loaded fixture with prune: what a test suite calls between tests."""
    stored = LoadedFixture.objects.filter(pk=1).first()
    if stored is None:
        raise SamlError(
            "No fixture has been loaded",
            "There is no fixture state to restore.",
            "Load one first: python manage.py load_fixtures FILE (make run loads the demo).",
            status=409,
        )
    return load(stored.data, source=stored.source, prune=True)


def _stored(data: dict, plan: Plan, hashes: dict[str, str]) -> dict:
    """The fixture as a reset re-applies it: hashes for passwords, metadata files read in."""
    users = []
    for spec in plan.users:
        raw = {k: v for k, v in spec.raw.items() if k != "password"}
        if spec.username in hashes:
            raw["password_hash"] = hashes[spec.username]
        users.append(raw)
    return {
        "groups": data.get("groups") or [],
        "users": users,
        "service_providers": [spec.raw for spec in plan.service_providers],
        "claim_rules": data.get("claim_rules") or [],
        **({"iam": plan.iam.raw} if plan.iam is not None else {}),
    }


class _Writer:
    """Reads each table once into maps, then writes the differences kind by kind."""

    def __init__(self, plan: Plan, *, prune: bool, missing_only: bool):
        self.plan = plan
        self.prune = prune
        self.missing_only = missing_only
        self.counts = {kind: Counts() for kind in KINDS}
        self.changed = False
        self.password_hashes: dict[str, str] = {}
        self._hashed: dict[str, str] = {}
        self._verified: dict[tuple[str, str], bool] = {}

    def count(self, kind: str, created: int = 0, updated: int = 0, deleted: int = 0) -> None:
        now = self.counts[kind]
        self.counts[kind] = Counts(
            now.created + created, now.updated + updated, now.deleted + deleted
        )
        self.changed = self.changed or bool(created or updated or deleted)

    def run(self) -> Summary:
        group_ids = self._groups()
        self._users(group_ids)
        self._service_providers()
        self._global_rules()
        if self.prune:
            self._prune()
        return Summary(self.plan.source, **self.counts)

    # groups

    def _groups(self) -> dict[str, int]:
        existing = {row["name"]: row for row in Group.objects.values("id", "name", "description")}
        written = [s for s in self.plan.groups if not (self.missing_only and s.name in existing)]
        new = [
            Group(name=s.name, description=s.description) for s in written if s.name not in existing
        ]
        changed = [
            Group(pk=existing[s.name]["id"], name=s.name, description=s.description)
            for s in written
            if s.name in existing and existing[s.name]["description"] != s.description
        ]
        _insert(Group, new)
        _update(Group, ["description"], changed)
        ids = (
            dict(Group.objects.values_list("name", "id"))
            if new
            else {name: row["id"] for name, row in existing.items()}
        )
        through = Group.member_of.through
        parents: dict[int, dict[int, int]] = defaultdict(dict)
        for pk, child, parent in through.objects.values_list("id", "from_group_id", "to_group_id"):
            parents[child][parent] = pk
        add, remove, touched = [], [], set()
        for spec in written:
            child = ids[spec.name]
            want = {ids[name] for name in spec.member_of}
            have = parents.get(child, {})
            add += [(child, p) for p in want - have.keys()]
            gone = [pk for p, pk in have.items() if p not in want]
            remove += gone
            if gone or want - have.keys():
                touched.add(spec.name)
        _delete(through, remove)
        _insert_plain(through, ["from_group", "to_group"], add)
        updated = {g.name for g in changed} | (touched & existing.keys())
        self.count("groups", created=len(new), updated=len(updated))
        return ids

    # users

    def _users(self, group_ids: dict[str, int]) -> None:
        columns = ("id", "username", "password", *USER_FIELDS)
        existing = {row["username"]: row for row in User.objects.values(*columns)}
        new, changed, written = [], [], []
        for spec in self.plan.users:
            row = existing.get(spec.username)
            password = self._password(spec, row["password"] if row else None)
            if password is not None:
                self.password_hashes[spec.username] = password
            if row is not None and self.missing_only:
                continue
            written.append(spec)
            values = {"password": password, **spec.fields}
            if row is None:
                new.append(User(username=spec.username, **values))
            elif any(row[k] != v for k, v in values.items()):
                changed.append(User(pk=row["id"], username=spec.username, **values))
        _insert(User, new)
        _update(User, ["password", *USER_FIELDS], changed)
        ids = (
            dict(User.objects.values_list("username", "id"))
            if new
            else {name: row["id"] for name, row in existing.items()}
        )
        updated = {user.username for user in changed}
        updated |= self._attributes(written, ids)
        updated |= self._memberships(written, ids, group_ids)
        self.count("users", created=len(new), updated=len(updated - {u.username for u in new}))

    def _password(self, spec: UserSpec, current: str | None) -> str | None:
        """The hash to store; hashing once per distinct text, checking once per hash."""
        if spec.password_hash is not None:
            return spec.password_hash
        if spec.password is None:
            return current if current is not None else make_password(None)
        if current is not None and _checkable(current):
            key = (current, spec.password)
            if key not in self._verified:
                self._verified[key] = check_password(spec.password, current)
            if self._verified[key]:
                return current
        if spec.password not in self._hashed:
            self._hashed[spec.password] = make_password(spec.password)
        return self._hashed[spec.password]

    def _attributes(self, written: list[UserSpec], ids: dict[str, int]) -> set[str]:
        have: dict[int, list[tuple[int, str, str]]] = defaultdict(list)
        rows = UserAttribute.objects.order_by("user_id", "name", "id")
        for pk, user_id, name, value in rows.values_list("id", "user_id", "name", "value"):
            have[user_id].append((pk, name, value))
        add, remove, updated = [], [], set()
        for spec in written:
            user_id = ids[spec.username]
            current = have.get(user_id, [])
            if [(n, v) for _, n, v in current] == list(spec.attributes):
                continue
            # Replaced whole, so the values keep the file's order (ids order them).
            remove += [pk for pk, _, _ in current]
            add += [(user_id, name, value) for name, value in spec.attributes]
            updated.add(spec.username)
        _delete(UserAttribute, remove)
        _insert_plain(UserAttribute, ["user", "name", "value"], add)
        return updated

    def _memberships(
        self, written: list[UserSpec], ids: dict[str, int], group_ids: dict[str, int]
    ) -> set[str]:
        through = Group.members.through
        have: dict[int, dict[int, int]] = defaultdict(dict)
        for pk, user_id, group_id in through.objects.values_list("id", "user_id", "group_id"):
            have[user_id][group_id] = pk
        add, remove, updated = [], [], set()
        for spec in written:
            user_id = ids[spec.username]
            want = {group_ids[name] for name in spec.groups}
            current = have.get(user_id, {})
            new = want - current.keys()
            gone = [pk for group_id, pk in current.items() if group_id not in want]
            if new or gone:
                updated.add(spec.username)
            add += [(user_id, group_id) for group_id in new]
            remove += gone
        _delete(through, remove)
        _insert_plain(through, ["user", "group"], add)
        return updated

    # service providers and claim rules (a handful: the ORM, with its signals)

    def _service_providers(self) -> None:
        existing = {sp.entity_id: sp for sp in ServiceProvider.objects.all()}
        endpoints: dict[int, list[tuple]] = defaultdict(list)
        for row in AssertionConsumerService.objects.order_by("index").values(
            "service_provider_id", *ENDPOINT_KEYS
        ):
            endpoints[row["service_provider_id"]].append(tuple(row[k] for k in ENDPOINT_KEYS))
        rules = _rules_by_scope()
        for spec in self.plan.service_providers:
            sp = existing.get(spec.entity_id)
            if sp is not None and self.missing_only:
                continue
            updated = False
            if sp is None:
                sp = ServiceProvider(entity_id=spec.entity_id, **spec.fields)
                sp.save()
            elif any(getattr(sp, k) != v for k, v in spec.fields.items()):
                for key, value in spec.fields.items():
                    setattr(sp, key, value)
                sp.save()
                updated = True
            if endpoints.get(sp.pk, []) != list(spec.endpoints):
                AssertionConsumerService.objects.filter(service_provider=sp).delete()
                AssertionConsumerService.objects.bulk_create(
                    AssertionConsumerService(
                        service_provider=sp, **dict(zip(ENDPOINT_KEYS, e, strict=True))
                    )
                    for e in spec.endpoints
                )
                updated = True
            self._sync_rules(sp.pk, spec.rules, rules.get(sp.pk, []), delete_unnamed=True)
            if spec.entity_id not in existing:
                self.count("service_providers", created=1)
            elif updated:
                self.count("service_providers", updated=1)

    def _global_rules(self) -> None:
        existing = _rules_by_scope().get(None, [])
        if self.missing_only:
            present = {key for key, _ in _keyed(existing)}
            wanted = [spec for key, spec in _keyed(self.plan.claim_rules) if key not in present]
            self._sync_rules(None, wanted, [], delete_unnamed=False)
            return
        self._sync_rules(None, self.plan.claim_rules, existing, delete_unnamed=self.prune)

    def _sync_rules(self, sp_id, specs, existing: list[ClaimRule], *, delete_unnamed: bool) -> None:
        """Rules have no name: (order, attribute, occurrence) is their key here."""
        current = dict(_keyed(existing))
        create, update = [], []
        for key, spec in _keyed(specs):
            rule = current.pop(key, None)
            if rule is None:
                create.append(ClaimRule(service_provider_id=sp_id, **spec.fields))
            elif any(getattr(rule, k) != v for k, v in spec.fields.items()):
                for name, value in spec.fields.items():
                    setattr(rule, name, value)
                update.append(rule)
        ClaimRule.objects.bulk_create(create)
        if update:
            ClaimRule.objects.bulk_update(update, list(RULE_FIELDS))
        doomed = [rule.pk for rule in current.values()] if delete_unnamed else []
        if doomed:
            ClaimRule.objects.filter(pk__in=doomed).delete()
        self.count("claim_rules", created=len(create), updated=len(update), deleted=len(doomed))

    # prune

    def _prune(self) -> None:
        named = {spec.username for spec in self.plan.users}
        # Staff and superusers are operators: a reset must not delete the user whose
        # API token asked for it, nor lock everyone out of the admin.
        doomed = [
            pk
            for pk, username in User.objects.filter(is_staff=False, is_superuser=False).values_list(
                "id", "username"
            )
            if username not in named
        ]
        for chunk in _chunks(doomed):
            User.objects.filter(pk__in=chunk).delete()
        self.count("users", deleted=len(doomed))
        named = {spec.name for spec in self.plan.groups}
        doomed = [pk for pk, name in Group.objects.values_list("id", "name") if name not in named]
        for chunk in _chunks(doomed):
            Group.objects.filter(pk__in=chunk).delete()
        self.count("groups", deleted=len(doomed))
        named = {spec.entity_id for spec in self.plan.service_providers}
        doomed = [
            pk
            for pk, entity_id in ServiceProvider.objects.values_list("id", "entity_id")
            if entity_id not in named
        ]
        if doomed:
            rules = ClaimRule.objects.filter(service_provider_id__in=doomed).count()
            ServiceProvider.objects.filter(pk__in=doomed).delete()
            self.count("claim_rules", deleted=rules)
        self.count("service_providers", deleted=len(doomed))


def _checkable(encoded: str) -> bool:
    """Whether check_password can judge this hash without its deliberate fake run."""
    if not encoded or encoded.startswith("!"):
        return False
    try:
        identify_hasher(encoded)
    except ValueError:
        return False
    return True


def _rules_by_scope() -> dict[int | None, list[ClaimRule]]:
    scopes: dict[int | None, list[ClaimRule]] = defaultdict(list)
    for rule in ClaimRule.objects.order_by("id"):
        scopes[rule.service_provider_id].append(rule)
    return scopes


def _keyed(rules) -> list[tuple[tuple, Any]]:
    """Each rule with its key: order, attribute name and occurrence of that pair."""
    seen: dict[tuple, int] = defaultdict(int)
    keyed = []
    for rule in rules:
        fields = rule.fields if isinstance(rule, RuleSpec) else vars(rule)
        pair = (fields["order"], fields["attribute_name"])
        keyed.append(((*pair, seen[pair]), rule))
        seen[pair] += 1
    return keyed


def _chunks(items: list, size: int = 500):
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


# One executemany per kind: a single statement for the database driver, however many
# rows (bulk_create would split it into 999-parameter batches on SQLite). Values go
# through each field's own conversion, as the ORM's would.


def _insert(model, objects: list) -> None:
    if not objects:
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    sql = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608 (names from _meta)
        quote(model._meta.db_table),
        ", ".join(quote(f.column) for f in fields),
        ", ".join(["%s"] * len(fields)),
    )
    rows = [[f.get_db_prep_save(f.pre_save(o, True), connection) for f in fields] for o in objects]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _insert_plain(model, names: list[str], rows: list[tuple]) -> None:
    """Rows of ids and text, which every backend stores as they are: no model instances
    (building 30,000 of them took longer than the inserts)."""
    if not rows:
        return
    quote = connection.ops.quote_name
    columns = [model._meta.get_field(name).column for name in names]
    sql = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608 (names from _meta)
        quote(model._meta.db_table),
        ", ".join(quote(column) for column in columns),
        ", ".join(["%s"] * len(columns)),
    )
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _update(model, names: list[str], objects: list) -> None:
    if not objects:
        return
    fields = [model._meta.get_field(name) for name in names]
    quote = connection.ops.quote_name
    sql = "UPDATE {} SET {} WHERE {} = %s".format(  # noqa: S608 (names from _meta)
        quote(model._meta.db_table),
        ", ".join(f"{quote(f.column)} = %s" for f in fields),
        quote(model._meta.pk.column),
    )
    rows = [
        [f.get_db_prep_save(getattr(o, f.attname), connection) for f in fields] + [o.pk]
        for o in objects
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _delete(model, pks: list[int]) -> None:
    """Rows no signal or cascade cares about (attribute values, memberships)."""
    if not pks:
        return
    quote = connection.ops.quote_name
    table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
    sql = f"DELETE FROM {table} WHERE {pk} = %s"  # noqa: S608 (names from _meta)
    with connection.cursor() as cursor:
        cursor.executemany(sql, [[pk] for pk in pks])


# --- dumping ---------------------------------------------------------------------------


def dump() -> dict:
    """The current state in the fixture format; loading it gives the same state.

    Presets, rule sets and metadata files come out resolved: explicit settings,
    endpoints and rules (the imported metadata as metadata_xml).
    """
    group_names = dict(Group.objects.values_list("id", "name"))
    parents: dict[int, list[str]] = defaultdict(list)
    for child, parent in Group.member_of.through.objects.values_list(
        "from_group_id", "to_group_id"
    ):
        parents[child].append(group_names[parent])
    groups = []
    for row in Group.objects.order_by("name").values("id", "name", "description"):
        entry = {"name": row["name"]}
        if row["description"]:
            entry["description"] = row["description"]
        if parents.get(row["id"]):
            entry["member_of"] = sorted(parents[row["id"]])
        groups.append(entry)

    attributes: dict[int, dict[str, list[str]]] = defaultdict(dict)
    rows = UserAttribute.objects.order_by("user_id", "name", "id")
    for user_id, name, value in rows.values_list("user_id", "name", "value"):
        attributes[user_id].setdefault(name, []).append(value)
    memberships: dict[int, list[str]] = defaultdict(list)
    for user_id, group_id in Group.members.through.objects.values_list("user_id", "group_id"):
        memberships[user_id].append(group_names[group_id])
    defaults = {"is_active": True, "is_staff": False, "is_superuser": False}
    users = []
    for row in User.objects.order_by("username").values("id", "username", "password", *USER_FIELDS):
        entry = {"username": row["username"], "password_hash": row["password"]}
        for name in USER_FIELDS:
            if row[name] != defaults.get(name, ""):
                entry[name] = row[name]
        if attributes.get(row["id"]):
            entry["attributes"] = attributes[row["id"]]
        if memberships.get(row["id"]):
            entry["groups"] = sorted(memberships[row["id"]])
        users.append(entry)

    rules = _rules_by_scope()
    endpoints: dict[int, list[dict]] = defaultdict(list)
    for acs in AssertionConsumerService.objects.order_by("index"):
        endpoints[acs.service_provider_id].append(_endpoint_entry(acs))
    sps = []
    for sp in ServiceProvider.objects.order_by("entity_id"):
        entry = {"entity_id": sp.entity_id, "name": sp.name}
        for name in SP_SETTINGS:
            value = getattr(sp, name)
            if name != "name" and value != ServiceProvider._meta.get_field(name).get_default():
                entry[name] = value
        entry["endpoints"] = endpoints.get(sp.pk, [])
        entry["claim_rules"] = [_rule_entry(rule) for rule in _ordered(rules.get(sp.pk, []))]
        sps.append(entry)
    return {
        "groups": groups,
        "users": users,
        "service_providers": sps,
        "claim_rules": [_rule_entry(rule) for rule in _ordered(rules.get(None, []))],
        **_iam_dump(),
    }


def _iam_dump() -> dict:
    from .sts import fixtures as sts_fixtures

    return sts_fixtures.dump()


def _ordered(rules: list[ClaimRule]) -> list[ClaimRule]:
    return sorted(rules, key=lambda rule: (rule.order, rule.id))


def _endpoint_entry(acs: AssertionConsumerService) -> dict:
    entry = {"location": acs.location, "index": acs.index}
    if acs.binding != c.BINDING_POST:
        entry["binding"] = acs.binding
    entry["is_default"] = acs.is_default
    return entry


def _rule_entry(rule: ClaimRule) -> dict:
    entry = {"order": rule.order, "attribute_name": rule.attribute_name, "source": rule.source}
    for name in RULE_FIELDS:
        if name in entry:
            continue
        value = getattr(rule, name)
        if value != ClaimRule._meta.get_field(name).get_default():
            entry[name] = value
    return entry


class _Dumper(yaml.SafeDumper):
    """Multi-line text (certificates, metadata) as literal blocks, readable in a diff."""


def _text(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def to_yaml(data: dict) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
