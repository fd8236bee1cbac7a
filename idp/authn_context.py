"""Authentication context classes: their order, and whether a sign-in meets a request.

Pure: no ORM, no request. `decide` answers a RequestedAuthnContext (SAML core §3.3.2.2.1)
from what the IdP session performed and what a new sign-in could perform:

    unspecified < Password < PasswordProtectedTransport < Kerberos < X509 < MFA

The MFA class is the one Microsoft Entra ID (and ADFS) put in AuthnContextClassRef after
multi-factor authentication, and that SPs request to force it. An assertion states one class
that the sign-in proved: the class performed, or one it entails (a password plus a TOTP code
proved a password over TLS as well; every sign-in proved "unspecified").
"""

import enum
from dataclasses import dataclass

_AC = "urn:oasis:names:tc:SAML:2.0:ac:classes:"
UNSPECIFIED = _AC + "unspecified"
PASSWORD = _AC + "Password"
PASSWORD_PROTECTED_TRANSPORT = _AC + "PasswordProtectedTransport"
KERBEROS = _AC + "Kerberos"
X509 = _AC + "X509"
MFA = "http://schemas.microsoft.com/claims/multipleauthn"

ORDER = (UNSPECIFIED, PASSWORD, PASSWORD_PROTECTED_TRANSPORT, KERBEROS, X509, MFA)
STRENGTH = {name: rank for rank, name in enumerate(ORDER)}
SHORT_NAMES = {
    UNSPECIFIED: "unspecified",
    PASSWORD: "Password",
    PASSWORD_PROTECTED_TRANSPORT: "PasswordProtectedTransport",
    KERBEROS: "Kerberos",
    X509: "X509",
    MFA: "multi-factor (password and a TOTP code)",
}

# What a sign-in of each class also proved, and so may state instead of its own class.
_ENTAILS = {
    UNSPECIFIED: (UNSPECIFIED,),
    PASSWORD: (PASSWORD, UNSPECIFIED),
    PASSWORD_PROTECTED_TRANSPORT: (PASSWORD_PROTECTED_TRANSPORT, PASSWORD, UNSPECIFIED),
    KERBEROS: (KERBEROS, UNSPECIFIED),
    X509: (X509, UNSPECIFIED),
    MFA: (MFA, PASSWORD_PROTECTED_TRANSPORT, PASSWORD, UNSPECIFIED),
}


class Comparison(enum.StrEnum):
    EXACT = "exact"
    MINIMUM = "minimum"
    BETTER = "better"
    MAXIMUM = "maximum"


def parse_class(text: str) -> str:
    """A class named by its URI or its short name (X509, mfa, ...), for the mint and fixtures."""
    by_short_name = {ref.removeprefix(_AC).lower(): ref for ref in ORDER} | {"mfa": MFA}
    found = text if text in STRENGTH else by_short_name.get(text.strip().lower())
    if found is None:
        raise ValueError(
            f"{text[:100]!r} is not an authentication context class this IdP performs; use one "
            f"of {', '.join(ref.removeprefix(_AC) for ref in ORDER[:-1])}, MFA, or a full URI "
            "such as " + PASSWORD_PROTECTED_TRANSPORT + "."
        )
    return found


def short_name(class_ref: str) -> str:
    return SHORT_NAMES.get(class_ref, class_ref)


