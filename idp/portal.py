"""The IdP-initiated portal: one tile per service provider, and per AWS account and role."""

from dataclasses import dataclass
from urllib.parse import urlencode

from . import cache, claims
from .models import ServiceProvider
from .saml import aws
from .saml.errors import SamlError


@dataclass(frozen=True)
class Tile:
    title: str
    subtitle: str
    url: str = ""
    problem: str = ""
    broker_role: str = ""  # a role the broker may assume for the user (idp/broker/)


def _init_url(sp: ServiceProvider, role_arn: str = "") -> str:
    query = {"sp": sp.entity_id}
    if role_arn:
        query["role"] = role_arn
    return "/saml/init/?" + urlencode(query)


def _aws_tiles(sp: ServiceProvider, role_values: tuple[str, ...]) -> list[Tile]:
    pairs = aws.parse_roles(role_values)
    if not pairs:
        return [
            Tile(
                sp.name,
                "no AWS roles",
                problem="None of your directory groups maps to an AWS role here.",
            )
        ]
    tiles = [
        Tile(
            f"{pair.role_name}",
            f"AWS account {pair.account}",
            _init_url(sp, pair.role_arn),
            broker_role=pair.role_arn,
        )
        for pair in pairs
    ]
    if len(pairs) > 1:
        tiles.append(Tile("All roles", "AWS shows its role picker", _init_url(sp)))
    return tiles


def tiles(user) -> list[tuple[ServiceProvider, list[Tile]]]:
    entry = cache.directory_entry(user)
    service_providers = ServiceProvider.objects.filter(enabled=True, allow_idp_initiated=True)
    result = []
    for sp in service_providers:
        if not sp.is_aws:
            result.append((sp, [Tile(sp.name, sp.entity_id, _init_url(sp))]))
            continue
        try:
            attributes = claims.evaluate(cache.rules_for(sp), entry, sp).attributes
        except SamlError as error:
            result.append((sp, [Tile(sp.name, "misconfigured", problem=error.detail)]))
            continue
        roles = next((a.values for a in attributes if a.name == aws.ROLE), ())
        result.append((sp, _aws_tiles(sp, roles)))
    return result
