"""The trust-policy evaluator: does a role's trust policy let this principal do these actions?

Pure: a policy (JSON text or dict) and a `PolicyRequest` in, a `Decision` out; a policy
that AWS would refuse raises StsError("MalformedPolicyDocument"). No Django, no clock.

Why our own: no well-kept Python library evaluates a policy against a request context.
moto's `access_control` knows only StringEquals, passes every other operator, and turns
policy text into a regular expression unescaped; policyuniverse, parliament and
iam-policy-validator lint or summarise policies but evaluate none. The well-kept
evaluators (@cloud-copilot/iam-simulate in TypeScript, iam-rs in Rust) are not Python.

The rules are AWS's, from the IAM User Guide pages "Policy evaluation logic", "IAM JSON
policy elements: Condition operators", "Conditions with multiple context keys or values"
and "Single-valued vs. multivalued context keys":

- An explicit Deny wins; without an Allow the answer is no (the implicit deny). Every
  action of the request must be allowed (sts:AssumeRoleWithSAML, and sts:TagSession
  when tags are sent, sts:SetSourceIdentity when a SourceIdentity is).
- Operator blocks are ANDed, the keys of a block are ANDed, the values of one key are
  ORed; for a negated operator (StringNotEquals, ...) they are NORed.
- Key names are case-insensitive; values are case-sensitive except for the IgnoreCase
  operators (and Bool's true/false).
- A key absent from the request: a positive operator is false, a negated one is true
  ("If the policy condition requires that the key is not matched ... and the right key
  is not present, the condition is true"); ...IfExists is true; Null tests presence.
- ForAnyValue: true if some request value matches; an absent or empty key is false.
  ForAllValues: true if every request value matches; an absent or empty key is TRUE.
- A multivalued key (a list of several values) under an operator without a set operator:
  AWS says such keys "require a condition set operator" and documents no result without
  one. fedmock compares each value (ForAnyValue's rule for a positive operator, and the
  exact complement for its negation, so StringNotEquals stays "not StringEquals") and
  says so in the explanation, naming the set operator AWS asks for. A list of one value
  is that value.
- Policy variables (version 2012-10-17, string and ARN values): `${saml:sub}` is the
  request's single value of the key, `${key, 'default'}` has a default, `${*}`, `${?}`,
  `${$}` are those characters. A variable without a value (absent or multivalued key, no
  default) fails its condition: AWS says it "might cause the entire statement to be
  invalid".

Work is bounded: the policy has AWS's hard cap on length (4,096 characters without
white space; the default quota is 2,048, which IAM enforces when the policy is stored),
and wildcards match by bit-parallel simulation of the pattern, one step per character
of the request value, whatever the pattern: no regular expression is built from policy
text, and no backtracking. A step costs more as the pattern grows, and a policy variable
can grow a pattern to the size of a request value (up to the assertion's 100,000
characters), so a pattern without wildcards is compared as text, each condition is
judged once for all the request's actions, and an evaluation that would take more than
MAX_MATCH_WORK steps of a 64-character pattern stops and refuses the request (the
explanation says so; AWS documents no such limit, and no sane policy comes near it).
"""

import datetime
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from .errors import (
    LIMIT_EXCEEDED,
    POLICY_INVALID_PRINCIPAL,
    POLICY_PROHIBITED_FIELD,
    POLICY_SYNTAX,
    POLICY_TRUST_ACTIONS,
    StsError,
)

# AWS's quota for a role's trust policy ("Role trust policy length"): 2,048 characters by
# default, raised on request up to 4,096. White space is not counted.
TRUST_POLICY_DEFAULT_MAX = 2048
TRUST_POLICY_HARD_MAX = 4096
# The API parameter's own limit (botocore's policyDocumentType): text beyond it is
# refused before any parsing, white space or not.
POLICY_DOCUMENT_MAX_TEXT = 131072

# Under a second of matching (see the module's note); 100 wildcard conditions over
# 1,000-character values spend a fortieth of it.
MAX_MATCH_WORK = 4_000_000

VERSIONS = ("2012-10-17", "2008-10-17")
_STATEMENT_FIELDS = frozenset(
    {
        "Sid",
        "Effect",
        "Principal",
        "NotPrincipal",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
    }
)
_PRINCIPAL_TYPES = ("AWS", "Federated", "Service", "CanonicalUser")


# --- The request and the answer ----------------------------------------------------


