"""In-process XML signatures and encryption, and key generation.

Signing assembles the enveloped ds:Signature itself, with lxml's C14N (libxml2)
for the exclusive canonicalization and `cryptography` (OpenSSL) for the digest
and the RSA signature. The xmlsec binding re-copies the key for every
signature, which costs OpenSSL its cached Montgomery and blinding values and
makes each signature twice as slow as RSA itself. Verification and encryption
stay with xmlsec.

Parsing a private key costs milliseconds, so callers load a key once with
`load_key` and keep the returned `KeyMaterial` for the life of the process.
"""

import base64
import datetime
import hashlib
import re
from dataclasses import dataclass
from html import escape

import xmlsec
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from . import constants as c
from .errors import SamlError

EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
SIGNATURE_HASHES = {
    c.SIG_RSA_SHA256: hashes.SHA256,
    c.SIG_RSA_SHA384: hashes.SHA384,
    c.SIG_RSA_SHA512: hashes.SHA512,
    c.SIG_RSA_SHA1: hashes.SHA1,
}
DIGESTS = {
    c.DIGEST_SHA256: hashlib.sha256,
    c.DIGEST_SHA384: hashlib.sha384,
    c.DIGEST_SHA512: hashlib.sha512,
    c.DIGEST_SHA1: hashlib.sha1,
}


@dataclass(frozen=True)
class KeyMaterial:
    """A parsed signing key and its certificate, ready to sign many times."""

    fingerprint: str
    cert_pem: str
    cert_base64: str
    not_valid_before: datetime.datetime
    not_valid_after: datetime.datetime
    private_key: rsa.RSAPrivateKey


def cert_base64(cert_pem: str) -> str:
    """The base64 DER body of a PEM certificate, as KeyInfo and metadata carry it."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def pem_from_base64(body: str) -> str:
    der = base64.b64decode("".join(body.split()))
    cert = x509.load_der_x509_certificate(der)
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def fingerprint(cert_pem: str) -> str:
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def generate_self_signed(
    common_name: str, valid_days: int = 3650, key_size: int = 2048
) -> tuple[bytes, bytes]:
    """A new RSA key and a self-signed SHA-256 certificate, as PEM (key, cert)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    now = datetime.datetime.now(datetime.UTC)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, self_signed_certificate(
        key,
        common_name,
        now - datetime.timedelta(minutes=5),
        now + datetime.timedelta(days=valid_days),
    )


