"""What the IdP releases about a user to one service provider."""

from dataclasses import dataclass, field

from .constants import ATTRNAME_URI


@dataclass(frozen=True)
class NameID:
    value: str
    format: str
    sp_name_qualifier: str = ""


@dataclass(frozen=True)
class Attribute:
    name: str
    values: tuple[str, ...]
    name_format: str = ATTRNAME_URI
    friendly_name: str = ""


@dataclass(frozen=True)
class Release:
    name_id: NameID
    attributes: tuple[Attribute, ...] = field(default_factory=tuple)

    def values(self, name: str) -> tuple[str, ...]:
        for attribute in self.attributes:
            if attribute.name == name:
                return attribute.values
        return ()