@dataclass(frozen=True)
class PolicyRequest:
    """Who asks (`principal`: type -> ARNs or names), for what, in which context.

    `context` maps condition keys (matched case-insensitively) to a value, a list of
    values (a multivalued key), a bool, or None (absent).
    """

    principal: Mapping[str, Sequence[str]]
    actions: tuple[str, ...]
    context: Mapping[str, str | list[str] | bool | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    denied_action: str | None
    explanation: tuple[str, ...]


# --- Errors -------------------------------------------------------------------------


def _malformed(message: str, *explanation: str) -> StsError:
    return StsError("MalformedPolicyDocument", message, explanation)


def _syntax(*explanation: str) -> StsError:
    # AWS answers most structural faults with this one sentence; the explanation says which.
    return POLICY_SYNTAX.error(*explanation)


_NO_VENDOR = "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."


# --- Wildcards ----------------------------------------------------------------------


class Wildcard(str):
    """A `*` or `?` that is a wildcard, in a pattern given as a sequence of tokens (a
    policy variable's value, or `${*}`, is literal text even when it holds `*`)."""


STAR, ANY = Wildcard("*"), Wildcard("?")


def _tokens(pattern: "str | Sequence[str]") -> Sequence[str]:
    if isinstance(pattern, str):  # policy text: every `*` and `?` is a wildcard
        return [STAR if ch == "*" else ANY if ch == "?" else ch for ch in pattern]
    return pattern


class GlobSet:
    """Several wildcard patterns (`*` any run, `?` one character) matched at once.

    Each pattern is a little automaton whose states are the bits of one integer; a
    request character moves every live state in one step of integer arithmetic
    (the shift-and method), so a match costs len(value) steps, whatever the patterns
    hold: `*a*a*a*a*b` against a long run of `a` is as cheap as `abc`.
    `steps` counts the characters consumed by the last `match`, for tests.
    """

    def __init__(self, patterns: "Iterable[str | Sequence[str]]"):
        self.patterns = tuple(patterns)
        chars: dict[str, int] = {}  # character -> the states it advances
        any_char = 0  # states a `?` advances (any character)
        star = 0  # states that stay put on any character (a `*`)
        start = accept = 0
        bit = 0
        for pattern in self.patterns:
            compact: list[str] = []
            for ch in _tokens(pattern):  # `**` is `*`: one state each keeps the closure one step
                if not (ch is STAR and compact and compact[-1] is STAR):
                    compact.append(ch)
            start |= 1 << bit
            for ch in compact:
                if ch is STAR:
                    star |= 1 << bit
                elif ch is ANY:
                    any_char |= 1 << bit
                else:
                    chars[ch] = chars.get(ch, 0) | (1 << bit)
                bit += 1
            accept |= 1 << bit  # the state after the last character; it advances on nothing
            bit += 1
        self._chars = chars
        self._any = any_char
        self._star = star
        self._start = self._closure(start)
        self._accept = accept
        self.steps = 0
        # What one character costs, in steps of a 64-character automaton: Python's
        # integer operations take time in proportion to the integer's width.
        self.weight = 1 + bit // 64

    def _closure(self, states: int) -> int:
        # A `*` also matches nothing: being before it is being after it. Runs of `*`
        # were merged, so one shift reaches the character after the star.
        return states | ((states & self._star) << 1)

    def match(self, value: str, work: "Work | None" = None) -> bool:
        if work is not None:
            work.spend(len(value) * self.weight)
        states = self._start
        self.steps = 0
        for ch in value:
            self.steps += 1
            advance = self._chars.get(ch, 0) | self._any
            states = self._closure(((states & advance) << 1) | (states & self._star))
            if not states:
                break
        return bool(states & self._accept)


class Work:
    """The matching work one evaluation may still spend (MAX_MATCH_WORK)."""

    def __init__(self, budget: int = MAX_MATCH_WORK):
        self.left = budget

    def spend(self, steps: int) -> None:
        self.left -= steps
        if self.left < 0:
            raise _TooMuchWork


class _TooMuchWork(Exception):
    pass


def _is_literal(pattern: "str | Sequence[str]") -> bool:
    return not any(isinstance(token, Wildcard) for token in _tokens(pattern))


# --- Parsing ------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    operator: str  # as written, e.g. "ForAllValues:StringLike"
    base: str  # "StringLike"
    set_operator: str | None  # "ForAnyValue", "ForAllValues" or None
    if_exists: bool
    key: str  # as written in the policy, e.g. "SAML:sub"
    values: tuple[str, ...]
    variables: bool = False  # values hold ${...} policy variables (2012-10-17 only)


@dataclass(frozen=True)
class Statement:
    index: int
    sid: str | None
    effect: str
    principal: Mapping[str, tuple[str, ...]] | None  # None: "*" (everyone)
    principal_negated: bool  # NotPrincipal
    actions: tuple[str, ...]
    actions_negated: bool  # NotAction
    conditions: tuple[Condition, ...]

    @property
    def label(self) -> str:
        return f'Statement "{self.sid}"' if self.sid else f"Statement {self.index}"


@dataclass(frozen=True)
class Policy:
    version: str | None
    statements: tuple[Statement, ...]


_STRING_OPS = {
    "StringEquals": False,
    "StringNotEquals": True,
    "StringEqualsIgnoreCase": False,
    "StringNotEqualsIgnoreCase": True,
    "StringLike": False,
    "StringNotLike": True,
}
_NUMERIC_OPS = {
    "NumericEquals": False,
    "NumericNotEquals": True,
    "NumericLessThan": False,
    "NumericLessThanEquals": False,
    "NumericGreaterThan": False,
    "NumericGreaterThanEquals": False,
}
_DATE_OPS = {name.replace("Numeric", "Date"): negated for name, negated in _NUMERIC_OPS.items()}
_ARN_OPS = {"ArnEquals": False, "ArnLike": False, "ArnNotEquals": True, "ArnNotLike": True}
_OTHER_OPS = {"Bool": False, "BinaryEquals": False, "IpAddress": False, "NotIpAddress": True}
# base operator -> negated?
OPERATORS = {**_STRING_OPS, **_NUMERIC_OPS, **_DATE_OPS, **_ARN_OPS, **_OTHER_OPS, "Null": False}


def policy_size(text: str) -> int:
    """A policy's length as IAM counts it against its quota: white space is not counted."""
    return sum(1 for ch in text if not ch.isspace())


def parse_policy(policy: "str | Mapping | Policy") -> Policy:
    """The policy, checked and parsed; StsError MalformedPolicyDocument if AWS would refuse it."""
    if isinstance(policy, Policy):
        return policy
    if isinstance(policy, str):
        text = policy
        if len(text) > POLICY_DOCUMENT_MAX_TEXT:
            raise _syntax(f"The policy text has {len(text)} characters (at most 131072).")
    elif isinstance(policy, Mapping):
        try:
            text = json.dumps(policy, ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise _syntax(f"The policy is not JSON data: {exc}.") from None
    else:
        raise _syntax(f"A policy is JSON text or an object, not {type(policy).__name__}.")
    size = policy_size(text)
    if size > TRUST_POLICY_HARD_MAX:
        raise LIMIT_EXCEEDED.error(
            f"The trust policy has {size} characters without white space; AWS allows "
            f"{TRUST_POLICY_DEFAULT_MAX} by default and {TRUST_POLICY_HARD_MAX} at most.",
            quota="ACLSizePerRole",
            limit=TRUST_POLICY_HARD_MAX,
        )
    try:
        document = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except (ValueError, RecursionError) as exc:
        raise _syntax(f"The policy is not valid JSON: {exc}.") from None
    return _parse_document(document)


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    # JSON allows a name twice and keeps the last; a policy that says two things must not
    # be read as saying one of them.
    seen: dict[str, object] = {}
    for name, value in pairs:
        if name in seen:
            raise ValueError(f"the name {name!r} appears twice in one object")
        seen[name] = value
    return seen


def _parse_document(document: object) -> Policy:
    if not isinstance(document, dict):
        raise _syntax("The policy is not a JSON object.")
    unknown = set(document) - {"Version", "Id", "Statement"}
    if unknown:
        raise _syntax(f"Unknown top-level element(s): {', '.join(sorted(unknown))}.")
    version = document.get("Version")
    if version is not None and version not in VERSIONS:
        raise _syntax(f"Version {json.dumps(version)} is neither 2012-10-17 nor 2008-10-17.")
    if "Id" in document and not isinstance(document["Id"], str):
        raise _syntax("Id must be a string.")
    if "Statement" not in document:
        raise _syntax("The policy has no Statement.")
    raw = document["Statement"]
    raw_statements = raw if isinstance(raw, list) else [raw]
    if not raw_statements:
        raise _syntax("Statement is an empty list.")
    statements = tuple(
        _parse_statement(i, s, variables=version == "2012-10-17")
        for i, s in enumerate(raw_statements)
    )
    sids = [s.sid for s in statements if s.sid]
    if len(sids) != len({sid for sid in sids}):
        raise _malformed("Statement IDs (SID) in a single policy must be unique.")
    return Policy(version, statements)


def _strings(value: object, what: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, str) for item in items):
        raise _syntax(f"{what} must be a string or a non-empty list of strings.")
    return tuple(items)


def _parse_statement(index: int, raw: object, *, variables: bool) -> Statement:
    where = f"Statement {index}"
    if not isinstance(raw, dict):
        raise _syntax(f"{where} is not a JSON object.")
    unknown = set(raw) - _STATEMENT_FIELDS
    if unknown:
        raise _syntax(f"{where} has unknown element(s): {', '.join(sorted(unknown))}.")
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise _syntax(f"{where}: Sid must be a string.")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise _syntax(f"{where}: Effect is {json.dumps(effect)}, not Allow or Deny.")
    for prohibited in ("Resource", "NotResource"):
        # A trust policy's resource is the role itself; IAM refuses the element.
        if prohibited in raw:
            raise POLICY_PROHIBITED_FIELD.error(f"{where} has {prohibited}.", field=prohibited)
    if ("Action" in raw) == ("NotAction" in raw):
        raise _malformed(
            "Policy statement must contain actions.",
            f"{where} needs exactly one of Action and NotAction.",
        )
    actions_negated = "NotAction" in raw
    actions = _strings(raw["NotAction" if actions_negated else "Action"], f"{where}: Action")
    for action in actions:
        if action != "*" and ":" not in action:
            raise _malformed(
                _NO_VENDOR, f"{where}: action {action!r} has no service prefix such as sts:."
            )
        if action != "*" and action.split(":", 1)[0].lower() != "sts":
            # A trust policy says who may assume the role: IAM refuses any other service.
            raise POLICY_TRUST_ACTIONS.error(
                f"{where}: action {action!r} is not an STS action; a trust policy names "
                "sts:AssumeRoleWithSAML, sts:TagSession, sts:SetSourceIdentity and the like."
            )
    if ("Principal" in raw) == ("NotPrincipal" in raw):
        raise _malformed(
            "Missing required field Principal",
            f"{where} needs exactly one of Principal and NotPrincipal (a trust policy names "
            "who may assume the role).",
        )
    principal_negated = "NotPrincipal" in raw
    principal = _parse_principal(raw["NotPrincipal" if principal_negated else "Principal"], where)
    conditions = _parse_conditions(raw.get("Condition", {}), where, variables=variables)
    return Statement(
        index=index,
        sid=sid or None,
        effect=effect,
        principal=principal,
        principal_negated=principal_negated,
        actions=actions,
        actions_negated=actions_negated,
        conditions=conditions,
    )


def _parse_principal(raw: object, where: str) -> Mapping[str, tuple[str, ...]] | None:
    if raw == "*":
        return None
    if not isinstance(raw, dict) or not raw:
        raise POLICY_INVALID_PRINCIPAL.error(
            f'{where}: Principal is "*" or an object such as {{"Federated": "arn:..."}}.',
            principal=json.dumps(raw, ensure_ascii=False),
        )
    principal: dict[str, tuple[str, ...]] = {}
    for kind, names in raw.items():
        if kind not in _PRINCIPAL_TYPES:
            raise POLICY_INVALID_PRINCIPAL.error(
                f"{where}: principal type {kind!r} is not one of {', '.join(_PRINCIPAL_TYPES)}.",
                principal=json.dumps({kind: names}, ensure_ascii=False),
            )
        principal[kind] = _strings(names, f"{where}: Principal {kind}")
    if principal.get("AWS") == ("*",):
        return None  # AWS: {"AWS": "*"} is the same as "*"
    return principal


def _parse_conditions(raw: object, where: str, *, variables: bool) -> tuple[Condition, ...]:
    if not isinstance(raw, dict):
        raise _syntax(f"{where}: Condition must be an object of operators.")
    conditions = []
    for operator, block in raw.items():
        set_operator, base, if_exists = _split_operator(operator, where)
        if not isinstance(block, dict):
            raise _syntax(f"{where}: Condition {operator} must map keys to values.")
        for key, value in block.items():
            values = _condition_values(value, f"{where}: {operator} {key}")
            if ":" not in key:
                raise _malformed(
                    _NO_VENDOR,
                    f"{where}: condition key {key!r} has no prefix such as saml: or aws:.",
                )
            _check_values(base, values, f"{where}: {operator} {key}")
            # Policy variables exist from version 2012-10-17 on, in string and ARN values;
            # in a 2008-10-17 policy `${x}` is plain text.
            has_variables = (
                variables
                and (base in _STRING_OPS or base in _ARN_OPS)
                and any("${" in value for value in values)
            )
            conditions.append(
                Condition(operator, base, set_operator, if_exists, key, values, has_variables)
            )
    return tuple(conditions)


def _split_operator(operator: str, where: str) -> tuple[str | None, str, bool]:
    set_operator = None
    base = operator
    for prefix in ("ForAnyValue:", "ForAllValues:"):
        if base.startswith(prefix):
            set_operator, base = prefix[:-1], base[len(prefix) :]
    if_exists = base.endswith("IfExists") and base != "IfExists"
    if if_exists:
        base = base[: -len("IfExists")]
    if base not in OPERATORS or (base == "Null" and (if_exists or set_operator)):
        raise _syntax(f"{where}: {operator!r} is not a condition operator AWS knows.")
    return set_operator, base, if_exists


def _condition_values(value: object, where: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, bool):  # before int: True is an int to Python
            out.append("true" if item else "false")
        elif isinstance(item, int | float):
            out.append(json.dumps(item))
        elif isinstance(item, str):
            out.append(item)
        else:
            raise _syntax(
                f"{where}: a condition value is a string, number or boolean, not "
                f"{json.dumps(item)}."
            )
    return tuple(out)


def _check_values(base: str, values: tuple[str, ...], where: str) -> None:
    """Values that the operator cannot read make the policy malformed, as in IAM."""
    for value in values:
        if base in _NUMERIC_OPS and _number(value) is None:
            raise _syntax(f"{where}: {value!r} is not a number.")
        if base in _DATE_OPS and _date(value) is None:
            raise _syntax(f"{where}: {value!r} is not a date (ISO 8601 or epoch seconds).")
        if base in ("Bool", "Null") and value.lower() not in ("true", "false"):
            raise _syntax(f"{where}: {value!r} is neither true nor false.")
        if base in ("IpAddress", "NotIpAddress") and _network(value) is None:
            raise _syntax(f"{where}: {value!r} is not an IP address or CIDR range.")


# --- Values -------------------------------------------------------------------------


def _number(text: str) -> Decimal | None:
    if len(text) > 64:  # no number in a request or policy needs more; bounds Decimal's work
        return None
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _date(text: str) -> datetime.datetime | None:
    text = text.strip()
    if text.isdigit() and len(text) <= 12:
        try:
            return datetime.datetime.fromtimestamp(int(text), datetime.UTC)
        except (OverflowError, ValueError, OSError):  # beyond year 9999
            return None
    if len(text) > 64:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def _request_values(value: object) -> tuple[str, ...] | None:
    """The request's values of a key; None when the key is absent."""
    if value is None:
        return None
    if isinstance(value, bool):
        return ("true" if value else "false",)
    if isinstance(value, str):
        return (value,)
    if isinstance(value, int | float):
        return (json.dumps(value),)
    return tuple("true" if v is True else "false" if v is False else str(v) for v in value)


def _context(request: PolicyRequest) -> dict[str, tuple[str, ...]]:
    context: dict[str, tuple[str, ...]] = {}
    for key, value in request.context.items():
        values = _request_values(value)
        if values is None:
            continue
        # Key names are case-insensitive: two spellings of one key are one key.
        context[key.lower()] = context.get(key.lower(), ()) + values
    return context


# --- Matching one value -------------------------------------------------------------


class _Matcher:
    """One condition's policy values, compiled once: `positive(v)` is True when the
    request value v matches at least one of them under the operator's positive form."""

    def __init__(self, condition: Condition, patterns: "Sequence[str | Sequence[str]]", work: Work):
        # `patterns`: the policy's values, as text or (after policy variables) as tokens.
        base = condition.base
        self.base = base
        values = ["".join(pattern) for pattern in patterns]  # wildcards as plain text
        if base in ("StringEquals", "StringNotEquals", "BinaryEquals"):
            wanted = frozenset(values)
            self.positive = wanted.__contains__
        elif base in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
            lowered = frozenset(v.lower() for v in values)
            self.positive = lambda v: v.lower() in lowered
        elif base in ("StringLike", "StringNotLike"):
            # A pattern without wildcards (often one policy variable) is plain text.
            literal = frozenset("".join(p) for p in patterns if _is_literal(p))
            glob = GlobSet(p for p in patterns if not _is_literal(p))
            self.positive = lambda v: v in literal or bool(glob.patterns and glob.match(v, work))
        elif base == "Bool":
            lowered = frozenset(v.lower() for v in values)
            self.positive = lambda v: v.lower() in lowered
        elif base in _NUMERIC_OPS:
            numbers = [_number(v) for v in values]
            compare = _COMPARE[base.removeprefix("Numeric")]
            self.positive = lambda v: _compare_any(_number(v), numbers, compare)
        elif base in _DATE_OPS:
            dates = [_date(v) for v in values]
            compare = _COMPARE[base.removeprefix("Date")]
            self.positive = lambda v: _compare_any(_date(v), dates, compare)
        elif base in _ARN_OPS:
            # Each of the six colon-separated parts is matched on its own, with wildcards,
            # case-sensitively; ArnEquals is ArnLike (AWS documents the two alike).
            globs = [tuple(GlobSet((part,)) for part in _arn_parts(p)) for p in patterns]
            self.positive = lambda v: _arn_match(v, globs, work)
        elif base in ("IpAddress", "NotIpAddress"):
            networks = [_network(v) for v in values]
            self.positive = lambda v: _ip_match(v, networks)
        else:  # pragma: no cover - _split_operator admits only the operators above
            raise AssertionError(base)
        self.negated = OPERATORS[base]

    def __call__(self, value: str) -> bool:
        """The operator's verdict on one request value (a negated operator: matches none)."""
        return self.positive(value) != self.negated


_COMPARE = {
    "Equals": lambda a, b: a == b,
    "NotEquals": lambda a, b: a == b,  # the negation is applied by _Matcher
    "LessThan": lambda a, b: a < b,
    "LessThanEquals": lambda a, b: a <= b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanEquals": lambda a, b: a >= b,
}


def _compare_any(value, policy_values, compare) -> bool:
    if value is None:
        return False
    return any(p is not None and compare(value, p) for p in policy_values)


def _arn_parts(pattern: "str | Sequence[str]") -> tuple[Sequence[str], ...]:
    # The resource part may hold colons itself: only the first five separate parts.
    if isinstance(pattern, str):
        parts = pattern.split(":", 5)
        return tuple(parts) if len(parts) == 6 else (pattern,)  # not an ARN: the whole text
    token_parts: list[list[str]] = [[]]
    for piece in pattern:
        if piece == ":" and len(token_parts) < 6:
            token_parts.append([])
        else:
            token_parts[-1].append(piece)
    return tuple(token_parts) if len(token_parts) == 6 else (pattern,)


def _arn_match(value: str, globs: list[tuple[GlobSet, ...]], work: Work) -> bool:
    parts = _arn_parts(value)
    return any(
        len(glob) == len(parts) and all(g.match(p, work) for g, p in zip(glob, parts, strict=True))
        for glob in globs
    )


def _ip_match(value: str, networks) -> bool:
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return False
    return any(n is not None and address in n for n in networks)  # another version: False


# --- Policy variables ---------------------------------------------------------------

# A fixed expression (not built from policy text), with no nested repetition: linear.
_VARIABLE = re.compile(r"\$\{([^{}]*)\}")


def _expand(text: str, context: dict[str, tuple[str, ...]]) -> list[str] | None:
    """A value with its ${...} variables replaced, as tokens; None if one has no value.

    `${key}` takes the request's single value of key (case-insensitive name), or the
    default of `${key, 'default'}` ('' in it is a quote); `${*}`, `${?}` and `${$}` are
    the characters themselves, never wildcards. A substituted value is literal text too.
    """
    tokens: list[str] = []
    position = 0
    for found in _VARIABLE.finditer(text):
        tokens.extend(_tokens(text[position : found.start()]))
        position = found.end()
        inner = found.group(1).strip()
        if inner in ("*", "?", "$"):
            tokens.append(inner)
            continue
        name, comma, default = inner.partition(",")
        values = context.get(name.strip().lower())
        if values is not None and len(values) == 1:
            tokens.extend(values[0])
            continue
        default = default.strip()
        if not comma or len(default) < 2 or default[0] != "'" or default[-1] != "'":
            return None
        tokens.extend(default[1:-1].replace("''", "'"))
    tokens.extend(_tokens(text[position:]))
    return tokens


# --- Conditions ---------------------------------------------------------------------


def _show(values: Iterable[str]) -> str:
    return json.dumps(list(values), ensure_ascii=False)


def _condition_holds(
    condition: Condition, context: dict[str, tuple[str, ...]], work: Work
) -> tuple[bool, str]:
    """Whether one key of one operator block holds, and the sentence that says why."""
    said = f"{condition.operator} {condition.key} = {_show(condition.values)}"
    values = context.get(condition.key.lower())
    if values == ("",) and condition.set_operator:
        values = ()  # AWS: an empty string is an empty set to ForAllValues/ForAnyValue
    absent = not values
    if condition.base == "Null":
        wants_absent = {v.lower() for v in condition.values}
        holds = ("true" if absent else "false") in wants_absent
        state = "has no" if absent else f"has {_show(values or ())} for"
        return holds, f"{said}: the request {state} {condition.key}"
    if absent:
        if condition.if_exists:
            return True, f"{said}: the request has no {condition.key}, and IfExists passes"
        if condition.set_operator == "ForAllValues":
            return True, (
                f"{said}: the request has no {condition.key}, and ForAllValues holds for no "
                "values (add a Null condition to require the key)"
            )
        if condition.set_operator == "ForAnyValue":
            return False, f"{said}: the request has no {condition.key}"
        negated = OPERATORS[condition.base]
        reason = "a negated operator holds" if negated else "so nothing matches"
        return negated, f"{said}: the request has no {condition.key}, {reason}"
    patterns: Sequence[str | Sequence[str]] = condition.values
    if condition.variables:
        expanded = [_expand(value, context) for value in condition.values]
        if any(tokens is None for tokens in expanded):
            # AWS: a variable it cannot resolve "might cause the entire statement to be
            # invalid"; fedmock makes the condition fail, whatever the operator.
            return False, (
                f"{said}: a policy variable has no single value in the request (the key is "
                "absent or multivalued, and no default is given)"
            )
        patterns = [tokens for tokens in expanded if tokens is not None]
        said += f" (variables resolved: {_show(''.join(tokens) for tokens in patterns)})"
    matcher = _Matcher(condition, patterns, work)
    verdicts = [(value, matcher(value)) for value in values]
    if condition.set_operator == "ForAllValues":
        failing = [v for v, ok in verdicts if not ok]
        if failing:
            return (
                False,
                f"{said}: the request's {_show(failing)} did not match (of {_show(values)})",
            )
        return True, f"{said}: every value of the request's {_show(values)} matched"
    if condition.set_operator == "ForAnyValue":
        passing = [v for v, ok in verdicts if ok]
        if passing:
            return True, f"{said}: the request's {_show(passing)} matched (of {_show(values)})"
        return False, f"{said}: none of the request's {_show(values)} matched"
    # No set operator. One value is the usual case; for several see the module's note.
    if len(values) == 1:
        holds = verdicts[0][1]
        verb = "matched" if holds else "did not match"
        return holds, f"{said} {verb} the request's {_show(values)}"
    if matcher.negated:
        holds = all(ok for _, ok in verdicts)
    else:
        holds = any(ok for _, ok in verdicts)
    verb = "matched" if holds else "did not match"
    return holds, (
        f"{said} {verb} the request's {_show(values)} ({condition.key} has several values: "
        "AWS requires ForAnyValue: or ForAllValues: for a multivalued key; fedmock compared "
        "each value)"
    )


# --- Statements ---------------------------------------------------------------------


def _principal_matches(statement: Statement, principal: Mapping[str, Sequence[str]]) -> bool:
    if statement.principal is None:
        listed = True  # "*" (or {"AWS": "*"}): everyone
    else:
        listed = any(
            _principal_name_matches(kind, name, asked)
            for kind, names in statement.principal.items()
            for name in names
            for asked in principal.get(kind, ())
        )
    return listed != statement.principal_negated


def _principal_name_matches(kind: str, name: str, asked: str) -> bool:
    if name == asked:
        return True
    if kind == "AWS":
        # An account (its 12 digits or its root ARN) stands for every principal in it.
        account = name if name.isdigit() else None
        if name.startswith("arn:") and name.endswith(":root"):
            account = name.split(":")[4] if name.count(":") >= 5 else None
        parts = asked.split(":")
        return account is not None and len(parts) >= 6 and parts[4] == account
    return False


def _action_matches(statement: Statement, action: str) -> bool:
    # Action names are case-insensitive; `*` and `?` are wildcards in them.
    listed = GlobSet(a.lower() for a in statement.actions).match(action.lower())
    return listed != statement.actions_negated


def _describe_principal(statement: Statement) -> str:
    element = "NotPrincipal" if statement.principal_negated else "Principal"
    shown = (
        "*"
        if statement.principal is None
        else json.dumps({k: list(v) for k, v in statement.principal.items()}, ensure_ascii=False)
    )
    return f"{element} {shown}"


@dataclass(frozen=True)
class _Verdict:
    applies: bool
    why: str


def _statement_applies(
    statement: Statement, request: PolicyRequest, action: str, context, judged: dict
) -> _Verdict:
    head = f"{statement.label} ({statement.effect})"
    if not _action_matches(statement, action):
        element = "NotAction" if statement.actions_negated else "Action"
        return _Verdict(
            False, f"{head}: {element} {_show(statement.actions)} does not cover {action}"
        )
    if not _principal_matches(statement, request.principal):
        asked = json.dumps({k: list(v) for k, v in request.principal.items()}, ensure_ascii=False)
        return _Verdict(
            False, f"{head}: {_describe_principal(statement)} does not match the request's {asked}"
        )
    reasons = []
    for condition in statement.conditions:
        holds, why = judged[condition]
        if not holds:
            return _Verdict(False, f"{head}: condition {why}")
        reasons.append(why)
    matched = f" (conditions: {'; '.join(reasons)})" if reasons else ""
    return _Verdict(True, f"{head} matched{matched}")


# --- Evaluation ---------------------------------------------------------------------


def evaluate(policy: "str | Mapping | Policy", request: PolicyRequest) -> Decision:
    """AWS's verdict on the request under this trust policy, with fedmock's account of it."""
    if not request.actions:
        raise ValueError("a PolicyRequest names at least one action")
    parsed = parse_policy(policy)
    context = _context(request)
    # A condition's verdict depends on the context, not on the action: judged once.
    work = Work()
    judged = _LazyVerdicts(context, work)
    try:
        return _evaluate(parsed, request, context, judged)
    except _TooMuchWork:
        return Decision(
            False,
            request.actions[0],
            (
                f"fedmock stopped evaluating the trust policy after {MAX_MATCH_WORK} steps of "
                "wildcard matching (long request values under many StringLike/ArnLike "
                "conditions or policy variables); AWS documents no such limit. Use fewer "
                "wildcard conditions, or shorter values.",
            ),
        )


class _LazyVerdicts(dict):
    """Condition -> (holds, why), judged on first use (a failing condition ends its
    statement, so the conditions after it are never judged)."""

    def __init__(self, context: dict[str, tuple[str, ...]], work: Work):
        super().__init__()
        self._context = context
        self._work = work

    def __missing__(self, condition: Condition) -> tuple[bool, str]:
        verdict = _condition_holds(condition, self._context, self._work)
        self[condition] = verdict
        return verdict


def _evaluate(parsed: Policy, request: PolicyRequest, context, judged) -> Decision:
    allowed_lines: list[str] = []
    not_allowed: tuple[str, list[str]] | None = None
    for action in request.actions:
        verdicts = [
            (s, _statement_applies(s, request, action, context, judged)) for s in parsed.statements
        ]
        deny = next((v for s, v in verdicts if s.effect == "Deny" and v.applies), None)
        if deny is not None:
            # An explicit Deny of any action ends the evaluation: nothing overrides it.
            return Decision(False, action, (f"{deny.why}: explicit Deny of {action}",))
        allow = next((v for s, v in verdicts if s.effect == "Allow" and v.applies), None)
        if allow is not None:
            allowed_lines.append(f"{allow.why}: allows {action}")
        elif not_allowed is None:
            not_allowed = (action, _implicit_deny(action, verdicts))
    if not_allowed is not None:
        action, lines = not_allowed
        return Decision(False, action, tuple(lines))
    return Decision(True, None, tuple(allowed_lines))


def _implicit_deny(action: str, verdicts: list[tuple[Statement, _Verdict]]) -> list[str]:
    allows = [(s, v) for s, v in verdicts if s.effect == "Allow"]
    other_actions = [
        s for s, _ in allows if not s.actions_negated and not _action_matches(s, action)
    ]
    headline = f"No statement allows {action}"
    if other_actions and len(other_actions) == len(allows):
        labels = ", ".join(f'"{s.sid}"' if s.sid else str(s.index) for s in other_actions)
        noun = "statement" if len(other_actions) == 1 else "statements"
        covered = sorted({a for s in other_actions for a in s.actions})
        verb = "allows" if len(other_actions) == 1 else "allow"
        headline += f" ({noun} {labels} {verb} only {', '.join(covered)})"
    elif not allows:
        headline += " (the policy has no Allow statement)"
    # Deny statements that did not apply say nothing about why the request failed.
    return [headline, *(v.why for s, v in allows)]
