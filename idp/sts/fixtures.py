"""The `iam:` section of a fixture file: the local IAM's SAML and OIDC providers and roles.

    iam:
      saml_providers: [{name, account?, metadata: fedmock | <XML text>, metadata_file?}]
      oidc_providers: [{url: fedmock | <https:// issuer>, account?, client_ids?: [id],
                        thumbprints?: [40 hex digits]}]
      roles:          [{name, account?, path?, trust_policy: {…} | <JSON text>,
                        max_session_duration?, description?}]

`metadata: fedmock` is this IdP's metadata when the fixture is loaded: a snapshot, as
IAM holds one, so a later key rotation needs `sync_iam_provider --endpoint-url …/aws/`
just as real IAM does (that is one of the failures the local STS reproduces).
`url: fedmock` is this IdP's OIDC issuer ({IDP_BASE_URL}/oidc) when the fixture is loaded,
and `{fedmock-oidc}` in a trust policy is IAM's name for it (host:port/oidc), so a role can
name `arn:aws:iam::ACCOUNT:oidc-provider/{fedmock-oidc}` and the condition keys
`{fedmock-oidc}:aud` and `{fedmock-oidc}:sub` whatever IDP_BASE_URL is. `account`
defaults to the local IAM's default account (state.DEFAULT_ACCOUNT). As for the other
kinds, what the file names ends up as it says, `missing_only` only creates, `prune`
deletes what it does not name; a fixture without `iam:` leaves the local IAM alone.
idp/fixtures/ calls check() before anything is written and apply() in its transaction.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

from django.db.models import CharField, IntegerField, Value
from django.db.models.functions import Cast

from . import state
from .errors import StsError
from .models import IamGeneration, OidcProvider, Role, SamlProvider

IAM_KEYS = ("saml_providers", "oidc_providers", "roles")
PROVIDER_KEYS = ("name", "account", "metadata", "metadata_file")
ROLE_KEYS = ("name", "account", "path", "trust_policy", "max_session_duration", "description")
OWN_METADATA = "fedmock"
OIDC_PROVIDER_KEYS = ("url", "account", "client_ids", "thumbprints")
OWN_ISSUER = "fedmock"
# Not a policy variable (those are ${…}): substituted when the fixture is loaded.
OWN_ISSUER_NAME = "{fedmock-oidc}"


@dataclass(frozen=True)
class ProviderSpec:
    account: str
    name: str
    metadata: str  # OWN_METADATA or the document


@dataclass(frozen=True)
class OidcProviderSpec:
    account: str
    url: str  # the issuer, OWN_ISSUER resolved
    client_ids: tuple[str, ...]
    thumbprints: tuple[str, ...]


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
    oidc_providers: tuple[OidcProviderSpec, ...] = ()


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


def own_issuer() -> str:
    from idp.oidc import jwks

    return jwks.issuer()


def _check_oidc_providers(checker, value) -> tuple[OidcProviderSpec, ...]:
    specs: list[OidcProviderSpec] = []
    for i, item in enumerate(checker.entries(value, "oidc_providers")):
        entry = f"iam.oidc_providers[{i}]"
        checker.mapping(item, entry, "", OIDC_PROVIDER_KEYS)
        url = checker.text(item.get("url"), entry, "url", required=True)
        entry = f"{entry} ({url})"
        account = _account(checker, item, entry)
        client_ids = checker.names(item.get("client_ids") or [], entry, "client_ids")
        thumbprints = checker.names(item.get("thumbprints") or [], entry, "thumbprints")
        issuer = own_issuer() if url == OWN_ISSUER else url
        try:
            issuer = state.check_oidc_url(issuer)
        except StsError as error:
            hint = (
                "IDP_BASE_URL must be https://, or http:// on a loopback host, for IAM to "
                "take fedmock's issuer."
                if url == OWN_ISSUER
                else "url: fedmock names this IdP's own issuer."
            )
            raise checker.fail(
                entry,
                "url",
                f"{error.code}: {error.message} ({'; '.join(error.explanation)})",
                hint,
            ) from None
        try:
            state.check_client_ids(list(client_ids))
        except StsError as error:
            raise _refused(checker, entry, "client_ids", error) from None
        try:
            state.check_thumbprints(list(thumbprints))
        except StsError as error:
            raise _refused(checker, entry, "thumbprints", error) from None
        key = state.oidc_provider_key(issuer)
        if any((p.account, state.oidc_provider_key(p.url)) == (account, key) for p in specs):
            raise checker.fail(entry, "url", f"{key!r} is listed twice for account {account}.")
        specs.append(OidcProviderSpec(account, issuer, client_ids, thumbprints))
    return tuple(specs)


def own_issuer_name() -> str:
    """What OWN_ISSUER_NAME stands for: IAM's name for our issuer (host:port/oidc)."""
    return state.oidc_provider_key(own_issuer())


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
        if OWN_ISSUER_NAME in trust:
            trust = trust.replace(OWN_ISSUER_NAME, own_issuer_name())
        try:
            state.check_role_params(name, path, duration)
            state.check_trust_policy(trust)
        except StsError as error:
            raise _refused(checker, entry, "trust_policy", error) from None
        if any((r.account, r.name.lower()) == (account, name.lower()) for r in roles):
            raise checker.fail(entry, "name", f"{name!r} is listed twice for account {account}.")
        roles.append(RoleSpec(account, name, path, trust, duration, description))
    oidc_providers = _check_oidc_providers(checker, value)
    raw = {
        "saml_providers": raw_providers,
        # As written: `url: fedmock` and {fedmock-oidc} are resolved again at each reset.
        "oidc_providers": [dict(item) for item in value.get("oidc_providers") or []],
        "roles": [dict(item) for item in value.get("roles") or []],
    }
    return IamSpec(tuple(providers), tuple(roles), raw, oidc_providers)


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
        elif state.undated(row.metadata) != state.undated(metadata):
            row.metadata = metadata
            row.save(update_fields=["metadata"])
            changed = True
    if prune and existing:
        SamlProvider.objects.filter(pk__in=[row.pk for row in existing.values()]).delete()
        changed = True
    changed |= _apply_oidc_providers(spec, checker, prune=prune, missing_only=missing_only, now=now)

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