def self_signed_certificate(
    key, common_name: str, not_valid_before: datetime.datetime, not_valid_after: datetime.datetime
) -> bytes:
    """A PEM certificate for the key's public half, signed by the key itself."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_valid_before)
        .not_valid_after(not_valid_after)
        .sign(key, algorithm)
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def load_key(key_pem: bytes, cert_pem: bytes) -> KeyMaterial:
    cert = x509.load_pem_x509_certificate(cert_pem)
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey) or not isinstance(
        cert.public_key(), rsa.RSAPublicKey
    ):
        raise ValueError("only RSA signing keys and certificates are supported")
    if key.public_key().public_numbers() != cert.public_key().public_numbers():
        raise ValueError("the certificate does not belong to the private key")
    cert_text = cert_pem.decode()
    return KeyMaterial(
        fingerprint=fingerprint(cert_text),
        cert_pem=cert_text,
        cert_base64=cert_base64(cert_text),
        not_valid_before=cert.not_valid_before_utc,
        not_valid_after=cert.not_valid_after_utc,
        private_key=key,
    )


def _exclusive_c14n(element: etree._Element) -> bytes:
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)


_SIGNATURE = (
    '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>'
    f'<ds:CanonicalizationMethod Algorithm="{EXC_C14N}"/>'
    '<ds:SignatureMethod Algorithm="{method}"/>'
    '<ds:Reference URI="#{reference}"><ds:Transforms>'
    f'<ds:Transform Algorithm="{ENVELOPED}"/><ds:Transform Algorithm="{EXC_C14N}"/>'
    '</ds:Transforms><ds:DigestMethod Algorithm="{digest_method}"/>'
    "<ds:DigestValue>{digest}</ds:DigestValue></ds:Reference></ds:SignedInfo>"
    "<ds:SignatureValue/><ds:KeyInfo><ds:X509Data>"
    "<ds:X509Certificate>{certificate}</ds:X509Certificate>"
    "</ds:X509Data></ds:KeyInfo></ds:Signature>"
)


def sign_element(
    element: etree._Element,
    key: KeyMaterial,
    signature_algorithm: str = c.SIG_RSA_SHA256,
    digest_algorithm: str = c.DIGEST_SHA256,
    position: int = 1,
) -> None:
    """Enveloped signature over one element, inserted as its child at `position`.

    SAML puts it right after the Issuer (position 1); metadata puts it first.
    The digest is taken before the Signature exists, which is what the
    enveloped-signature transform makes of the element on the verifier's side.
    """
    digest = DIGESTS[digest_algorithm](_exclusive_c14n(element)).digest()
    signature = etree.fromstring(
        _SIGNATURE.format(
            method=signature_algorithm,
            reference=escape(element.get("ID")),
            digest_method=digest_algorithm,
            digest=base64.b64encode(digest).decode(),
            certificate=key.cert_base64,
        )
    )
    element.insert(position, signature)
    signed_info, signature_value = signature[0], signature[1]
    value = key.private_key.sign(
        _exclusive_c14n(signed_info), padding.PKCS1v15(), SIGNATURE_HASHES[signature_algorithm]()
    )
    signature_value.text = base64.b64encode(value).decode()


ENCRYPTION_TRANSFORMS = {
    c.ENC_AES256_GCM: xmlsec.constants.TransformAes256Gcm,
    c.ENC_AES256_CBC: xmlsec.constants.TransformAes256Cbc,
}


@dataclass(frozen=True)
class Encryption:
    """Whom to encrypt the assertion to (R14), and with which block cipher."""

    certificate: str
    algorithm: str = c.ENC_AES256_GCM


def encrypt_assertion(response: etree._Element, encryption: Encryption) -> None:
    """Replace the Assertion with an EncryptedAssertion: a fresh AES-256 key, sent RSA-OAEP."""
    assertion = response.find(f"{{{c.SAML}}}Assertion")
    template = xmlsec.template.encrypted_data_create(
        response,
        ENCRYPTION_TRANSFORMS[encryption.algorithm],
        type=xmlsec.constants.TypeEncElement,
        ns="xenc",
    )
    xmlsec.template.encrypted_data_ensure_cipher_value(template)
    key_info = xmlsec.template.encrypted_data_ensure_key_info(template, ns="ds")
    encrypted_key = xmlsec.template.add_encrypted_key(key_info, xmlsec.constants.TransformRsaOaep)
    xmlsec.template.encrypted_data_ensure_cipher_value(encrypted_key)
    manager = xmlsec.KeysManager()
    manager.add_key(
        xmlsec.Key.from_memory(
            encryption.certificate.encode(), xmlsec.constants.KeyDataFormatCertPem
        )
    )
    context = xmlsec.EncryptionContext(manager)
    context.key = xmlsec.Key.generate(
        xmlsec.constants.KeyDataAes, 256, xmlsec.constants.KeyDataTypeSession
    )
    index = response.index(assertion)
    encrypted_data = context.encrypt_xml(template, assertion)
    wrapper = etree.Element(f"{{{c.SAML}}}EncryptedAssertion")
    wrapper.append(encrypted_data)
    response.insert(index, wrapper)


def sign(
    response: etree._Element,
    key: KeyMaterial,
    *,
    sign_assertion: bool,
    sign_response: bool,
    signature_algorithm: str = c.SIG_RSA_SHA256,
    digest_algorithm: str = c.DIGEST_SHA256,
    encryption: Encryption | None = None,
) -> bytes:
    """Sign the Assertion, encrypt it if asked, then sign the Response around it; serialise."""
    assertion = response.find(f"{{{c.SAML}}}Assertion")
    if sign_assertion and assertion is not None:
        sign_element(assertion, key, signature_algorithm, digest_algorithm)
    if encryption is not None and assertion is not None:
        encrypt_assertion(response, encryption)
    if sign_response:
        sign_element(response, key, signature_algorithm, digest_algorithm)
    return etree.tostring(response, xml_declaration=True, encoding="UTF-8")


@dataclass(frozen=True)
class SigningOptions:
    """How one response is signed: the step a fault scenario may alter before `sign` runs."""

    key: KeyMaterial
    sign_assertion: bool
    sign_response: bool
    signature_algorithm: str = c.SIG_RSA_SHA256
    digest_algorithm: str = c.DIGEST_SHA256
    encryption: Encryption | None = None


def sign_with(response: etree._Element, options: SigningOptions) -> bytes:
    return sign(
        response,
        options.key,
        sign_assertion=options.sign_assertion,
        sign_response=options.sign_response,
        signature_algorithm=options.signature_algorithm,
        digest_algorithm=options.digest_algorithm,
        encryption=options.encryption,
    )


# What fedmock verifies, and nothing else. xmlsec would run any transform a
# Reference lists (XPath, XSLT) over every node before it looks at the signature
# value, so an attacker could choose the work; anything off these lists is refused
# before a single byte is canonicalised.
ALLOWED_TRANSFORMS = (ENVELOPED, EXC_C14N)  # in this order, each at most once
ALLOWED_CANONICALIZATIONS = (EXC_C14N,)
MAX_INCLUSIVE_PREFIXES = 10  # each listed prefix is looked up on every element, to the root
MAX_SIGNED_NODES = 5000
MAX_SIGNED_DEPTH = 64
_NCNAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,255}")
_SIGNATURE_CHILDREN = ("SignedInfo", "SignatureValue", "KeyInfo")
_KEY_INFO_CHILDREN = ("X509Data", "KeyName", "KeyValue")


class UnsafeSignature(SamlError):
    """A signature that lists work this IdP does not do: refused before any canonicalisation."""

    def __init__(self, detail: str):
        super().__init__(
            "The signature uses an algorithm or transform this IdP does not allow",
            detail,
            "Sign with RSA-SHA256 (or SHA-384/512; SHA-1 for legacy SPs), a SHA-2 digest, "
            "exclusive canonicalization, and only the enveloped-signature and exclusive-C14N "
            "transforms, over one Reference to the signed element's ID.",
        )


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def _ds_children(element: etree._Element, allowed: tuple[str, ...], where: str) -> list:
    children = [child for child in element if isinstance(child.tag, str)]
    for child in children:
        if etree.QName(child).namespace != c.DS or _local(child) not in allowed:
            raise UnsafeSignature(f"{where} holds {child.tag}, which this IdP does not process.")
    return children


def _algorithm(element: etree._Element | None, allowed, what: str) -> str:
    algorithm = element.get("Algorithm", "") if element is not None else ""
    if algorithm not in allowed:
        raise UnsafeSignature(f"The {what} is {algorithm or 'missing'!r}.")
    if len(element):
        raise UnsafeSignature(f"The {what} element carries parameters, which are not allowed.")
    return algorithm


def check_signature_profile(signature: etree._Element, element_id: str | None = None) -> None:
    """Refuse a ds:Signature that lists anything outside fedmock's algorithms and transforms.

    Only the shape is read here, never canonicalised, so the cost is bounded by the
    size of the Signature element, whatever the document around it holds.
    """
    children = _ds_children(signature, _SIGNATURE_CHILDREN, "The Signature")
    names = [_local(child) for child in children]
    if names[:2] != ["SignedInfo", "SignatureValue"] or len(set(names)) != len(names):
        raise UnsafeSignature(
            "A Signature holds one SignedInfo, one SignatureValue and at most one KeyInfo, "
            "in that order."
        )
    signed_info = children[0]
    info = _ds_children(
        signed_info, ("CanonicalizationMethod", "SignatureMethod", "Reference"), "SignedInfo"
    )
    if [_local(child) for child in info] != [
        "CanonicalizationMethod",
        "SignatureMethod",
        "Reference",
    ]:
        raise UnsafeSignature(
            "SignedInfo must hold one CanonicalizationMethod, one SignatureMethod and exactly "
            "one Reference."
        )
    _algorithm(info[0], ALLOWED_CANONICALIZATIONS, "CanonicalizationMethod")
    _algorithm(info[1], SIGNATURE_HASHES, "SignatureMethod")
    reference = info[2]
    uri = reference.get("URI")
    if element_id is not None and uri != "#" + element_id:
        raise UnsafeSignature(
            f"The Reference URI is {uri!r}; it must be '#' and the ID of the signed element."
        )
    parts = _ds_children(reference, ("Transforms", "DigestMethod", "DigestValue"), "The Reference")
    part_names = [_local(part) for part in parts]
    if part_names not in (
        ["Transforms", "DigestMethod", "DigestValue"],
        ["DigestMethod", "DigestValue"],
    ):
        raise UnsafeSignature("The Reference must hold Transforms, DigestMethod and DigestValue.")
    if part_names[0] == "Transforms":
        transforms = _ds_children(parts[0], ("Transform",), "Transforms")
        if len(transforms) > len(ALLOWED_TRANSFORMS):
            raise UnsafeSignature(f"The Reference lists {len(transforms)} transforms.")
        for transform in transforms:
            _check_transform(transform)
        algorithms = [t.get("Algorithm") for t in transforms]
        if algorithms != [a for a in ALLOWED_TRANSFORMS if a in algorithms]:
            raise UnsafeSignature(
                "The transforms must be the enveloped signature, then exclusive C14N, each once."
            )
    _algorithm(parts[-2], DIGESTS, "DigestMethod")
    if len(children) == 3:
        key_info = children[2]
        for child in _ds_children(key_info, _KEY_INFO_CHILDREN, "KeyInfo"):
            if _local(child) == "X509Data":
                _ds_children(child, ("X509Certificate",), "X509Data")


def _check_transform(transform: etree._Element) -> None:
    """A Transform: enveloped, or exclusive C14N with at most an InclusiveNamespaces list."""
    algorithm = transform.get("Algorithm", "")
    if algorithm not in ALLOWED_TRANSFORMS:
        raise UnsafeSignature(f"A Reference lists the transform {algorithm or 'missing'!r}.")
    parameters = [child for child in transform if isinstance(child.tag, str)]
    if algorithm == ENVELOPED and parameters:
        raise UnsafeSignature("The enveloped-signature transform takes no parameters.")
    if (
        any(
            etree.QName(p).localname != "InclusiveNamespaces"
            or etree.QName(p).namespace != EXC_C14N
            for p in parameters
        )
        or len(parameters) > 1
    ):
        raise UnsafeSignature("Exclusive C14N takes only an InclusiveNamespaces list.")
    prefixes = parameters[0].get("PrefixList", "").split() if parameters else []
    if len(prefixes) > MAX_INCLUSIVE_PREFIXES or not all(
        prefix == "#default" or _NCNAME.fullmatch(prefix) for prefix in prefixes
    ):
        raise UnsafeSignature(
            f"The InclusiveNamespaces PrefixList must be at most {MAX_INCLUSIVE_PREFIXES} "
            "namespace prefixes."
        )


def enveloped_signature(element: etree._Element) -> etree._Element | None:
    """The one ds:Signature child of `element`, checked against the allow-list; None if unsigned."""
    signatures = element.findall(f"{{{c.DS}}}Signature")
    if len(signatures) > 1:
        raise UnsafeSignature(f"The element carries {len(signatures)} signatures; sign it once.")
    if not signatures:
        return None
    element_id = element.get("ID") or ""
    if not _NCNAME.fullmatch(element_id):
        # xmlsec reads '#xpointer(...)' as an expression over the whole document.
        raise UnsafeSignature(
            f"The signed element's ID {element_id[:80]!r} is not a plain XML name (xs:ID)."
        )
    check_signature_profile(signatures[0], element_id)
    _check_size(element)
    return signatures[0]


def _check_size(element: etree._Element) -> None:
    """Canonicalisation costs grow with nodes times depth: bound both before verifying."""
    nodes = depth = 0
    for event, _ in etree.iterwalk(element, events=("start", "end")):
        if event == "end":
            depth -= 1
            continue
        nodes += 1
        depth += 1
        if nodes > MAX_SIGNED_NODES or depth > MAX_SIGNED_DEPTH:
            raise UnsafeSignature(
                f"The signed element has more than {MAX_SIGNED_NODES} elements or is nested "
                f"deeper than {MAX_SIGNED_DEPTH}; a SAML message needs a small fraction of that."
            )


def verify_enveloped(element: etree._Element, cert_pem: str) -> None:
    """Check the enveloped signature on `element` itself against one certificate.

    Callers know a signature is there (sso.py found it with enveloped_signature).
    """
    if not signature_valid(element, cert_pem):
        raise SamlError(
            "The request signature is invalid",
            "It does not verify against the certificate registered for this SP.",
            "Update the SP's certificate in the IdP admin, or sign with the matching key.",
        )


def signature_valid(element: etree._Element, cert_pem: str) -> bool:
    """Whether the enveloped ds:Signature child of `element` verifies with this certificate.

    Raises UnsafeSignature, before any canonicalisation, for a signature that lists
    algorithms or transforms outside fedmock's allow-list.
    """
    if not element.get("ID"):
        return False
    signature = enveloped_signature(element)
    if signature is None:
        return False
    try:
        key = xmlsec.Key.from_memory(cert_pem.encode(), xmlsec.constants.KeyDataFormatCertPem)
        context = xmlsec.SignatureContext()
        context.key = key
        context.register_id(element, "ID")
        context.verify(signature)
    except xmlsec.Error:  # a bad key, a duplicated ID or a wrong signature all mean "no"
        return False
    return True


def check_signature_algorithm(algorithm: str) -> type[hashes.HashAlgorithm]:
    """The hash of an HTTP-Redirect SigAlg fedmock accepts; an unknown one is refused."""
    hash_type = SIGNATURE_HASHES.get(algorithm)
    if hash_type is None:
        raise SamlError(
            "Unsupported SigAlg",
            f"{algorithm[:200]!r} is not a signature algorithm this IdP accepts "
            f"({', '.join(SIGNATURE_HASHES)}).",
            f"Sign with {c.SIG_RSA_SHA256}.",
        )
    return hash_type


def verify_detached(
    signed_octets: bytes, signature_b64: str, algorithm: str, cert_pem: str
) -> None:
    """Check an HTTP-Redirect binding signature (over the raw query string octets)."""
    hash_type = check_signature_algorithm(algorithm)
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except ValueError as error:
        raise SamlError(
            "The Signature parameter is not valid base64",
            str(error),
            "Send the base64 signature over SAMLRequest, RelayState and SigAlg, URL-encoded.",
        ) from error
    public_key = x509.load_pem_x509_certificate(cert_pem.encode()).public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise SamlError(
            "The SP's registered certificate is not RSA",
            "This IdP verifies RSA signatures only.",
            "Register the SP's RSA signing certificate.",
        )
    try:
        public_key.verify(signature, signed_octets, padding.PKCS1v15(), hash_type())
    except InvalidSignature as error:
        raise SamlError(
            "The request signature is invalid",
            "The HTTP-Redirect signature does not verify against the SP's registered certificate.",
            "Update the SP's certificate in the IdP admin, or sign with the matching key.",
        ) from error
