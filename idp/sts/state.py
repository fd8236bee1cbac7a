"""The local IAM slice and STS credentials: moto's backends as a library, fedmock's database
as the one copy every worker shares.

moto keeps IAM and STS state in process memory, and gunicorn runs several workers
(`make run`), so a SAML provider created through one worker would be unknown to the
next. The database is therefore the truth: every change is written there (its unique
constraints settle two workers racing for one name) and bumps IamGeneration; each worker
reloads moto's IAM backend from the rows when the generation moved, at most once per
request on /aws/ (one small query; the sign-on path never runs it). moto still does
what an engine does: its SAMLProvider and Role objects, their ARNs and IDs, its trust
policy document validator, and its STS backend's access keys and session tokens.
Credentials are written to the database as they are issued, so GetCallerIdentity works
in any worker and after a restart. `mock_aws()` in the same process resets moto's
backends; the per-account identity check below notices and reloads.

moto is imported on first use, not at start-up: it costs about 0.2 s and 20 MB per
process, which workers that never see /aws/ need not pay.
"""

import datetime
import re
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from idp.saml.errors import SamlError
from idp.saml.metadata import parse_idp_metadata

from . import errors, policy
from .errors import StsError
from .models import IamGeneration, IssuedCredential, OidcProvider, Role, SamlProvider

# The account of callers whose access key says none: LocalStack's convention, with the
# demo's first account, so `sync_iam_provider --endpoint-url` and the demo agree.
DEFAULT_ACCOUNT = "111122223333"
ACCOUNT = re.compile(r"[0-9]{12}")
PARTITION = "aws"
REGION = "us-east-1"

# R15-R17 and IAM's quotas ("IAM and AWS STS quotas").
PROVIDER_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")
METADATA_MIN, METADATA_MAX = 1000, 10_000_000
MAX_PROVIDERS = 100  # SAMLProvidersPerAccount
MAX_PROVIDER_KEYS = 10  # R16
ROLE_NAME = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)
ROLE_ARN = re.compile(r"arn:aws:iam::([0-9]{12}):role(/(?:[\x21-\x7e]*/)?)([\w+=,.@-]{1,64})", re.A)
ROLE_PATH = re.compile(r"/|/[\x21-\x7e]{0,510}/")
MAX_ROLES = 1000  # RolesPerAccount, the default quota
SESSION_MIN, SESSION_MAX = 3600, 43200  # a role's MaxSessionDuration
# A fixture's `metadata: fedmock` loaded before the IdP had a key: the snapshot of this
# IdP's metadata is taken when the provider is first read (see fixtures.py).
PENDING_SNAPSHOT = ""


def validation_error(value: object, member: str, rule: str) -> StsError:
    return errors.constraint(value, member, rule, (f"{member} {value!r}: {rule}",))


# --- moto, per process ----------------------------------------------------------------


class _Loaded:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.generation: int | None = None
        self.backends: dict[str, object] = {}  # account -> the IAMBackend we filled


_loaded = _Loaded()


def _iam_backends():
    from moto.iam.models import iam_backends

    return iam_backends


def iam_backend(account_id: str):
    """moto's IAM backend of one account, holding this database's providers and roles."""
    refresh()
    return _iam_backends()[account_id][PARTITION]


def refresh() -> None:
    """Reload moto's IAM backends if another worker (or mock_aws) changed them."""
    generation = IamGeneration.current()
    backends = _iam_backends()
    with _loaded.lock:
        # mock_aws() resets a backend by emptying its __dict__: the stamp goes with it.
        current = _loaded.generation == generation and all(
            getattr(backends[account][PARTITION], "fedmock_generation", None) == generation
            for account in _loaded.backends
        )
        if not current:
            _load(generation)


def forget() -> None:
    """Tests: the next request reloads from the database."""
    with _loaded.lock:
        _loaded.generation = None


