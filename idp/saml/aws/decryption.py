"""Decrypt an EncryptedAssertion with the SP's private key, so the checker reads what AWS reads.

Only what fedmock itself sends is decrypted (R14): AES-256-GCM or AES-256-CBC
content, its key sent with RSA-OAEP inside the EncryptedData's KeyInfo. Every
other algorithm, and every element that would make xmlsec fetch or transform
something (RetrievalMethod, CipherReference, ReferenceList), is refused before
xmlsec sees the document. The plaintext is parsed by fedmock's own safe parser.
"""

import copy

import xmlsec
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from .. import constants as c
from ..bindings import parse_xml
from ..errors import SamlError
from .layout import ASSERTION

_CONTENT_ALGORITHMS = (c.ENC_AES256_GCM, c.ENC_AES256_CBC)
_KEY_TRANSPORT_ALGORITHMS = (c.KEY_TRANSPORT_RSA_OAEP,)
# rsa-oaep-mgf1p digests with SHA-1 unless told otherwise; saying so is the same algorithm.
_OAEP_DIGESTS = (c.DIGEST_SHA1,)


def _x(name: str) -> str:
    return f"{{{c.XENC}}}{name}"


def _ds(name: str) -> str:
    return f"{{{c.DS}}}{name}"


# Each element that may appear inside EncryptedAssertion, and the parents it may have.
_LAYOUT = {
    _x("EncryptedData"): {f"{{{c.SAML}}}EncryptedAssertion"},
    _x("EncryptionMethod"): {_x("EncryptedData"), _x("EncryptedKey")},
    _ds("DigestMethod"): {_x("EncryptionMethod")},
    _ds("KeyInfo"): {_x("EncryptedData"), _x("EncryptedKey")},
    _x("EncryptedKey"): {_ds("KeyInfo")},
    _ds("KeyName"): {_ds("KeyInfo")},
    _ds("X509Data"): {_ds("KeyInfo")},
    _ds("X509Certificate"): {_ds("X509Data")},
    _x("CipherData"): {_x("EncryptedData"), _x("EncryptedKey")},
    _x("CipherValue"): {_x("CipherData")},
}


def _refused(detail: str) -> SamlError:
    return SamlError(
        "The encrypted assertion is not one this checker decrypts",
        detail,
        "fedmock decrypts what it sends itself (R14): AES-256-GCM or AES-256-CBC content "
        "whose key is sent with RSA-OAEP (rsa-oaep-mgf1p) in the EncryptedData's KeyInfo.",
    )


def load_decryption_key(pem: bytes) -> bytes:
    """The SP's RSA private key as unencrypted PKCS#8 PEM, or a one-line refusal."""
    hint = "Pass the SP's private key as an unencrypted PEM file (the key IAM holds for R14)."
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError as problem:  # what cryptography raises when a password is needed
        raise SamlError("The private key is encrypted", str(problem), hint) from problem
    except (ValueError, UnsupportedAlgorithm) as problem:
        raise SamlError("That is not a PEM private key", str(problem), hint) from problem
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SamlError(
            "The private key is not RSA",
            f"It is {type(key).__name__}; RSA-OAEP key transport needs the SP's RSA key.",
            hint,
        )
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _check_encrypted(encrypted: etree._Element) -> etree._Element:
    """The one EncryptedData, once every element and algorithm around it is on the lists."""
    data = [child for child in encrypted if isinstance(child.tag, str)]
    if len(data) != 1 or data[0].tag != _x("EncryptedData"):
        raise _refused(
            "An EncryptedAssertion holds exactly one xenc:EncryptedData and nothing else."
        )
    for element in data[0].iter():
        if not isinstance(element.tag, str):
            continue
        parent = element.getparent()
        if element.tag not in _LAYOUT or parent is None or parent.tag not in _LAYOUT[element.tag]:
            raise _refused(f"It holds {element.tag} where this checker does not accept one.")
    if data[0].get("Type", _x("Element")) != c.XENC + "Element":
        raise _refused(f"The EncryptedData has Type {data[0].get('Type')!r}, not an element.")
    keys = data[0].findall(f"{_ds('KeyInfo')}/{_x('EncryptedKey')}")
    if len(keys) != 1 or sum(1 for _ in data[0].iter(_x("EncryptedKey"))) != 1:
        raise _refused(f"The EncryptedData carries {len(keys)} EncryptedKeys; send exactly one.")
    _algorithm(data[0], _CONTENT_ALGORITHMS, "content")
    _algorithm(keys[0], _KEY_TRANSPORT_ALGORITHMS, "key transport")
    for digest in data[0].iter(_ds("DigestMethod")):
        if digest.get("Algorithm") not in _OAEP_DIGESTS:
            raise _refused(f"The RSA-OAEP digest is {digest.get('Algorithm')!r}.")
    return data[0]


def _algorithm(element: etree._Element, allowed: tuple[str, ...], what: str) -> None:
    methods = element.findall(_x("EncryptionMethod"))
    algorithm = methods[0].get("Algorithm", "") if len(methods) == 1 else ""
    if algorithm not in allowed:
        raise _refused(f"The {what} algorithm is {algorithm or 'missing'!r}.")


def decrypt_assertion(encrypted: etree._Element, key_pem: bytes) -> etree._Element:
    """The Assertion inside a saml:EncryptedAssertion, decrypted with the SP's key."""
    data = copy.deepcopy(_check_encrypted(encrypted))
    # Without Type, xmlsec hands back the plaintext instead of parsing it into the
    # tree with its own parser, so it is parsed here with the safe one.
    data.attrib.pop("Type", None)
    manager = xmlsec.KeysManager()
    try:
        manager.add_key(xmlsec.Key.from_memory(key_pem, xmlsec.constants.KeyDataFormatPem))
        plaintext = xmlsec.EncryptionContext(manager).decrypt(data)
    except xmlsec.Error as problem:
        raise SamlError(
            "The encrypted assertion cannot be decrypted with this key",
            f"xmlsec: {problem}.",
            "Pass the private key of the certificate the IdP encrypts to (the SP's key in "
            "IAM), and check that the response was not altered.",
        ) from problem
    if not isinstance(plaintext, bytes):
        raise _refused("xmlsec did not hand back the plaintext.")
    assertion = parse_xml(plaintext, "The decrypted assertion")
    if assertion.tag != ASSERTION:
        raise _refused(f"It decrypts to {assertion.tag}, not a saml:Assertion.")
    return assertion