def _apply_oidc_providers(spec: IamSpec, checker, *, prune: bool, missing_only: bool, now) -> bool:
    changed = False
    existing = {(row.account_id, row.url): row for row in OidcProvider.objects.all()}
    for provider in spec.oidc_providers:
        key = (provider.account, state.oidc_provider_key(provider.url))
        row = existing.pop(key, None)
        if row is not None and missing_only:
            continue
        client_ids = list(provider.client_ids)
        thumbprints = list(dict.fromkeys(t.lower() for t in provider.thumbprints))  # as IAM
        if row is None:
            try:
                state.create_oidc_provider(
                    provider.account, provider.url, client_ids, thumbprints, now
                )
            except StsError as error:  # the account's quota of providers
                raise _refused(checker, "iam.oidc_providers", provider.url, error) from None
            changed = True
        elif (row.issuer, row.client_ids, row.thumbprints) != (
            provider.url,
            client_ids,
            thumbprints,
        ):
            row.issuer, row.client_ids, row.thumbprints = provider.url, client_ids, thumbprints
            row.save(update_fields=["issuer", "client_ids", "thumbprints"])
            changed = True
    if prune and existing:
        OidcProvider.objects.filter(pk__in=[row.pk for row in existing.values()]).delete()
        changed = True
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
    found: dict[str, list[dict]] = {"saml_providers": [], "oidc_providers": [], "roles": []}
    # IAM keeps an OIDC provider's lists as JSON; as text they pass through the same UNION.
    oidc = OidcProvider.objects.annotate(
        client_id_text=Cast("client_ids", text), thumbprint_text=Cast("thumbprints", text)
    ).values_list(
        Value("oidc_providers", output_field=text),
        "account_id",
        "issuer",
        "client_id_text",
        "thumbprint_text",
        Value(0, output_field=number),
        Value("", output_field=text),
    )
    for kind, account, name, document, path, duration, description in sorted(
        providers.union(roles, oidc, all=True)
    ):
        if kind == "saml_providers":
            found[kind].append({"name": name, "account": account, "metadata": document})
            continue
        if kind == "oidc_providers":
            entry = {"url": name, "account": account, "client_ids": json.loads(document)}
            entry["thumbprints"] = json.loads(path)
            found[kind].append(entry)
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
    found = {
        kind: entries for kind, entries in found.items() if entries or kind != "oidc_providers"
    }
    return {"iam": found} if any(found.values()) else {}