def _load(generation: int) -> None:
    from moto.iam.models import OpenIDConnectProvider as MotoOidcProvider
    from moto.iam.models import Role as MotoRole
    from moto.iam.models import SAMLProvider as MotoProvider

    backends = _iam_backends()
    for backend in _loaded.backends.values():  # accounts whose rows may all be gone
        backend.saml_providers.clear()
        backend.open_id_providers.clear()
        backend.roles.clear()
    providers = list(SamlProvider.objects.order_by("id"))
    for row in providers:
        if row.metadata == PENDING_SNAPSHOT:
            try:
                row.metadata = _snapshot(row)
            except StsError:  # no key yet: listed without a document, refused when used
                pass
    roles = list(Role.objects.order_by("id"))
    oidc = list(OidcProvider.objects.order_by("id"))
    filled: dict[str, object] = {}
    for account in sorted({row.account_id for row in [*providers, *roles, *oidc]}):
        filled[account] = backend = backends[account][PARTITION]
        backend.saml_providers.clear()
        backend.open_id_providers.clear()
        backend.roles.clear()
    for row in oidc:
        loaded = MotoOidcProvider(
            row.account_id, REGION, row.issuer, list(row.thumbprints), list(row.client_ids), {}
        )
        loaded.create_date = row.created_at
        filled[row.account_id].open_id_providers[loaded.arn] = loaded
    for row in providers:
        provider = MotoProvider(row.account_id, REGION, row.name, row.metadata)
        provider.create_date = row.created_at
        filled[row.account_id].saml_providers[row.name] = provider
    for row in roles:
        role = MotoRole(
            account_id=row.account_id,
            partition=PARTITION,
            role_id=row.role_id,
            name=row.name,
            assume_role_policy_document=row.trust_policy,
            path=row.path,
            permissions_boundary=None,
            description=row.description,
            tags=[],
            max_session_duration=str(row.max_session_duration),
        )
        role.create_date = row.created_at
        filled[row.account_id].roles[row.role_id] = role
    for backend in filled.values():
        backend.fedmock_generation = generation
    _loaded.backends = filled
    _loaded.generation = generation


def _changed() -> None:
    IamGeneration.bump()
    forget()


# --- SAML providers -------------------------------------------------------------------


def provider_arn(account_id: str, name: str) -> str:
    return f"arn:{PARTITION}:iam::{account_id}:saml-provider/{name}"


def split_provider_arn(arn: str) -> tuple[str, str] | None:
    match = re.fullmatch(r"arn:aws:iam::([0-9]{12}):saml-provider/([A-Za-z0-9._-]{1,128})", arn)
    return (match[1], match[2]) if match else None


def check_metadata(document: str) -> None:
    if not isinstance(document, str) or not METADATA_MIN <= len(document) <= METADATA_MAX:
        length = len(document) if isinstance(document, str) else 0
        bound = (
            "greater than or equal to 1000"
            if length < METADATA_MIN
            else ("less than or equal to 10000000")
        )
        raise validation_error(
            "…", "sAMLMetadataDocument", f"Member must have length {bound}"
        ) from None
    if document.startswith("\ufeff"):
        raise _invalid_metadata("it starts with a byte-order mark (R15: UTF-8 without a BOM)")
    try:
        parsed = parse_idp_metadata(document.encode())
    except SamlError as error:
        raise _invalid_metadata(f"{error.title}: {error.detail}") from None
    if not parsed.entity_id:
        raise _invalid_metadata("the EntityDescriptor has no entityID")
    if not parsed.signing_certificates:
        raise _invalid_metadata("the IDPSSODescriptor lists no signing certificate")
    if len(parsed.signing_certificates) > MAX_PROVIDER_KEYS:
        raise errors.LIMIT_EXCEEDED.error(
            f"the metadata lists {len(parsed.signing_certificates)} signing certificates; "
            f"IAM keeps at most {MAX_PROVIDER_KEYS} (R16)",
            quota="KeysPerSAMLProvider",
            limit=MAX_PROVIDER_KEYS,
        )


def _invalid_metadata(why: str) -> StsError:
    return errors.METADATA_UNPARSEABLE.error(why)


