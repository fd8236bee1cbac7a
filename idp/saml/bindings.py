"""HTTP-Redirect and HTTP-POST: decode what arrives, encode what leaves, parse XML safely."""

import base64
import binascii
import zlib
from dataclasses import dataclass
from urllib.parse import unquote_plus, urlencode

from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree

from .errors import SamlError
from .signing import SIGNATURE_HASHES

# A SAMLRequest is a few kilobytes; these bounds leave ample room while refusing
# decompression bombs and deep nesting before any parsing cost is paid.
MAX_ENCODED_MESSAGE = 64 * 1024
MAX_INFLATED_MESSAGE = 256 * 1024
MAX_RELAY_STATE = 1024
REDIRECT_PARAMETERS = ("SAMLRequest", "SAMLResponse", "RelayState", "SigAlg", "Signature")

_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_blank_text=False,
)


@dataclass(frozen=True)
class PostForm:
    """An auto-submitting HTML form: where it posts and the fields it carries."""

    action: str
    fields: dict[str, str]


def _base64(value: str, field: str) -> bytes:
    if not value:
        raise SamlError(
            f"{field} is missing",
            f"The request carried no {field} parameter.",
            "Start sign-on from the service provider, which adds it.",
        )
    if len(value) > MAX_ENCODED_MESSAGE:
        raise SamlError(
            f"{field} is too large",
            f"It is {len(value)} characters long; the limit is {MAX_ENCODED_MESSAGE}.",
            "A SAML request is a few kilobytes; check what the service provider sends.",
            status=413,
        )
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as error:
        raise SamlError(
            f"{field} is not valid base64",
            str(error),
            "The parameter must be the base64 encoding of the message. "
            "Check that it was not truncated or URL-decoded twice.",
        ) from error


def decode_redirect(value: str, field: str = "SAMLRequest") -> bytes:
    """HTTP-Redirect: base64 of the raw DEFLATE of the XML."""
    compressed = _base64(value, field)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        xml = inflater.decompress(compressed, MAX_INFLATED_MESSAGE)
    except zlib.error as error:
        raise SamlError(
            f"{field} is not DEFLATE-compressed",
            f"Inflating it failed: {error}.",
            "The HTTP-Redirect binding sends raw DEFLATE (no zlib header) before base64. "
            "If the service provider posts the request, use the HTTP-POST endpoint.",
        ) from error
    if inflater.unconsumed_tail:
        raise SamlError(
            f"{field} inflates to more than {MAX_INFLATED_MESSAGE} bytes",
            "It was refused as a likely decompression bomb.",
            "A SAML request is a few kilobytes; check what the service provider sends.",
            status=413,
        )
    return xml


def redirect_parameters(raw_query: str) -> tuple[dict[str, str], bytes]:
    """The SAML parameters of an HTTP-Redirect query, and the octets its signature covers.

    Both come from the same raw text, and a repeated parameter is refused, so a
    second, differently escaped SAMLRequest can never slip past the signature.
    """
    raw: dict[str, str] = {}
    for piece in raw_query.split("&"):
        name, _, value = piece.partition("=")
        name = unquote_plus(name)
        if name not in REDIRECT_PARAMETERS:
            continue
        if name in raw:
            raise SamlError(
                f"The query repeats {name}",
                "Each SAML parameter may appear once in an HTTP-Redirect URL.",
                "Send the URL exactly as the service provider built it.",
            )
        raw[name] = value
    signed = "&".join(
        f"{n}={raw[n]}" for n in ("SAMLRequest", "SAMLResponse", "RelayState", "SigAlg") if n in raw
    )
    return {name: unquote_plus(value) for name, value in raw.items()}, signed.encode()


def decode_post(value: str, field: str = "SAMLRequest") -> bytes:
    """HTTP-POST: plain base64 of the XML."""
    xml = _base64(value, field)
    if len(xml) > MAX_INFLATED_MESSAGE:
        raise SamlError(
            f"{field} is too large",
            f"It decodes to {len(xml)} bytes; the limit is {MAX_INFLATED_MESSAGE}.",
            "A SAML request is a few kilobytes; check what the service provider sends.",
            status=413,
        )
    return xml


def check_relay_state(relay_state: str) -> str:
    if len(relay_state) > MAX_RELAY_STATE:
        raise SamlError(
            "RelayState is too long",
            f"It is {len(relay_state)} characters; the limit is {MAX_RELAY_STATE}.",
            "SAML bindings limit RelayState to 80 bytes; keep it short or use a reference.",
        )
    return relay_state


def parse_xml(data: bytes, what: str = "The SAML message") -> etree._Element:
    """Parse untrusted XML: no DTDs, no entities, no network, no huge trees."""
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as error:
        raise SamlError(
            f"{what} is not well-formed XML",
            str(error),
            "Check the encoding: the decoded message must be a SAML XML document.",
        ) from error
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise SamlError(
            f"{what} contains a DOCTYPE",
            "Document type declarations are refused: they enable entity expansion "
            "and external entity (XXE) attacks, and SAML never needs them.",
            "Send the message without a <!DOCTYPE …> declaration.",
        )
    return root


def encode_post(xml: bytes) -> str:
    return base64.b64encode(xml).decode("ascii")


def encode_redirect(xml: bytes) -> str:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return base64.b64encode(compressor.compress(xml) + compressor.flush()).decode("ascii")


def post_form(acs_url: str, saml_response: bytes, relay_state: str = "") -> PostForm:
    fields = {"SAMLResponse": encode_post(saml_response)}
    if relay_state:
        fields["RelayState"] = relay_state
    return PostForm(action=acs_url, fields=fields)


def redirect_url(
    location: str,
    field: str,
    xml: bytes,
    relay_state: str = "",
    key=None,
    signature_algorithm: str = "",
) -> str:
    """HTTP-Redirect out: the URL carrying the deflated message, signed if a key is given.

    The detached signature covers `field=…&RelayState=…&SigAlg=…` exactly as the URL
    spells them (SAML bindings §3.4.4.1), so the octets are built once and reused.
    `key` is a signing.KeyMaterial.
    """
    pairs = [(field, encode_redirect(xml))]
    if relay_state:
        pairs.append(("RelayState", relay_state))
    if key is not None:
        pairs.append(("SigAlg", signature_algorithm))
    query = urlencode(pairs)
    if key is not None:
        hash_type = SIGNATURE_HASHES[signature_algorithm]
        signature = key.private_key.sign(query.encode(), padding.PKCS1v15(), hash_type())
        query += "&" + urlencode({"Signature": base64.b64encode(signature).decode("ascii")})
    return f"{location}{'&' if '?' in location else '?'}{query}"
