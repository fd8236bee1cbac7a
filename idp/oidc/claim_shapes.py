"""The shapes of JWT claims that claim rules emit: names, types and nesting. Pure.

A rule's claim name nests as Keycloak's protocol mappers do: a dot opens an object, and
`\\.` is a literal dot. So `https://aws\\.amazon\\.com/tags.principal_tags.Department`
builds {"https://aws.amazon.com/tags": {"principal_tags": {"Department": [...]}}}, the
object AWS reads session tags from in a web-identity token.

Values arrive as the engine gives them (text, in rule order, de-duplicated); the claim
type decides what the token carries: the first value (string, boolean) or all (list).
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

STRING, LIST, BOOLEAN = "string", "list", "boolean"
CLAIM_TYPES = (STRING, LIST, BOOLEAN)

# Set by the token endpoint from the request, the client, the user and the clock (RFC 7519
# section 4.1, OpenID Connect Core sections 2 and 3.1.3.6). A rule that set one would make
# tokens that verifiers refuse (iss, aud, exp, nbf, iat, nonce, at_hash, c_hash), that
# replay (jti), or that speak for another subject, client or sign-in (sub, azp, auth_time,
# acr, amr, sid). The validator (idp/oidc/validator.py) drops the same names from the rules'
# claims; refusing them when a rule is saved says so before a token goes without them.
RESERVED_CLAIMS = frozenset(
    ("iss", "sub", "aud", "exp", "nbf", "iat", "jti", "auth_time", "nonce", "azp", "at_hash")
    + ("c_hash", "acr", "amr", "sid")
)
_BOOLEANS = {"true": True, "false": False}
# An unescaped dot splits; "\." stays a dot. A backslash before anything else is literal.
_SEGMENT = re.compile(r"(?:\\.|[^.\\]|\\$)*")


class ClaimShapeError(ValueError):
    """A rule's claim cannot be built; the message says which and how to fix it."""


@dataclass(frozen=True)
class Shaped:
    value: object
    note: str  # why fewer values reached the token than the rules gave; "" if none were lost


def claim_path(name: str) -> tuple[str, ...]:
    """The nesting a claim name means; raises ClaimShapeError for an empty segment."""
    segments, position = [], 0
    while True:
        match = _SEGMENT.match(name, position)
        segment = match.group(0)
        if not segment:
            where = "the start" if position == 0 else f"position {position + 1}"
            raise ClaimShapeError(
                f"The claim name {name!r} has an empty part at {where}: "
                "a dot separates nested names, so write a name on each side of it "
                "(or \\. for a dot inside a name)."
            )
        segments.append(segment.replace("\\.", "."))
        position = match.end()
        if position == len(name):
            return tuple(segments)
        position += 1  # the dot
        if position == len(name):
            raise ClaimShapeError(
                f"The claim name {name!r} ends with a dot: name what it nests, or write \\. "
                "for a literal dot."
            )


def name_problem(name: str) -> str:
    """What is wrong with a claim name for a rule, or "" if it may be used."""
    if not name:
        return "Name the claim."
    try:
        path = claim_path(name)
    except ClaimShapeError as error:
        return str(error)
    if path[0] in RESERVED_CLAIMS:
        return (
            f"{path[0]!r} is a registered claim that the token endpoint sets from the request, "
            "the user and the clock; a rule that set it would make tokens that verifiers refuse "
            "or that speak for someone else. Pick another name (reserved: "
            f"{', '.join(sorted(RESERVED_CLAIMS))})."
        )
    return ""


def value_problem(claim_type: str, value: str) -> str:
    """What is wrong with one value for the claim type, or "" if it fits."""
    if claim_type == BOOLEAN and value.lower() not in _BOOLEANS:
        return f"A boolean claim takes true or false, not {value!r}."
    return ""


def shape(claim_type: str, values: Sequence[str]) -> Shaped:
    """The JSON value of a claim; raises ClaimShapeError for a value the type cannot take."""
    if claim_type == LIST:
        return Shaped(list(values), "")
    if claim_type not in (STRING, BOOLEAN):
        raise ClaimShapeError(f"Unknown claim type {claim_type!r}; use one of {CLAIM_TYPES}.")
    first = values[0]
    note = (
        f"a {claim_type} claim takes one value: kept {first!r}, dropped "
        f"{', '.join(map(repr, values[1:]))}; make it a list claim to send them all"
        if len(values) > 1
        else ""
    )
    if claim_type == STRING:
        return Shaped(first, note)
    if problem := value_problem(BOOLEAN, first):
        raise ClaimShapeError(problem)
    return Shaped(_BOOLEANS[first.lower()], note)


def display(path: Sequence[str]) -> str:
    """A path as a rule writes it (dots inside names escaped)."""
    return ".".join(segment.replace(".", "\\.") for segment in path)


def conflict(a: tuple[tuple[str, ...], str], b: tuple[tuple[str, ...], str]) -> str:
    """Why two (path, claim type) pairs cannot be in one token, or "" if they can.

    The same path with the same type accumulates values, as SAML attributes do. A path
    that is a prefix of another would have to be a value and an object at once.
    """
    (path_a, type_a), (path_b, type_b) = a, b
    if path_a == path_b:
        if type_a != type_b:
            return (
                f"the claim {display(path_a)} is a {type_a} in one rule and a {type_b} in "
                "another; give every rule for one claim the same type"
            )
        return ""
    shorter, longer = sorted((path_a, path_b), key=len)
    if longer[: len(shorter)] == shorter:
        return (
            f"{display(shorter)} would be a value and also the object that holds "
            f"{display(longer)}; rename one of them"
        )
    return ""


def first_conflict(pairs: Iterable[tuple[tuple[str, ...], str]]) -> str:
    """The first conflict among (path, claim type) pairs, or ""."""
    seen: dict[tuple[str, ...], str] = {}
    for pair in pairs:
        for other in seen.items():
            if problem := conflict(other, pair):
                return problem
        seen.setdefault(*pair)
    return ""


def place(document: dict, path: Sequence[str], value) -> None:
    """Put a value at a path, making the objects on the way (conflicts are checked first)."""
    holder = document
    for segment in path[:-1]:
        holder = holder.setdefault(segment, {})
    holder[path[-1]] = value
