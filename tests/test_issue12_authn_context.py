"""idp/authn_context.py: the order of the classes and the four comparisons, as a table."""

import pytest

from idp import authn_context as ac
from idp.authn_context import MFA, ORDER, Requested, Satisfied, StepUp, Unmeetable

UNSPEC = ac.UNSPECIFIED
PW = ac.PASSWORD
PPT = ac.PASSWORD_PROTECTED_TRANSPORT
KRB = ac.KERBEROS
X509 = ac.X509
UNKNOWN = "urn:example:ac:classes:Retina"
EVERYTHING = frozenset(ORDER)


def req(comparison: str, *refs: str) -> Requested:
    return Requested(ac.Comparison(comparison), refs)


def test_the_order_is_documented_and_strict():
    assert ORDER == (UNSPEC, PW, PPT, KRB, X509, MFA)
    assert MFA == "http://schemas.microsoft.com/claims/multipleauthn"
    assert [ac.STRENGTH[ref] for ref in ORDER] == list(range(6))


# (requested, performed now, achievable) -> the stated class, or StepUp/Unmeetable
SATISFIED = [
    # exact: one of the listed, the SP's first preference that the sign-in proved
    (req("exact", PPT), PPT, (), PPT),
    (req("exact", X509, PPT), PPT, (), PPT),
    (req("exact", X509, PPT), X509, (), X509),
    (req("exact", PW), PPT, (), PW),  # a password over TLS is a password
    (req("exact", PPT), MFA, (), PPT),  # password + TOTP proved the password too
    (req("exact", UNSPEC), KRB, (), UNSPEC),
    (req("exact", UNKNOWN, KRB), KRB, (), KRB),
    # minimum: at least as strong as one listed; the strongest proved is stated
    (req("minimum", PPT), PPT, (), PPT),
    (req("minimum", PPT), X509, (), X509),
    (req("minimum", PPT), MFA, (), MFA),
    (req("minimum", X509, PW), PPT, (), PPT),  # the weakest listed is the bar
    (req("minimum", UNSPEC), UNSPEC, (), UNSPEC),
    # better: stronger than one listed
    (req("better", PPT), KRB, (), KRB),
    (req("better", PPT), MFA, (), MFA),
    (req("better", PW), PPT, (), PPT),
    # maximum: never stronger than the strongest listed
    (req("maximum", PPT), PPT, (), PPT),
    (req("maximum", PPT), MFA, (), PPT),  # MFA states the password part, not more
    (req("maximum", X509), PPT, (), PPT),
    (req("maximum", KRB), X509, (), UNSPEC),  # an X509 sign-in proved no Kerberos
    (req("maximum", UNSPEC), PPT, (), UNSPEC),
    # no request: what happened
    (None, PPT, (), PPT),
    (None, UNSPEC, (), UNSPEC),
    (None, X509, (), X509),
]


@pytest.mark.parametrize(("requested", "performed", "achievable", "stated"), SATISFIED)
def test_a_sign_in_that_meets_the_request_states_the_class(
    requested, performed, achievable, stated
):
    assert ac.decide(requested, performed, achievable) == Satisfied(stated)


NOT_NOW = [
    # (requested, performed, achievable, expected kind, class a step-up gives)
    (req("exact", X509), PPT, {PPT, MFA}, Unmeetable, None),
    (req("exact", X509), PPT, {X509, MFA}, StepUp, X509),
    (req("exact", MFA), PPT, {PPT, MFA}, StepUp, MFA),
    (req("exact", MFA), PPT, {PPT}, Unmeetable, None),
    (req("exact", KRB), None, EVERYTHING, StepUp, KRB),
    (req("exact", UNKNOWN), None, EVERYTHING, Unmeetable, None),
    (req("exact", UNKNOWN), PPT, EVERYTHING, Unmeetable, None),
    (req("minimum", X509), PPT, {PPT, MFA}, StepUp, MFA),
    (req("minimum", MFA), X509, {X509}, Unmeetable, None),
    (req("better", MFA), MFA, EVERYTHING, Unmeetable, None),  # nothing is stronger
    (req("better", X509), KRB, {KRB, MFA}, StepUp, MFA),
    (req("better", PPT), PPT, {PPT}, Unmeetable, None),
    (req("exact", PW), KRB, {KRB, MFA}, StepUp, MFA),  # MFA proved a password as well
    (req("minimum", PPT), UNSPEC, {PPT}, StepUp, PPT),  # a picked session proves nothing
    (req("minimum", PW), None, {UNSPEC}, Unmeetable, None),
]


@pytest.mark.parametrize(("requested", "performed", "achievable", "kind", "gives"), NOT_NOW)
def test_otherwise_a_step_up_or_a_reason(requested, performed, achievable, kind, gives):
    decision = ac.decide(requested, performed, frozenset(achievable))
    assert type(decision) is kind
    assert decision.reason.strip()
    if kind is StepUp:
        assert decision.class_ref == gives


