"""The `iam:` section of a fixture file: the local IAM's SAML providers and roles.

    iam:
      saml_providers: [{name, account?, metadata: fedmock | <XML text>, metadata_file?}]
      roles:          [{name, account?, path?, trust_policy: {…} | <JSON text>,
                        max_session_duration?, description?}]

`metadata: fedmock` is this IdP's metadata when the fixture is loaded: a snapshot, as
IAM holds one, so a later key rotation needs `sync_iam_provider --endpoint-url …/aws/`
just as real IAM does (that is one of the failures the local STS reproduces). `account`
defaults to the local IAM's default account (state.DEFAULT_ACCOUNT). As for the other
kinds, what the file names ends up as it says, `missing_only` only creates, `prune`
deletes what it does not name; a fixture without `iam:` leaves the local IAM alone.
idp/fixtures/ calls check() before anything is written and apply() in its transaction.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

from django.db.models import CharField, IntegerField, Value

from . import state
from .errors import StsError
from .models import IamGeneration, Role, SamlProvider

IAM_KEYS = ("saml_providers", "roles")
PROVIDER_KEYS = ("name", "account", "metadata", "metadata_file")
ROLE_KEYS = ("name", "account", "path", "trust_policy", "max_session_duration", "description")
OWN_METADATA = "fedmock"


@dataclass(frozen=True)
class ProviderSpec:
    account: str
    name: str
    metadata: str  # OWN_METADATA or the document


@dataclass(frozen=True)
class RoleSpec:
    account: str
    name: str
    path: str
    trust_policy: str
    max_session_duration: int
    description: str


@dataclass(frozen=True)
class IamSpec:
    providers: tuple[ProviderSpec, ...]
    roles: tuple[RoleSpec, ...]
    raw: dict = field(default_factory=dict)  # as stored for a reset: metadata_file read in


def _refused(checker, entry: str, name: str, error: StsError):
    reason = "; ".join(error.explanation) or error.message
    return checker.fail(entry, name, f"{error.code}: {error.message} ({reason})")


def _account(checker, item: dict, entry: str) -> str:
    account = item.get("account", state.DEFAULT_ACCOUNT)
    if not isinstance(account, str) or not state.ACCOUNT.fullmatch(account):
        raise checker.fail(
            entry, "account", "must be 12 digits.", "Quote it: account: '111122223333'."
        )
    return account


def check(checker, value, base_dir: Path | None) -> IamSpec:
    if value is None:
        return IamSpec((), (), {})
    checker.mapping(value, "iam", "", IAM_KEYS)
    providers, raw_providers = [], []
    for i, item in enumerate(checker.entries(value, "saml_providers")):
        entry = f"iam.saml_providers[{i}]"
        checker.mapping(item, entry, "", PROVIDER_KEYS)
        name = checker.text(item.get("name"), entry, "name", required=True)
        if not state.PROVIDER_NAME.fullmatch(name):
            raise checker.fail(entry, "name", "1 to 128 of A-Z a-z 0-9 . _ - (R15).")
        account = _account(checker, item, entry)
        if ("metadata" in item) == ("metadata_file" in item):
            raise checker.fail(
                entry,
                "metadata",
                "give exactly one of metadata and metadata_file.",
                "metadata: fedmock takes this IdP's own metadata.",
            )
        if "metadata_file" in item:
            path = checker.text(item["metadata_file"], entry, "metadata_file", required=True)
            if base_dir is None:
                raise checker.fail(entry, "metadata_file", "only a fixture file may name one.")
            try:
                metadata = (base_dir / path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                raise checker.fail(entry, "metadata_file", f"cannot be read: {error}") from None
        else:
            metadata = checker.text(item["metadata"], entry, "metadata", required=True)
        if metadata != OWN_METADATA:
            try:
                state.check_metadata(metadata)
            except StsError as error:
                raise _refused(checker, entry, "metadata", error) from None
        if any((p.account, p.name) == (account, name) for p in providers):
            raise checker.fail(entry, "name", f"{name!r} is listed twice for account {account}.")
        providers.append(ProviderSpec(account, name, metadata))
        raw_providers.append({"name": name, "account": account, "metadata": metadata})
    roles = []
    for i, item in enumerate(checker.entries(value, "roles")):
        entry = f"iam.roles[{i}]"
        checker.mapping(item, entry, "", ROLE_KEYS)
        name = checker.text(item.get("name"), entry, "name", required=True)
        account = _account(checker, item, entry)
        path = checker.text(item.get("path", "/"), entry, "path", required=True)
        duration = item.get("max_session_duration", state.SESSION_MIN)
        if type(duration) is not int:
            raise checker.fail(entry, "max_session_duration", "must be a whole number.")
        description = checker.text(item.get("description", ""), entry, "description")
        trust = item.get("trust_policy")
        if isinstance(trust, dict):
            trust = json.dumps(trust, indent=2)
        if not isinstance(trust, str):
            raise checker.fail(entry, "trust_policy", "must be a mapping or JSON text.")
        try:
            state.check_role_params(name, path, duration)
            state.check_trust_policy(trust)
        except StsError as error:
            raise _refused(checker, entry, "trust_policy", error) from None
        if any((r.account, r.name.lower()) == (account, name.lower()) for r in roles):
            raise checker.fail(entry, "name", f"{name!r} is listed twice for account {account}.")
        roles.append(RoleSpec(account, name, path, trust, duration, description))
    raw = {
        "saml_providers": raw_providers,
        "roles": [dict(item) for item in value.get("roles") or []],
    }
    return IamSpec(tuple(providers), tuple(roles), raw)


def _own_metadata(checker) -> str:
    """This IdP's metadata now; "" (taken at first use, state.py) while it has no key yet:
    `make run` seeds the demo before `ensure_signing_key` creates the first one."""
    from idp import identity, keys

    if not keys.published_keys():
        return state.PENDING_SNAPSHOT
    document = identity.metadata_xml().decode()
    try:
        state.check_metadata(document)
    except StsError as error:
        raise _refused(checker, "iam.saml_providers", "metadata", error) from None
    return document


def apply(spec: IamSpec, checker, *, prune: bool, missing_only: bool, now) -> bool:
    """Write the spec (inside the fixture's transaction); whether anything changed."""
    from moto.iam.utils import random_role_id

    changed = False
    own = None
    existing = {(row.account_id, row.name): row for row in SamlProvider.objects.all()}
    for provider in spec.providers:
        row = existing.pop((provider.account, provider.name), None)
        if row is not None and missing_only:
            continue
        if provider.metadata == OWN_METADATA and own is None:
            own = _own_metadata(checker)
        metadata = own if provider.metadata == OWN_METADATA else provider.metadata
        if row is None:
            SamlProvider.objects.create(
                account_id=provider.account, name=provider.name, metadata=metadata, created_at=now
            )
            changed = True
        elif row.metadata != metadata:
            row.metadata = metadata
            row.save(update_fields=["metadata"])
            changed = True
    if prune and existing:
        SamlProvider.objects.filter(pk__in=[row.pk for row in existing.values()]).delete()
        changed = True

    roles = {(row.account_id, row.name.lower()): row for row in Role.objects.all()}
    for role in spec.roles:
        row = roles.pop((role.account, role.name.lower()), None)
        if row is not None and missing_only:
            continue
        wanted = {
            "name": role.name,
            "path": role.path,
            "trust_policy": role.trust_policy,
            "max_session_duration": role.max_session_duration,
            "description": role.description,
        }
        if row is None:
            Role.objects.create(
                account_id=role.account,
                role_id=random_role_id(role.account),
                created_at=now,
                **wanted,
            )
            changed = True
        elif any(getattr(row, name) != value for name, value in wanted.items()):
            for name, value in wanted.items():
                setattr(row, name, value)
            row.save()
            changed = True
    if prune and roles:
        Role.objects.filter(pk__in=[row.pk for row in roles.values()]).delete()
        changed = True
    if changed:
        IamGeneration.bump()
        state.forget()
    return changed


def dump() -> dict:
    """The local IAM in the fixture format ({} when it is empty).

    One query for both tables (UNION ALL): a dump's statements are bounded (a test
    holds the whole dump to ten), whatever is in it.
    """
    text, number = CharField(), IntegerField()
    providers = SamlProvider.objects.values_list(
        Value("saml_providers", output_field=text),
        "account_id",
        "name",
        "metadata",
        Value("/", output_field=text),
        Value(0, output_field=number),
        Value("", output_field=text),
    )
    roles = Role.objects.values_list(
        Value("roles", output_field=text),
        "account_id",
        "name",
        "trust_policy",
        "path",
        "max_session_duration",
        "description",
    )
    found: dict[str, list[dict]] = {"saml_providers": [], "roles": []}
    for kind, account, name, document, path, duration, description in sorted(
        providers.union(roles, all=True)
    ):
        if kind == "saml_providers":
            found[kind].append({"name": name, "account": account, "metadata": document})
            continue
        entry = {"name": name, "account": account}
        if path != "/":
            entry["path"] = path
        try:
            entry["trust_policy"] = json.loads(document)
        except ValueError:
            entry["trust_policy"] = document
        entry["max_session_duration"] = duration
        if description:
            entry["description"] = description
        found[kind].append(entry)
    return {"iam": found} if found["saml_providers"] or found["roles"] else {}