@dataclass(frozen=True)
class Requested:
    """An AuthnRequest's RequestedAuthnContext: a comparison and class references in the
    SP's order of preference. Unknown references stay, and are never satisfied."""

    comparison: Comparison = Comparison.EXACT
    class_refs: tuple[str, ...] = ()
    declaration_refs: tuple[str, ...] = ()  # AuthnContextDeclRef: not supported here

    def accepts(self, class_ref: str) -> bool:
        known = [STRENGTH[ref] for ref in self.class_refs if ref in STRENGTH]
        if class_ref not in STRENGTH or not known:
            return False
        strength = STRENGTH[class_ref]
        match self.comparison:
            case Comparison.EXACT:
                return class_ref in self.class_refs
            case Comparison.MINIMUM:
                return strength >= min(known)
            case Comparison.BETTER:
                return strength > min(known)
            case Comparison.MAXIMUM:
                # "As strong as possible without exceeding one listed": a sign-in is not
                # repeated to get stronger, but never states more than the strongest listed.
                return strength <= max(known)

    def describe(self) -> str:
        names = " or ".join(short_name(ref) for ref in self.class_refs) or "no class"
        return {
            Comparison.EXACT: names,
            Comparison.MINIMUM: f"at least {names}",
            Comparison.BETTER: f"stronger than {names}",
            Comparison.MAXIMUM: f"at most {names}",
        }[self.comparison]


@dataclass(frozen=True)
class Satisfied:
    class_ref: str  # what the assertion states


@dataclass(frozen=True)
class StepUp:
    reason: str
    # The weakest sign-in (or enrolment) whose class meets the request: a picked session
    # asked for a password is sent to the password form, not made to enrol a TOTP device.
    class_ref: str


@dataclass(frozen=True)
class Unmeetable:
    reason: str


Decision = Satisfied | StepUp | Unmeetable


def _acceptable(
    requested: Requested | None, floor: str, performed: str, prefer_strongest: bool
) -> str | None:
    """The class to state for a sign-in of class `performed`, or None."""
    candidates = [
        ref
        for ref in _ENTAILS.get(performed, ())
        if STRENGTH[ref] >= STRENGTH[floor] and (requested is None or requested.accepts(ref))
    ]
    if requested is None:
        return performed if performed in candidates else None
    if not candidates:
        return None
    # exact: the SP's first preference that was met; otherwise the strongest allowed.
    if requested.comparison == Comparison.EXACT and not prefer_strongest:
        return next(ref for ref in requested.class_refs if ref in candidates)
    return max(candidates, key=STRENGTH.__getitem__)


def decide(
    requested: Requested | None,
    performed_now: str | None,
    achievable: frozenset[str] | tuple[str, ...],
    floor: str = UNSPECIFIED,
) -> Decision:
    """Whether the current sign-in (`performed_now`, None when nobody is signed in) meets the
    request and the SP's `floor` (MFA when it requires MFA); if not, whether a new sign-in
    of one of the `achievable` classes would; if not, why not."""
    if requested is not None and requested.declaration_refs:
        return Unmeetable(
            "The request names an AuthnContextDeclRef, which this IdP does not support; "
            f"ask with AuthnContextClassRef for one of {', '.join(ORDER)}."
        )
    if performed_now is not None:
        stated = _acceptable(requested, floor, performed_now, prefer_strongest=False)
        if stated is not None:
            return Satisfied(stated)
    wanted = _wanted(requested, floor)
    if requested is not None and not any(ref in STRENGTH for ref in requested.class_refs):
        unknown = ", ".join(requested.class_refs) or "none"
        return Unmeetable(
            f"The request names no authentication context class this IdP knows ({unknown}). "
            f"It performs {', '.join(ORDER)}."
        )
    reachable = [
        ref
        for ref in sorted(achievable, key=STRENGTH.get)
        if ref in STRENGTH and _acceptable(requested, floor, ref, prefer_strongest=True)
    ]
    if reachable:
        now = f" (this sign-in was {short_name(performed_now)})" if performed_now else ""
        return StepUp(f"it needs {wanted}{now}.", reachable[0])
    done = f"This sign-in was {short_name(performed_now)}; " if performed_now else ""
    can = " or ".join(short_name(ref) for ref in sorted(achievable, key=STRENGTH.get)) or "none"
    return Unmeetable(f"The request needs {wanted}. {done}this user can sign in with: {can}.")


def _wanted(requested: Requested | None, floor: str) -> str:
    parts = [requested.describe()] if requested is not None else []
    if floor != UNSPECIFIED:
        parts.append(f"the SP requires {short_name(floor)}")
    return "; ".join(parts) or "any sign-in"