def test_the_floor_of_an_sp_that_requires_mfa():
    assert ac.decide(None, PPT, {PPT}, floor=MFA) == Unmeetable(
        "The request needs the SP requires multi-factor (password and a TOTP code). "
        "This sign-in was PasswordProtectedTransport; this user can sign in with: "
        "PasswordProtectedTransport."
    )
    assert ac.decide(None, PPT, {PPT, MFA}, floor=MFA) == StepUp(
        "it needs the SP requires multi-factor (password and a TOTP code) (this sign-in was "
        "PasswordProtectedTransport).",
        MFA,
    )
    assert ac.decide(None, MFA, (), floor=MFA) == Satisfied(MFA)
    # The floor holds whatever the request says: an MFA sign-in never states less.
    assert isinstance(ac.decide(req("exact", PPT), MFA, EVERYTHING, floor=MFA), Unmeetable)
    assert ac.decide(req("minimum", PPT), MFA, (), floor=MFA) == Satisfied(MFA)


def test_a_declaration_reference_is_not_supported():
    requested = Requested(ac.Comparison.EXACT, (PPT,), ("urn:example:decl",))
    decision = ac.decide(requested, PPT, EVERYTHING)
    assert isinstance(decision, Unmeetable)
    assert "AuthnContextDeclRef" in decision.reason


@pytest.mark.parametrize(
    ("text", "found"),
    [("X509", X509), ("mfa", MFA), ("MFA", MFA), (PPT, PPT), (" kerberos ", KRB), (MFA, MFA)],
)
def test_classes_by_short_name(text, found):
    assert ac.parse_class(text) == found


@pytest.mark.parametrize("text", ["", "urn:x", "X.509", "Pass word", "x" * 5000])
def test_unknown_class_names_are_refused_in_words(text):
    with pytest.raises(ValueError, match="is not an authentication context class"):
        ac.parse_class(text)


# --- parsing RequestedAuthnContext (idp/saml/authn_requests.py) ------------------------


def authn_request(requested: str) -> bytes:
    return (
        '<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r1" Version="2.0" '
        'IssueInstant="2030-01-01T00:00:00Z"><saml:Issuer>https://sp.example</saml:Issuer>'
        f"{requested}</samlp:AuthnRequest>"
    ).encode()


def class_refs(*refs: str) -> str:
    return "".join(f"<saml:AuthnContextClassRef>{ref}</saml:AuthnContextClassRef>" for ref in refs)


@pytest.mark.parametrize(
    ("element", "expected"),
    [
        ("", None),
        (
            f"<samlp:RequestedAuthnContext>{class_refs(X509, PPT)}</samlp:RequestedAuthnContext>",
            Requested(ac.Comparison.EXACT, (X509, PPT)),
        ),
        (
            '<samlp:RequestedAuthnContext Comparison="better">'
            f"{class_refs(' ' + PPT + ' ')}</samlp:RequestedAuthnContext>",
            Requested(ac.Comparison.BETTER, (PPT,)),
        ),
        (
            "<samlp:RequestedAuthnContext><saml:AuthnContextDeclRef>urn:d"
            "</saml:AuthnContextDeclRef></samlp:RequestedAuthnContext>",
            Requested(ac.Comparison.EXACT, (), ("urn:d",)),
        ),
    ],
)
def test_requested_authn_context_is_parsed(element, expected):
    from idp.saml import authn_requests

    assert authn_requests.parse(authn_request(element)).requested_authn_context == expected


@pytest.mark.parametrize(
    ("element", "words"),
    [
        (
            f'<samlp:RequestedAuthnContext Comparison="atleast">{class_refs(PPT)}'
            "</samlp:RequestedAuthnContext>",
            "unknown Comparison",
        ),
        ("<samlp:RequestedAuthnContext></samlp:RequestedAuthnContext>", "no class"),
        (
            f"<samlp:RequestedAuthnContext>{class_refs(*[PPT] * 21)}</samlp:RequestedAuthnContext>",
            "too many",
        ),
        (
            f"<samlp:RequestedAuthnContext>{class_refs('')}</samlp:RequestedAuthnContext>",
            "invalid reference",
        ),
        (
            f"<samlp:RequestedAuthnContext>{class_refs('x' * 1025)}</samlp:RequestedAuthnContext>",
            "invalid reference",
        ),
    ],
)
def test_a_malformed_requested_authn_context_is_refused_in_words(element, words):
    from idp.saml import authn_requests
    from idp.saml.errors import SamlError

    with pytest.raises(SamlError) as refused:
        authn_requests.parse(authn_request(element))
    assert words in refused.value.title and refused.value.hint
    assert refused.value.status == 400
