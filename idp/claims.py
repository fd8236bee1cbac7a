"""Claim rules: (user, service provider) -> Release.

Rules are ordered data (global ones and the SP's own, merged by order). This
module reads the directory once per sign-on, in a fixed number of queries
whatever the number of groups or rules, then evaluates every rule against that
snapshot and records why each rule did or did not contribute.
"""

import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from users.models import DIRECTORY_FIELDS, DirectoryEntry, User

from . import cache, rule_syntax
from .models import ClaimRule, ServiceProvider
from .saml import constants as c
from .saml.errors import SamlError
from .saml.release import Attribute, NameID, Release


class NameIDUnavailable(SamlError):
    """The NameID asked for cannot be produced for this user; SAML calls it InvalidNameIDPolicy."""


class _TemplateValues(Mapping):
    """Placeholders of a template: named captures, {provider}, then directory references."""

    def __init__(self, entry: DirectoryEntry, sp: ServiceProvider, captures: Mapping):
        self.entry, self.sp, self.captures = entry, sp, captures

    def __getitem__(self, name: str) -> list[str]:
        if name in self.captures:
            return [self.captures[name] or ""]
        if name == "provider":
            return [self.sp.iam_provider_name]
        if name in DIRECTORY_FIELDS or name == "groups" or name.startswith("attr."):
            return self.entry.lookup(name)
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


@dataclass(frozen=True)
class Evaluation:
    attributes: tuple[Attribute, ...]
    trace: tuple[RuleOutcome, ...]


def _broken(rule: ClaimRule, sp: ServiceProvider, what: str) -> SamlError:
    return SamlError(
        "A claim rule is broken",
        f"Rule {rule} of {sp}: {what}.",
        "Fix the rule in the admin (Service providers → claim rules); saving it there checks it.",
        status=409,
    )


def _pattern(rule: ClaimRule, sp: ServiceProvider, pattern: str) -> re.Pattern:
    try:
        return rule_syntax.compile_pattern(pattern)
    except re.error as error:
        raise _broken(rule, sp, f"its pattern {pattern!r} is not a regex ({error})") from error


def _render(rule: ClaimRule, sp: ServiceProvider, values: Mapping) -> list[str]:
    try:
        return rule_syntax.render(rule.value, values)
    except KeyError as error:
        raise _broken(
            rule, sp, f"its template names {{{error.args[0]}}}, which is unknown"
        ) from None


def condition_holds(rule: ClaimRule, entry: DirectoryEntry, sp: ServiceProvider) -> bool:
    if rule.condition == ClaimRule.Condition.MEMBER_OF:
        holds = rule.condition_subject in entry.group_set
    elif rule.condition == ClaimRule.Condition.ATTRIBUTE_MATCHES:
        pattern = _pattern(rule, sp, rule.condition_pattern)
        holds = any(pattern.search(value) for value in entry.lookup(rule.condition_subject))
    else:
        holds = True
    return holds != rule.negate


def rule_values(rule: ClaimRule, entry: DirectoryEntry, sp: ServiceProvider) -> list[str]:
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


def evaluate_for(user: User, sp: ServiceProvider) -> Evaluation:
    return evaluate(cache.rules_for(sp), cache.directory_entry(user), sp)


def release(user: User, sp: ServiceProvider, requested_format: str = "") -> Release:
    return Release(
        name_id=name_id_for(user, sp, requested_format),
        attributes=evaluate_for(user, sp).attributes,
    )