def create_provider(account_id: str, name: str, document: str, now: datetime.datetime):
    if not isinstance(name, str) or not PROVIDER_NAME.fullmatch(name):
        raise validation_error(
            name, "name", "Member must satisfy regular expression pattern: [\\w._-]+"
        )
    check_metadata(document)
    try:
        with transaction.atomic():
            if SamlProvider.objects.filter(account_id=account_id).count() >= MAX_PROVIDERS:
                raise errors.LIMIT_EXCEEDED.error(
                    f"account {account_id} has {MAX_PROVIDERS} SAML providers",
                    quota="SAMLProvidersPerAccount",
                    limit=MAX_PROVIDERS,
                )
            SamlProvider.objects.create(
                account_id=account_id, name=name, metadata=document, created_at=now
            )
            _changed()
    except IntegrityError:
        raise errors.PROVIDER_EXISTS.error(
            f"{provider_arn(account_id, name)} exists; UpdateSAMLProvider changes its metadata",
            name=name,
        ) from None
    return get_provider(provider_arn(account_id, name))


def _provider_row(arn: str) -> SamlProvider:
    parts = split_provider_arn(arn) if isinstance(arn, str) else None
    row = SamlProvider.objects.filter(account_id=parts[0], name=parts[1]).first() if parts else None
    if row is None:
        raise errors.PROVIDER_NO_SUCH_ENTITY.error(
            f"no SAML provider {arn!r} in the local IAM", arn=arn
        )
    return row


def update_provider(arn: str, document: str):
    check_metadata(document)
    with transaction.atomic():
        row = _provider_row(arn)
        row.metadata = document
        row.save(update_fields=["metadata"])
        _changed()
    return get_provider(arn)


def delete_provider(arn: str) -> None:
    with transaction.atomic():
        _provider_row(arn).delete()
        _changed()


def get_provider(arn: str):
    """moto's SAMLProvider (arn, saml_metadata_document, create_date, valid_until)."""
    row = _provider_row(arn)  # the database decides, so a stale worker never answers
    return iam_backend(row.account_id).get_saml_provider(arn)


def list_providers(account_id: str) -> list:
    return list(iam_backend(account_id).list_saml_providers())


def provider_metadata(arn: str) -> bytes | None:
    parts = split_provider_arn(arn) if isinstance(arn, str) else None
    if not parts:
        return None
    row = SamlProvider.objects.filter(account_id=parts[0], name=parts[1]).first()
    if row is None:
        return None
    return (row.metadata or _snapshot(row)).encode()


_VALID_UNTIL = re.compile(r' validUntil="[^"]*"')


def undated(document: str) -> str:
    """Metadata without its validUntil, for telling whether two copies differ in substance.

    fedmock's validUntil moves at midnight UTC (identity.valid_until): its metadata a moment
    before midnight differs from the document after it by that attribute alone.
    """
    return _VALID_UNTIL.sub("", document)


def _snapshot(row: SamlProvider) -> str:
    """This IdP's metadata, stored once for a provider whose fixture said `fedmock`."""
    from idp import identity

    try:
        document = identity.metadata_xml().decode()
    except SamlError as error:
        raise StsError(
            "InvalidIdentityToken",
            errors.PROVIDER_NOT_FOUND.text,
            (f"{row.arn} is to hold fedmock's metadata, but: {error.title}. {error.hint}",),
        ) from None
    # Only the first worker's snapshot counts; the others read it back.
    if SamlProvider.objects.filter(pk=row.pk, metadata=PENDING_SNAPSHOT).update(metadata=document):
        IamGeneration.bump()
        return document
    return SamlProvider.objects.get(pk=row.pk).metadata


# --- OpenID Connect providers ---------------------------------------------------------

# IAM's rules for CreateOpenIDConnectProvider (the IAM API reference and "IAM and AWS STS
# quotas"). IAM accepts only https:// issuers; fedmock also accepts http:// for a loopback
# host, because its own issuer under `make run` is http://127.0.0.1:8000/oidc.
MAX_OIDC_PROVIDERS = 100  # OpenIdConnectProvidersPerAccount
MAX_CLIENT_IDS = 100  # ClientIdsPerOpenIdConnectProvider
MAX_THUMBPRINTS = 5
THUMBPRINT = re.compile(r"[0-9A-Fa-f]{40}")
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


