"""Claim rules: (user, service provider) -> Release, and (user, OIDC client) -> TokenClaims.

Rules are ordered data (global ones and the SP's or client's own, merged by order). This
module reads the directory once per sign-on, in a fixed number of queries
whatever the number of groups or rules, then evaluates every rule against that
snapshot and records why each rule did or did not contribute. SAML rules give
attributes; JWT rules give ID-token claims, shaped by idp/oidc/claim_shapes.py. Both
go through the same conditions, sources and templates.
"""

import dataclasses
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings

from users.models import DIRECTORY_FIELDS, DirectoryEntry, User

from . import cache, identity, rule_syntax
from .models import DIRECTORY_REFERENCE, ClaimRule, ServiceProvider
from .oidc import claim_shapes
from .presets import RULE_SETS
from .saml import constants as c
from .saml import metadata
from .saml.errors import SamlError
from .saml.release import Attribute, NameID, Release

if TYPE_CHECKING:
    from .oidc.models import Client

    Target = ServiceProvider | Client  # whom the rules are evaluated for


class NameIDUnavailable(SamlError):
    """The NameID asked for cannot be produced for this user; SAML calls it InvalidNameIDPolicy."""


def _unique_id(*parts: str) -> str:
    """32 lower-case hex digits, stable while SECRET_KEY is (it is kept in .secret_key)."""
    message = "\0".join(parts).encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()[:32]


def subject_id(username: str) -> str:
    """SAML V2.0 subject-id: one opaque value per user, the same at every SP."""
    return f"{_unique_id('subject-id', username)}@{identity.scope()}"


def pairwise_id(username: str, target: "Target") -> str:
    """SAML V2.0 pairwise-id: opaque, stable, and different at each SP (or OIDC client)."""
    audience = target.entity_id if isinstance(target, ServiceProvider) else target.client_id
    return f"{_unique_id('pairwise-id', audience, username)}@{identity.scope()}"


class _TemplateValues(Mapping):
    """Placeholders of a template: named captures, {provider}, then directory references."""

    def __init__(self, entry: DirectoryEntry, sp: "Target", captures: Mapping):
        self.entry, self.sp, self.captures = entry, sp, captures

    def __getitem__(self, name: str) -> list[str]:
        if name in self.captures:
            return [self.captures[name] or ""]
        if name == "provider":
            # An OIDC client has no IAM provider name; its client_id is what a trust
            # policy's :aud names, so it plays the same part.
            if isinstance(self.sp, ServiceProvider):
                return [self.sp.iam_provider_name]
            return [self.sp.client_id]
        if name in DIRECTORY_FIELDS or name == "groups" or name.startswith("attr."):
            return self.entry.lookup(name)
        if name == "scope":
            return [identity.scope()]
        if name == "subject_id":
            return [subject_id(self.entry.fields["username"])]
        if name == "pairwise_id":
            return [pairwise_id(self.entry.fields["username"], self.sp)]
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.captures)

    def __len__(self) -> int:
        return len(self.captures)


@dataclass(frozen=True)
class RuleOutcome:
    """One line of the rule trace: did the rule apply, and what did it give."""

    rule: ClaimRule
    applied: bool
    values: tuple[str, ...]
    note: str = ""  # JWT rules: why fewer values reached the token than the rule gave


@dataclass(frozen=True)
class Evaluation:
    attributes: tuple[Attribute, ...]
    trace: tuple[RuleOutcome, ...]

    @property
    def released(self) -> tuple[tuple[Attribute, tuple[ClaimRule, ...]], ...]:
        """Each attribute with the rules whose values it carries; a metadata request is an
        unsaved rule (no pk) whose description starts with REQUESTED."""
        return tuple(
            (
                attribute,
                tuple(
                    outcome.rule
                    for outcome in self.trace
                    if outcome.values and outcome.rule.attribute_name == attribute.name
                ),
            )
            for attribute in self.attributes
        )


def _broken(rule: ClaimRule, sp: "Target", what: str) -> SamlError:
    where = "Service providers → claim rules" if isinstance(sp, ServiceProvider) else "Claim rules"
    return SamlError(
        "A claim rule is broken",
        f"Rule {rule} of {sp}: {what}.",
        f"Fix the rule in the admin ({where}); saving it there checks it.",
        status=409,
    )


def _pattern(rule: ClaimRule, sp: "Target", pattern: str) -> re.Pattern:
    try:
        return rule_syntax.compile_pattern(pattern)
    except re.error as error:
        raise _broken(rule, sp, f"its pattern {pattern!r} is not a regex ({error})") from error


def _render(rule: ClaimRule, sp: "Target", values: Mapping) -> list[str]:
    try:
        return rule_syntax.render(rule.value, values)
    except KeyError as error:
        raise _broken(
            rule, sp, f"its template names {{{error.args[0]}}}, which is unknown"
        ) from None


