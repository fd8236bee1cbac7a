"""Claim rule templates: `{name}` placeholders, and nothing else.

Plain substitution instead of str.format, so a template cannot reach into
attributes (`{x.__class__}`) or apply format specs.
"""

import re
from collections.abc import Mapping

PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def placeholders(template: str) -> set[str]:
    return set(PLACEHOLDER.findall(template))


def render(template: str, values: Mapping[str, str | None]) -> str:
    """Fill every {name}; raises KeyError naming the first unknown placeholder."""
    return PLACEHOLDER.sub(lambda match: values[match.group(1)] or "", template)