def oidc_provider_key(url: str) -> str:
    """IAM's name for an issuer: host and path, no scheme and no trailing slash."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return (parts.netloc.lower() + parts.path).rstrip("/") if parts.netloc else ""


def check_oidc_url(url: str) -> str:
    from urllib.parse import urlsplit

    if not isinstance(url, str) or not 1 <= len(url) <= 255:
        raise validation_error(url, "url", "Member must have length less than or equal to 255")
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    loopback = host in LOOPBACK_HOSTS
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise StsError(
            "ValidationError",
            "Invalid Open ID Connect Provider URL",
            (
                f"{url!r}: IAM accepts only https:// issuer URLs (fedmock also accepts "
                "http:// for localhost, 127.0.0.1 and [::1])",
            ),
        )
    if not parts.netloc or parts.query or parts.fragment or "@" in parts.netloc:
        raise StsError(
            "ValidationError",
            "Invalid Open ID Connect Provider URL",
            (f"{url!r}: an issuer URL is scheme, host and path: no user, query or fragment",),
        )
    return url.rstrip("/")


def check_client_ids(client_ids: list[str]) -> None:
    if len(client_ids) > MAX_CLIENT_IDS:
        raise errors.LIMIT_EXCEEDED.error(
            f"{len(client_ids)} client IDs; IAM keeps at most {MAX_CLIENT_IDS} per provider",
            quota="ClientIdsPerOpenIdConnectProvider",
            limit=MAX_CLIENT_IDS,
        )
    for client_id in client_ids:
        if not isinstance(client_id, str) or not 1 <= len(client_id) <= 255:
            raise validation_error(
                client_id,
                "clientIDList",
                "Member must satisfy constraint: [Member must have length less than or "
                "equal to 255, Member must have length greater than or equal to 1]",
            )


def check_thumbprints(thumbprints: list[str]) -> None:
    if len(thumbprints) > MAX_THUMBPRINTS:
        raise StsError(
            "InvalidInput",
            "Thumbprint list must contain fewer than 5 entries.",
            (f"{len(thumbprints)} thumbprints; IAM keeps at most {MAX_THUMBPRINTS}",),
        )
    for thumbprint in thumbprints:
        if not isinstance(thumbprint, str) or not THUMBPRINT.fullmatch(thumbprint):
            raise validation_error(
                thumbprint,
                "thumbprintList",
                "Member must satisfy constraint: [Member must have length less than or "
                "equal to 40, Member must have length greater than or equal to 40]",
            )


def _oidc_not_found(arn: str) -> StsError:
    return StsError(
        "NoSuchEntity",
        f"OpenIDConnect Provider not found for arn {arn}",
        (f"no OIDC provider {arn!r} in the local IAM",),
    )


def split_oidc_arn(arn: str) -> tuple[str, str] | None:
    match = re.fullmatch(r"arn:aws:iam::([0-9]{12}):oidc-provider/(.{1,255})", arn or "")
    return (match[1], match[2]) if match else None


def _oidc_row(arn: str) -> OidcProvider:
    parts = split_oidc_arn(arn) if isinstance(arn, str) else None
    row = OidcProvider.objects.filter(account_id=parts[0], url=parts[1]).first() if parts else None
    if row is None:
        raise _oidc_not_found(arn)
    return row


def create_oidc_provider(
    account_id: str,
    url: str,
    client_ids: list[str],
    thumbprints: list[str],
    now: datetime.datetime,
) -> OidcProvider:
    issuer = check_oidc_url(url)
    check_client_ids(client_ids)
    check_thumbprints(thumbprints)
    key = oidc_provider_key(issuer)
    try:
        with transaction.atomic():
            if OidcProvider.objects.filter(account_id=account_id).count() >= MAX_OIDC_PROVIDERS:
                raise errors.LIMIT_EXCEEDED.error(
                    f"account {account_id} has {MAX_OIDC_PROVIDERS} OIDC providers",
                    quota="OpenIdConnectProvidersPerAccount",
                    limit=MAX_OIDC_PROVIDERS,
                )
            row = OidcProvider.objects.create(
                account_id=account_id,
                url=key,
                issuer=issuer,
                client_ids=list(dict.fromkeys(client_ids)),
                thumbprints=list(dict.fromkeys(t.lower() for t in thumbprints)),
                created_at=now,
            )
            _changed()
    except IntegrityError:
        raise StsError(
            "EntityAlreadyExists",
            f"Provider with url {issuer} already exists.",
            (f"arn:aws:iam::{account_id}:oidc-provider/{key} exists",),
        ) from None
    return row


def get_oidc_provider(arn: str) -> OidcProvider:
    return _oidc_row(arn)  # the database decides, so a stale worker never answers


def list_oidc_providers(account_id: str) -> list[OidcProvider]:
    return list(OidcProvider.objects.filter(account_id=account_id).order_by("url"))


def delete_oidc_provider(arn: str) -> None:
    with transaction.atomic():
        _oidc_row(arn).delete()
        _changed()


def update_oidc_thumbprints(arn: str, thumbprints: list[str]) -> None:
    check_thumbprints(thumbprints)
    with transaction.atomic():
        row = _oidc_row(arn)
        row.thumbprints = list(dict.fromkeys(t.lower() for t in thumbprints))
        row.save(update_fields=["thumbprints"])
        _changed()


def add_oidc_client_id(arn: str, client_id: str) -> None:
    """AddClientIDToOpenIDConnectProvider: idempotent, as IAM documents it."""
    check_client_ids([client_id])
    with transaction.atomic():
        row = _oidc_row(arn)
        if client_id in row.client_ids:
            return
        check_client_ids([*row.client_ids, client_id])
        row.client_ids = [*row.client_ids, client_id]
        row.save(update_fields=["client_ids"])
        _changed()


def oidc_provider_for_issuer(account_id: str, issuer: str) -> OidcProvider | None:
    """The provider a token's `iss` names in an account (IAM matches host and path)."""
    key = oidc_provider_key(issuer) if isinstance(issuer, str) else ""
    # No provider URL holds a NUL, and PostgreSQL refuses one in a query (a 500 there).
    if not key or "\x00" in key:
        return None
    return OidcProvider.objects.filter(account_id=account_id, url=key).first()


