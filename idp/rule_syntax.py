"""The small languages of claim rules: regex dialects and value templates.

Patterns accept Python's (?P<name>…), .NET's (?<name>…) as ADFS writes them,
and Okta's (?{{name}}…). Templates use {name}, or ${name} as ADFS and Okta
write it. Substitution is plain text replacement, never str.format, so a
template cannot reach into objects ({x.__class__}) or apply format specs.
"""

import itertools
import re
from collections.abc import Mapping, Sequence

PLACEHOLDER = re.compile(r"\$?\{([^{}]*)\}")
_OKTA_GROUP = re.compile(r"\(\?\{\{(\w+)\}\}")
_DOTNET_GROUP = re.compile(r"\(\?<(?![=!])(\w+)>")
MAX_VALUES_PER_TEMPLATE = 100


def compile_pattern(pattern: str) -> re.Pattern:
    """Compile a rule regex written in any of the three dialects; raises re.error."""
    python = _DOTNET_GROUP.sub(r"(?P<\1>", _OKTA_GROUP.sub(r"(?P<\1>", pattern))
    try:
        return re.compile(python)
    except (OverflowError, RecursionError) as error:  # a{4294967296}, or nesting too deep
        raise re.error(f"too large to compile ({error})") from error


def template_problem(template: str) -> str:
    """What is wrong with the template's braces, or "" if they pair up.

    A brace that opens or closes no placeholder would be sent literally in every
    response, so a template has no lone { or }, and no nested or empty placeholders.
    (${name} is a placeholder too; a $ elsewhere is plain text.)
    """
    opened = -1  # position of the open brace, or -1
    for position, character in enumerate(template):
        if character == "{":
            if opened >= 0:
                return f"The brace at position {opened + 1} is not closed before the next one."
            opened = position
        elif character == "}":
            if opened < 0:
                return f"The }} at position {position + 1} closes no placeholder."
            if position == opened + 1:
                return f"The placeholder at position {opened + 1} is empty: name a value."
            opened = -1
    if opened >= 0:
        return (
            f"The brace at position {opened + 1} is not closed: "
            f"write {{name}} or ${{name}}, e.g. {{email}}."
        )
    return ""


def placeholders(template: str) -> list[str]:
    return PLACEHOLDER.findall(template)


def render(template: str, values: Mapping[str, Sequence[str]]) -> list[str]:
    """Every filling of the template; a multi-valued placeholder gives one value per value.

    A placeholder with no values makes the template give nothing, as an ADFS
    rule issues no claim when its input claim is missing; an empty value (an
    empty capture, say) fills in as empty text. KeyError names an unknown placeholder.
    """
    names = list(dict.fromkeys(placeholders(template)))
    choices = [values[name] for name in names]
    results = []
    for combination in itertools.islice(itertools.product(*choices), MAX_VALUES_PER_TEMPLATE):
        filling = dict(zip(names, combination, strict=True))
        results.append(PLACEHOLDER.sub(lambda match, f=filling: f[match.group(1)], template))
    return results
