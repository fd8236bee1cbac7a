"""That the checker reads what a signature covers, and reads it as the verifier does.

A signature covers one element, found by its ID, minus its own ds:Signature.
A reader that looks anywhere else (the first Assertion in document order, any
Attribute below the root) can be handed unsigned content that sits beside
signed content: inside ds:Object or KeyInfo, which the enveloped transform
leaves out, or in samlp:Extensions of a Response whose Assertion alone is
signed. That is signature wrapping. Rather than guess which element AWS
reads, the checker refuses every layout in which two readers could differ:
more than one Assertion anywhere, or an element it reads outside its place.

Text is read as exclusive C14N without comments sees it: the digest of
`alice<!-- x --> smith` is the digest of `alice smith`, while lxml's `.text`
stops at the comment.
"""

from lxml import etree

from .. import constants as c
from ..errors import SamlError

_PREFIXES = {c.SAMLP: "samlp", c.SAML: "saml", c.DS: "ds", c.XENC: "xenc"}


def _saml(name: str) -> str:
    return f"{{{c.SAML}}}{name}"


RESPONSE = f"{{{c.SAMLP}}}Response"
ASSERTION = _saml("Assertion")
ENCRYPTED_ASSERTION = _saml("EncryptedAssertion")

# Where each element the checker reads (or a naive reader might read) may stand:
# the tags its parent may have. The Assertion itself must be a child of the root.
_PLACES = {
    _saml("AttributeStatement"): {ASSERTION},
    _saml("Attribute"): {_saml("AttributeStatement")},
    _saml("AttributeValue"): {_saml("Attribute")},
    _saml("Subject"): {ASSERTION},
    # NameID also stands inside an AttributeValue (eduPersonTargetedID).
    _saml("NameID"): {_saml("Subject"), _saml("SubjectConfirmation"), _saml("AttributeValue")},
    _saml("SubjectConfirmation"): {_saml("Subject")},
    _saml("SubjectConfirmationData"): {_saml("SubjectConfirmation")},
    _saml("Conditions"): {ASSERTION},
    _saml("AudienceRestriction"): {_saml("Conditions")},
    _saml("Audience"): {_saml("AudienceRestriction"), _saml("ProxyRestriction")},
    _saml("AuthnStatement"): {ASSERTION},
    _saml("Issuer"): {RESPONSE, ASSERTION},
    f"{{{c.SAMLP}}}Status": {RESPONSE},
}
# The schema allows at most one of each under one parent; a second is a second reading.
_SINGLE = {
    _saml("Issuer"),
    _saml("Subject"),
    _saml("NameID"),
    _saml("Conditions"),
    _saml("SubjectConfirmationData"),
    f"{{{c.SAMLP}}}Status",
}


def _name(element: etree._Element) -> str:
    qname = etree.QName(element)
    prefix = _PREFIXES.get(qname.namespace or "")
    return f"{prefix}:{qname.localname}" if prefix else element.tag


def _path(element: etree._Element) -> str:
    names = []
    while element is not None:
        names.append(_name(element))
        element = element.getparent()
    return "/".join(reversed(names))


def _wrapped(detail: str) -> SamlError:
    return SamlError(
        "The response is laid out for signature wrapping",
        detail,
        "A response AWS can read safely holds one Assertion, directly inside the Response, "
        "with its statements in their places. Nothing else is judged: ask the IdP's owner "
        "where this response came from.",
    )


def read_as_canonical(root: etree._Element) -> None:
    """Drop comments, merging the text around them, so that `.text` reads what C14N reads.

    Processing instructions stay in the canonical form, and a reader would split
    the text at them just as at a comment; SAML has no use for them, so refuse.
    """
    etree.strip_elements(root, etree.Comment, with_tail=False)
    for instruction in root.iter(etree.ProcessingInstruction):
        raise SamlError(
            "The response holds a processing instruction",
            f"{etree.tostring(instruction, with_tail=False).decode()[:80]} in "
            f"{_path(instruction.getparent())}: a reader would split the text at it, and the "
            "signature covers it as it stands.",
            "Send the response without processing instructions; SAML has no use for them.",
        )


def check_layout(root: etree._Element) -> None:
    """Refuse a document in which one reader could see content another reader does not."""
    responses = sum(1 for _ in root.iter(RESPONSE))
    assertions = list(root.iter(ASSERTION, ENCRYPTED_ASSERTION))
    if responses > 1:
        raise _wrapped(f"The document holds {responses} Responses; one Response is read.")
    if len(assertions) > 1:
        raise _wrapped(
            f"The document holds {len(assertions)} assertions ("
            + ", ".join(_path(a) for a in assertions)
            + "); AWS reads exactly one, and a second is where a wrapped one hides."
        )
    for assertion in assertions:
        if assertion.getparent() is not root:
            raise _wrapped(
                f"The assertion stands at {_path(assertion)}, not directly inside the Response."
            )
    for element in root.iter(*_PLACES):
        parent = element.getparent()
        if parent is None or parent.tag not in _PLACES[element.tag]:
            raise _wrapped(f"{_path(element)}: {_name(element)} is out of its place.")
        if element.tag in _SINGLE and len(parent.findall(element.tag)) > 1:
            raise _wrapped(f"{_path(parent)} holds more than one {_name(element)}.")