# --- roles ----------------------------------------------------------------------------


def check_trust_policy(document: str) -> None:
    """The evaluator's own parser decides (MalformedPolicyDocument, LimitExceeded): a
    policy IAM stores is one the local STS can evaluate."""
    if not isinstance(document, str) or not document:
        raise validation_error(None, "assumeRolePolicyDocument", "Member must not be null")
    policy.parse_policy(document)


def check_role_params(name: str, path: str, max_session_duration: int) -> None:
    if not isinstance(name, str) or not ROLE_NAME.fullmatch(name):
        raise validation_error(
            name, "roleName", "Member must satisfy regular expression pattern: [\\w+=,.@-]+"
        )
    if not ROLE_PATH.fullmatch(path):
        raise validation_error(
            path,
            "path",
            "Member must satisfy regular expression pattern: (\\u002F)|"
            "(\\u002F[\\u0021-\\u007E]+\\u002F)",
        )
    if not SESSION_MIN <= max_session_duration <= SESSION_MAX:
        bound = (
            f"greater than or equal to {SESSION_MIN}"
            if max_session_duration < SESSION_MIN
            else f"less than or equal to {SESSION_MAX}"
        )
        raise validation_error(
            max_session_duration, "maxSessionDuration", f"Member must have value {bound}"
        )