def condition_holds(rule: ClaimRule, entry: DirectoryEntry, sp: "Target") -> bool:
    if rule.condition == ClaimRule.Condition.MEMBER_OF:
        holds = rule.condition_subject in entry.group_set
    elif rule.condition == ClaimRule.Condition.ATTRIBUTE_MATCHES:
        pattern = _pattern(rule, sp, rule.condition_pattern)
        holds = any(pattern.search(value) for value in entry.lookup(rule.condition_subject))
    else:
        holds = True
    return holds != rule.negate


def rule_values(rule: ClaimRule, entry: DirectoryEntry, sp: "Target") -> list[str]:
    if rule.source == ClaimRule.Source.LITERAL:
        return [rule.value]
    if rule.source == ClaimRule.Source.ATTRIBUTE:
        return entry.lookup(rule.source_attribute)
    if rule.source == ClaimRule.Source.TEMPLATE:
        return _render(rule, sp, _TemplateValues(entry, sp, {}))
    pattern = _pattern(rule, sp, rule.group_pattern)
    values = []
    for group in entry.groups:
        if match := pattern.search(group):
            values += _render(rule, sp, _TemplateValues(entry, sp, match.groupdict()))
    return values


def evaluate(rules: list[ClaimRule], entry: DirectoryEntry, sp: ServiceProvider) -> Evaluation:
    """Values for one attribute name accumulate across rules, de-duplicated, in order."""
    collected: dict[str, tuple[ClaimRule, dict[str, None]]] = {}
    trace = []
    for rule in rules:
        applied = condition_holds(rule, entry, sp)
        values = rule_values(rule, entry, sp) if applied else []
        trace.append(RuleOutcome(rule, applied, tuple(values)))
        if values:
            _, seen = collected.setdefault(rule.attribute_name, (rule, {}))
            seen.update(dict.fromkeys(values))
    attributes = tuple(
        Attribute(
            name=name,
            values=tuple(values),
            name_format=rule.name_format,
            friendly_name=rule.friendly_name,
        )
        for name, (rule, values) in collected.items()
    )
    return Evaluation(attributes, tuple(trace))


_FORMAT_SOURCES = {
    c.NAMEID_PERSISTENT: ServiceProvider.NameIDSource.PERSISTENT,
    c.NAMEID_TRANSIENT: ServiceProvider.NameIDSource.TRANSIENT,
    c.NAMEID_EMAIL: ServiceProvider.NameIDSource.EMAIL,
}


def name_id_for(user: User, sp: ServiceProvider, requested_format: str = "") -> NameID:
    """The SP's configured NameID, or the format its request's NameIDPolicy asks for."""
    name_format, source = sp.nameid_format, sp.nameid_source
    if requested_format and requested_format != c.NAMEID_UNSPECIFIED:
        if requested_format not in _FORMAT_SOURCES:
            raise NameIDUnavailable(
                "Unsupported NameIDPolicy",
                f"The request asks for NameID format {requested_format}.",
                "Ask for persistent, transient, emailAddress or unspecified.",
            )
        name_format, source = requested_format, _FORMAT_SOURCES[requested_format]
    if source == ServiceProvider.NameIDSource.USERNAME:
        return NameID(user.get_username(), name_format)
    if source == ServiceProvider.NameIDSource.EMAIL:
        if not user.email:
            raise NameIDUnavailable(
                "No e-mail address for the NameID",
                f"{sp} takes the user's e-mail address as NameID, and {user.get_username()} "
                "has none.",
                "Give the user an e-mail address in the directory admin.",
            )
        return NameID(user.email, name_format)
    if source == ServiceProvider.NameIDSource.TRANSIENT:
        return NameID("_" + secrets.token_hex(16), name_format)
    return NameID(cache.persistent_name_id(user, sp), name_format, sp_name_qualifier=sp.entity_id)


REQUESTED = "requested in the SP's metadata"


def _catalogue() -> dict[str, dict]:
    """Rule specs by attribute name and by friendly (basic) name: what the directory can fill."""
    specs: dict[str, dict] = {}
    for set_name in ("saml-uri", "generic"):
        for spec in RULE_SETS[set_name].rules:
            specs.setdefault(spec["attribute_name"], spec)
            specs.setdefault(spec["friendly_name"], spec)
    specs["memberOf"] = specs["isMemberOf"]
    specs["uid"] = {**specs["mail"], "friendly_name": "uid", "source_attribute": "username"}
    return specs


CATALOGUE = _catalogue()


