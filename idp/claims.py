"""Claim rules: (user, service provider) -> Release.

Rules are data in the admin; this module reads the directory once per sign-on
(a fixed number of queries) and evaluates every rule against that snapshot.
"""

import re
import secrets
from dataclasses import dataclass

from users.models import User, group_names_for

from . import rule_templates
from .models import ClaimRule, PersistentNameID, ServiceProvider
from .saml import constants as c
from .saml.errors import SamlError
from .saml.release import Attribute, NameID, Release


class NameIDUnavailable(SamlError):
    """The NameID asked for cannot be produced for this user; SAML calls it InvalidNameIDPolicy."""


@dataclass(frozen=True)
class DirectoryEntry:
    """What rules may read about one user: fields, attributes, transitive groups."""

    fields: dict[str, str]
    attributes: dict[str, list[str]]
    groups: list[str]

    @classmethod
    def of(cls, user: User) -> "DirectoryEntry":
        return cls(
            fields={name: getattr(user, name) or "" for name in ClaimRule.USER_FIELDS},
            attributes=user.attribute_values(),
            groups=group_names_for(user),
        )


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
    persistent, _ = PersistentNameID.objects.get_or_create(user=user, service_provider=sp)
    return NameID(persistent.value, name_format, sp_name_qualifier=sp.entity_id)


def rule_values(rule: ClaimRule, entry: DirectoryEntry, sp: ServiceProvider) -> list[str]:
    if rule.kind == ClaimRule.Kind.USER_VALUE:
        if rule.source.startswith("attr."):
            return list(entry.attributes.get(rule.source.removeprefix("attr."), []))
        value = entry.fields.get(rule.source, "")
        return [value] if value else []
    try:
        pattern = re.compile(rule.group_pattern)
    except re.error as error:
        raise SamlError(
            "A claim rule is broken",
            f"Rule {rule} of {sp}: its pattern {rule.group_pattern!r} is not a regex ({error}).",
            "Fix the rule's pattern in the admin; saving it there checks it.",
            status=409,
        ) from error
    values = []
    for group in entry.groups:
        if match := pattern.search(group):
            try:
                values.append(
                    rule_templates.render(
                        rule.value_template, {"provider": sp.iam_provider_name, **match.groupdict()}
                    )
                )
            except KeyError as error:
                raise SamlError(
                    "A claim rule is broken",
                    f"Rule {rule} of {sp}: its template {rule.value_template!r} names "
                    f"{{{error.args[0]}}}, which its pattern does not capture.",
                    "Fix the rule's template in the admin: use only {provider} and the named "
                    "groups of its pattern.",
                    status=409,
                ) from error
    return values


def evaluate(
    rules: list[ClaimRule], entry: DirectoryEntry, sp: ServiceProvider
) -> tuple[Attribute, ...]:
    """Values for one attribute name accumulate across rules, de-duplicated, in order."""
    collected: dict[str, tuple[ClaimRule, dict[str, None]]] = {}
    for rule in rules:
        values = rule_values(rule, entry, sp)
        if not values:
            continue
        _, seen = collected.setdefault(rule.attribute_name, (rule, {}))
        seen.update(dict.fromkeys(values))
    return tuple(
        Attribute(
            name=name,
            values=tuple(values),
            name_format=rule.name_format,
            friendly_name=rule.friendly_name,
        )
        for name, (rule, values) in collected.items()
    )


def release(user: User, sp: ServiceProvider, requested_format: str = "") -> Release:
    rules = [rule for rule in sp.rules.all() if rule.enabled]
    return Release(
        name_id=name_id_for(user, sp, requested_format),
        attributes=evaluate(rules, DirectoryEntry.of(user), sp),
    )