def create_role(
    account_id: str,
    name: str,
    trust_policy: str,
    now: datetime.datetime,
    *,
    path: str = "/",
    max_session_duration: int = SESSION_MIN,
    description: str = "",
):
    from moto.iam.utils import random_role_id

    check_role_params(name, path, max_session_duration)
    check_trust_policy(trust_policy)
    try:
        with transaction.atomic():
            # IAM role names are unique per account regardless of case.
            if Role.objects.filter(account_id=account_id, name__iexact=name).exists():
                raise IntegrityError
            if Role.objects.filter(account_id=account_id).count() >= MAX_ROLES:
                raise errors.LIMIT_EXCEEDED.error(
                    f"account {account_id} has {MAX_ROLES} roles",
                    quota="RolesPerAccount",
                    limit=MAX_ROLES,
                )
            Role.objects.create(
                account_id=account_id,
                name=name,
                path=path,
                role_id=random_role_id(account_id),
                trust_policy=trust_policy,
                max_session_duration=max_session_duration,
                description=description,
                created_at=now,
            )
            _changed()
    except IntegrityError:
        raise errors.ROLE_EXISTS.error(
            f"account {account_id} has a role named {name} (role names ignore case)", name=name
        ) from None
    return get_role(account_id, name)


def _role_row(account_id: str, name: str) -> Role:
    row = Role.objects.filter(account_id=account_id, name=name).first()
    if row is None:
        raise errors.ROLE_NOT_FOUND.error(
            f"no role {name!r} in account {account_id} of the local IAM", name=name
        )
    return row


def get_role(account_id: str, name: str):
    """moto's Role (arn, id, assume_role_policy_document, max_session_duration, …)."""
    _role_row(account_id, name)
    return iam_backend(account_id).get_role(name)


def role_by_arn(arn: str) -> Role | None:
    """The role's row for an ARN, or None (AssumeRole* must not say which part is wrong)."""
    match = re.fullmatch(
        r"arn:aws:iam::([0-9]{12}):role(/(?:[\x21-\x7e]*/)?)([\w+=,.@-]{1,64})", arn
    )
    if not match:
        return None
    return Role.objects.filter(account_id=match[1], path=match[2], name=match[3]).first()


def update_trust_policy(account_id: str, name: str, trust_policy: str) -> None:
    check_trust_policy(trust_policy)
    with transaction.atomic():
        row = _role_row(account_id, name)
        row.trust_policy = trust_policy
        row.save(update_fields=["trust_policy"])
        _changed()


def update_role(
    account_id: str, name: str, max_session_duration: int | None, description: str | None
) -> None:
    """UpdateRole: the role's maximum session and description; what is not sent stays."""
    with transaction.atomic():
        row = _role_row(account_id, name)
        if max_session_duration is not None:
            check_role_params(row.name, row.path, max_session_duration)
            row.max_session_duration = max_session_duration
        if description is not None:
            row.description = description
        row.save(update_fields=["max_session_duration", "description"])
        _changed()


def delete_role(account_id: str, name: str) -> None:
    with transaction.atomic():
        _role_row(account_id, name).delete()
        _changed()


def list_roles(account_id: str, path_prefix: str, marker: str | None, max_items: int | None):
    if marker is not None and not marker.isdigit():
        raise validation_error(marker, "marker", "Member must be a marker from a previous page")
    if max_items is not None and not 1 <= max_items <= 1000:
        raise validation_error(max_items, "maxItems", "Member must have value 1 to 1000")
    return iam_backend(account_id).list_roles(path_prefix or "/", marker, max_items)


# --- credentials ----------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """Who signed a request: credentials we issued, or an account's local root."""

    account_id: str
    arn: str
    user_id: str
    credential: IssuedCredential | None = None


def caller_for_key(access_key_id: str) -> Caller | None:
    """Temporary keys (ASIA…) must be ours; any other key is an account's root, as
    LocalStack treats them: a 12-digit key names the account, others the default one."""
    if access_key_id.startswith("ASIA"):
        issued = IssuedCredential.objects.filter(access_key_id=access_key_id).first()
        if issued is None:
            return None
        return Caller(issued.account_id, issued.arn, issued.user_id, issued)
    account = access_key_id if ACCOUNT.fullmatch(access_key_id) else DEFAULT_ACCOUNT
    return Caller(account, f"arn:{PARTITION}:iam::{account}:root", account)