def requested_rules(sp: ServiceProvider, rules: list[ClaimRule]) -> list[ClaimRule]:
    """Unsaved rules for the metadata's RequestedAttributes that no rule of the SP names.

    A request is filled from the saml-uri and generic rule sets (by its Name, then its
    FriendlyName), else from the user attribute of that name; it keeps the SP's Name,
    NameFormat and FriendlyName.
    """
    if not sp.metadata_xml:
        return []
    try:
        requested = metadata.parse_sp_metadata(sp.metadata_xml.encode()).requested_attributes
    except SamlError:
        return []  # checked when imported; an edited copy that no longer parses asks nothing
    named = {rule.attribute_name for rule in rules}
    made = []
    for position, request in enumerate(requested):
        if request.name in named:
            continue
        spec = CATALOGUE.get(request.name) or CATALOGUE.get(request.friendly_name)
        if spec is None:
            if not DIRECTORY_REFERENCE.match(f"attr.{request.name}"):
                continue
            spec = {
                "name_format": c.ATTRNAME_UNSPECIFIED,
                "friendly_name": "",
                "source": ClaimRule.Source.ATTRIBUTE,
                "source_attribute": f"attr.{request.name}",
            }
        made.append(
            ClaimRule(
                service_provider_id=sp.pk,
                order=1000 + position,
                attribute_name=request.name,
                name_format=_requested_format(request, spec),
                friendly_name=request.friendly_name or spec["friendly_name"],
                description=REQUESTED + (" (isRequired)" if request.required else ""),
                source=spec["source"],
                source_attribute=spec.get("source_attribute", ""),
                value=spec.get("value", ""),
            )
        )
    return made


def _requested_format(request: metadata.RequestedAttribute, spec: dict) -> str:
    """The request's NameFormat; for an unspecified one (pysaml2 reads a missing NameFormat
    so) and the set's own Name, the set's format, which stock SPs decode by."""
    if request.name_format not in ("", c.ATTRNAME_UNSPECIFIED):
        return request.name_format
    if spec.get("attribute_name") == request.name:
        return spec["name_format"]
    return c.ATTRNAME_UNSPECIFIED


def rules_with_requests(sp: ServiceProvider) -> list[ClaimRule]:
    """The SP's rules, then those its metadata's RequestedAttributes add."""
    rules = cache.rules_for(sp)
    return rules + cache.requested_rules(sp, lambda: requested_rules(sp, rules))


def evaluate_for(user: User, sp: ServiceProvider) -> Evaluation:
    return evaluate(rules_with_requests(sp), cache.directory_entry(user), sp)


def release(user: User, sp: ServiceProvider, requested_format: str = "") -> Release:
    return Release(
        name_id=name_id_for(user, sp, requested_format),
        attributes=evaluate_for(user, sp).attributes,
    )


@dataclass(frozen=True)
class TokenClaims:
    """The ID-token claims the JWT rules give one user at one OIDC client, and why."""

    claims: dict
    trace: tuple[RuleOutcome, ...]


def evaluate_claims(rules: list[ClaimRule], entry: DirectoryEntry, client: "Client") -> TokenClaims:
    """Values for one claim accumulate across rules, de-duplicated, in order, as attributes
    do; then each claim takes its rules' type (a string or boolean keeps the first value)."""
    # path -> (the first rule that gave it values, the values, the trace lines that did)
    gathered: dict[tuple[str, ...], tuple[ClaimRule, dict[str, None], list[int]]] = {}
    trace = []
    for rule in rules:
        applied = condition_holds(rule, entry, client)
        values = rule_values(rule, entry, client) if applied else []
        trace.append(RuleOutcome(rule, applied, tuple(values)))
        if not values:
            continue
        try:
            path = claim_shapes.claim_path(rule.attribute_name)
        except claim_shapes.ClaimShapeError as error:
            raise _broken(rule, client, str(error).rstrip(".")) from None
        if path[0] in claim_shapes.RESERVED_CLAIMS:
            # The token endpoint merges these claims over its own: never let one replace sub.
            raise _broken(rule, client, claim_shapes.name_problem(rule.attribute_name)[:-1])
        # Saving a rule checks it against the others; rules saved around that check
        # (two at once, or a disabled one enabled in bulk) still cannot build a bad token.
        for other_path, (other, _, _) in gathered.items():
            mine, theirs = (path, rule.claim_type), (other_path, other.claim_type)
            if problem := claim_shapes.conflict(theirs, mine):
                raise _broken(rule, client, f"{problem} (the other rule: {other})")
        _, seen, lines = gathered.setdefault(path, (rule, {}, []))
        seen.update(dict.fromkeys(values))
        lines.append(len(trace) - 1)
    document: dict = {}
    for path, (rule, values, lines) in gathered.items():
        try:
            shaped = claim_shapes.shape(rule.claim_type, tuple(values))
        except claim_shapes.ClaimShapeError as error:
            raise _broken(rule, client, str(error).rstrip(".")) from None
        claim_shapes.place(document, path, shaped.value)
        for line in lines if shaped.note else ():
            trace[line] = dataclasses.replace(trace[line], note=shaped.note)
    return TokenClaims(document, tuple(trace))


def id_token_claims(user: User, client: "Client") -> TokenClaims:
    """What the JWT rules add to this user's ID token at this client (merged over the
    standard claims by the token endpoint)."""
    return evaluate_claims(cache.rules_for_client(client), cache.directory_entry(user), client)
