"""The ECP profile's SOAP binding (SAML profiles §4.2, bindings §3.2): unwrap what the ECP
sends, wrap what goes back, and say no as a SOAP fault. Pure: bytes in, bytes out.

The ECP strips the paos:Request and ecp:Request header blocks the SP addressed to it and
forwards the AuthnRequest alone (§4.2.4.2); some clients forward them anyway, so blocks in
those two namespaces are ignored. Any other block the sender marks mustUnderstand="1" is
refused with a MustUnderstand fault, as SOAP 1.1 §4.2.3 requires of a receiver that does
not know it.
"""

from lxml import etree

from . import constants as c
from .bindings import MAX_INFLATED_MESSAGE, parse_xml
from .errors import SamlError

# The same bound as a decoded HTTP-POST request: an envelope is a few kilobytes.
MAX_ENVELOPE = MAX_INFLATED_MESSAGE
FAULT_NAMESPACE = "urn:fedmock:soap-fault"
_HEADER_BLOCKS_FOR_THE_ECP = (c.ECP, c.PAOS)


class SoapFault(SamlError):
    """A refusal that belongs in a SOAP Fault; `code` is SOAP 1.1's faultcode (§4.4.1)."""

    def __init__(
        self,
        title: str,
        detail: str = "",
        hint: str = "",
        status: int = 400,
        *,
        code: str = "Client",
    ):
        super().__init__(title, detail, hint, status=status)
        self.code = code


def _soap(tag: str) -> str:
    return f"{{{c.SOAP11}}}{tag}"


def unwrap(envelope: bytes) -> bytes:
    """The AuthnRequest in a SOAP 1.1 envelope, as its own XML document."""
    if len(envelope) > MAX_ENVELOPE:
        raise SoapFault(
            "The SOAP envelope is too large",
            f"It is {len(envelope)} bytes; the limit is {MAX_ENVELOPE}.",
            "An ECP AuthnRequest is a few kilobytes; check what the client sends.",
            status=413,
        )
    root = parse_xml(envelope, "The SOAP envelope")
    if etree.QName(root).localname == "Envelope" and root.tag != _soap("Envelope"):
        raise SoapFault(
            "Unsupported SOAP version",
            f"The envelope's namespace is {etree.QName(root).namespace!r}; the SAML SOAP "
            f"binding uses SOAP 1.1 ({c.SOAP11}).",
            "Send a SOAP 1.1 envelope, as ECP clients do.",
            code="VersionMismatch",
        )
    if root.tag != _soap("Envelope"):
        raise SoapFault(
            "This is not a SOAP envelope",
            f"The root element is {root.tag}.",
            f"POST a SOAP 1.1 Envelope ({c.SOAP11}) whose Body holds the samlp:AuthnRequest.",
        )
    header = root.find(_soap("Header"))
    if header is not None:
        for block in header.iterchildren(tag=etree.Element):
            namespace = etree.QName(block).namespace
            understood = namespace in _HEADER_BLOCKS_FOR_THE_ECP
            if block.get(_soap("mustUnderstand"), "0").strip() == "1" and not understood:
                raise SoapFault(
                    "A SOAP header block this IdP does not understand",
                    f"{block.tag} is marked mustUnderstand; SOAP 1.1 requires refusing it.",
                    "Send the AuthnRequest with no header blocks, as the ECP profile does.",
                    code="MustUnderstand",
                )
    body = root.find(_soap("Body"))
    if body is None:
        raise SoapFault("The SOAP envelope has no Body", hint="Put the AuthnRequest in soap:Body.")
    children = list(body.iterchildren(tag=etree.Element))
    text = (body.text or "") + "".join(child.tail or "" for child in body)
    if len(children) != 1 or text.strip():
        raise SoapFault(
            "The SOAP Body must hold exactly one AuthnRequest",
            f"It holds {len(children)} elements{' and text' if text.strip() else ''}.",
            "Send one samlp:AuthnRequest in soap:Body, and nothing else.",
        )
    (request,) = children
    if request.tag != f"{{{c.SAMLP}}}AuthnRequest":
        raise SoapFault(
            "The SOAP Body is not an AuthnRequest",
            f"It holds {request.tag}.",
            "This endpoint is the ECP sign-on: send the samlp:AuthnRequest the SP gave the ECP.",
        )
    # Serialised on its own, it carries the namespaces it uses; exclusive C14N (the only
    # one the verifier allows) ignores the envelope's, so a signature still verifies.
    return etree.tostring(request)


def envelope(response_xml: bytes, acs_url: str) -> bytes:
    """The IdP's answer to the ECP (§4.2.4.3): the ecp:Response header block naming the ACS
    the ECP must deliver to, and the signed samlp:Response, unchanged, in the Body."""
    root = etree.Element(_soap("Envelope"), nsmap={"soap11": c.SOAP11})
    header = etree.SubElement(root, _soap("Header"))
    etree.SubElement(
        header,
        f"{{{c.ECP}}}Response",
        {
            _soap("mustUnderstand"): "1",
            _soap("actor"): c.SOAP_ACTOR_NEXT,
            "AssertionConsumerServiceURL": acs_url,
        },
        nsmap={"ecp": c.ECP},
    )
    body = etree.SubElement(root, _soap("Body"))
    # The parsed Response keeps its own prefixes and namespace declarations, so its
    # signatures (exclusive C14N) cover the same octets inside the envelope.
    body.append(etree.fromstring(response_xml))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def fault(error: SamlError) -> bytes:
    """A SOAP 1.1 Fault: faultstring is the title; detail carries title, detail and hint."""
    code = getattr(error, "code", "Client" if error.status < 500 else "Server")
    root = etree.Element(_soap("Envelope"), nsmap={"soap11": c.SOAP11})
    problem = etree.SubElement(etree.SubElement(root, _soap("Body")), _soap("Fault"))
    etree.SubElement(problem, "faultcode").text = f"soap11:{code}"
    etree.SubElement(problem, "faultstring").text = error.title
    detail = etree.SubElement(
        etree.SubElement(problem, "detail"),
        f"{{{FAULT_NAMESPACE}}}Problem",
        nsmap={"fm": FAULT_NAMESPACE},
    )
    for name in ("title", "detail", "hint"):
        etree.SubElement(detail, f"{{{FAULT_NAMESPACE}}}{name}").text = getattr(error, name)
    etree.SubElement(detail, f"{{{FAULT_NAMESPACE}}}status").text = str(error.status)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