def _store(
    *,
    account_id: str,
    access_key,
    session_token: str,
    arn: str,
    user_id: str,
    action: str,
    now: datetime.datetime,
    duration: int,
    source_identity: str = "",
    tags: Mapping[str, str] | None = None,
    transitive_tag_keys: Sequence[str] = (),
) -> IssuedCredential:
    return IssuedCredential.objects.create(
        access_key_id=access_key.access_key_id,
        secret_access_key=access_key.secret_access_key,
        session_token=session_token,
        account_id=account_id,
        arn=arn,
        user_id=user_id,
        action=action,
        issued_at=now,
        # The IdP's clock, so IDP_CLOCK_OFFSET expires them without sleeping; whole
        # seconds, as AWS's Expiration is written.
        expires_at=(now + datetime.timedelta(seconds=duration)).replace(microsecond=0),
        source_identity=source_identity,
        session_tags=dict(tags or {}),
        transitive_tag_keys=list(transitive_tag_keys),
    )


def issue_role_session(
    role: Role,
    session_name: str,
    duration: int,
    now: datetime.datetime,
    *,
    action: str,
    source_identity: str = "",
    tags: Mapping[str, str] | None = None,
    transitive_tag_keys: Sequence[str] = (),
) -> IssuedCredential:
    """Role credentials from moto's STS backend (keys, token, assumed-role ARN and ID),
    stored with the session's source identity and session tags (SAML attributes or a web
    identity token's claims), as STS keeps them with the session."""
    from moto.sts.models import sts_backends

    iam_backend(role.account_id)  # the role's ID in the assumed-role user ID is ours
    backend = sts_backends[role.account_id][PARTITION]
    assumed = backend.assume_role(
        region_name=REGION,
        role_session_name=session_name,
        role_arn=role.arn,
        policy=None,
        duration=duration,
        external_id=None,
    )
    # The database keeps them; moto's lists would only grow in a long-running worker.
    backend.assumed_roles.remove(assumed)
    _iam_backends()[role.account_id][PARTITION].access_keys.pop(
        assumed.access_key.physical_resource_id, None
    )
    return _store(
        account_id=role.account_id,
        access_key=assumed.access_key,
        session_token=assumed.session_token,
        arn=assumed.arn,
        user_id=assumed.user_id,
        action=action,
        now=now,
        duration=duration,
        source_identity=source_identity,
        tags=tags,
        transitive_tag_keys=transitive_tag_keys,
    )


def issue_federation_token(
    account_id: str, name: str, duration: int, now: datetime.datetime
) -> IssuedCredential:
    """moto answers GetFederationToken with AWS's documentation example keys; these work."""
    from moto.sts.utils import random_session_token

    access_key = _iam_backends()[account_id][PARTITION].create_temp_access_key()
    _iam_backends()[account_id][PARTITION].access_keys.pop(access_key.physical_resource_id, None)
    return _store(
        account_id=account_id,
        access_key=access_key,
        session_token=random_session_token(),
        arn=f"arn:{PARTITION}:sts::{account_id}:federated-user/{name}",
        user_id=f"{account_id}:{name}",
        action="GetFederationToken",
        now=now,
        duration=duration,
    )


# An expired key is still known for a day, so its holder hears ExpiredToken, as from AWS,
# rather than "never issued"; after that the row only costs space.
KEEP_EXPIRED = datetime.timedelta(days=1)


def prune_credentials(now: datetime.datetime, keep: datetime.timedelta = KEEP_EXPIRED) -> int:
    """Delete, in one statement, the credentials that expired more than `keep` before `now`
    (the IdP's clock, which stamped their expiry)."""
    deleted, _ = IssuedCredential.objects.filter(expires_at__lt=now - keep).delete()
    return deleted


def new_request_id() -> str:
    return str(uuid.uuid4())
