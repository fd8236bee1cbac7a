"""Signatures made in process with libxmlsec1, checked by independent verifiers."""

import datetime
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from lxml import etree
from signxml import InvalidDigest, InvalidSignature, XMLVerifier

from idp import keys
from idp.saml import constants as c
from idp.saml import responses, signing
from idp.saml.release import Attribute, NameID, Release

NS = {"samlp": c.SAMLP, "saml": c.SAML, "ds": c.DS}
NOW = datetime.datetime(2026, 11, 21, 12, 0, 0, tzinfo=datetime.UTC)


@pytest.fixture(scope="module")
def material(key_pems):
    return signing.load_key(*key_pems)


def signed_response(material, **options) -> bytes:
    release = Release(
        NameID("alice", c.NAMEID_UNSPECIFIED),
        (Attribute("mail", ("alice@example.com",)), Attribute("groups", ("a", "b"))),
    )
    context = responses.ResponseContext(
        issuer="https://idp.example/metadata",
        destination="https://sp.example/acs",
        audience="https://sp.example",
        in_response_to="_abc",
        now=NOW,
        session_index="_s1",
    )
    root = responses.build(release, context)
    return signing.sign(root, material, sign_assertion=True, sign_response=True, **options)


def test_signxml_verifies_response_and_assertion_signatures(material):
    xml = signed_response(material)
    verified = XMLVerifier().verify(xml, x509_cert=material.cert_pem, id_attribute="ID")
    assert verified.signed_xml.tag == f"{{{c.SAMLP}}}Response"
    assertion = etree.fromstring(xml).find("saml:Assertion", NS)
    verified = XMLVerifier().verify(
        etree.tostring(assertion), x509_cert=material.cert_pem, id_attribute="ID"
    )
    assert verified.signed_xml.findtext(".//saml:NameID", namespaces=NS) == "alice"


def test_tampering_breaks_the_signature(material):
    xml = signed_response(material).replace(b"alice@example.com", b"mallory@example.com")
    with pytest.raises((InvalidSignature, InvalidDigest)):
        XMLVerifier().verify(xml, x509_cert=material.cert_pem, id_attribute="ID")


def test_signature_uses_the_algorithms_aws_expects(material):
    """R11: RSA-SHA256, SHA-256 digest, exclusive c14n, the certificate in KeyInfo."""
    root = etree.fromstring(signed_response(material))
    for signature in root.iterfind(".//ds:Signature", NS):
        info = signature.find("ds:SignedInfo", NS)
        assert info.find("ds:SignatureMethod", NS).get("Algorithm") == c.SIG_RSA_SHA256
        assert info.find(".//ds:DigestMethod", NS).get("Algorithm") == c.DIGEST_SHA256
        assert (
            info.find("ds:CanonicalizationMethod", NS).get("Algorithm")
            == "http://www.w3.org/2001/10/xml-exc-c14n#"
        )
        certificate = signature.findtext(".//ds:X509Certificate", namespaces=NS)
        assert "".join(certificate.split()) == material.cert_base64
    # The signature sits right after the Issuer, as the schema orders it.
    assertion = root.find("saml:Assertion", NS)
    assert [child.tag.split("}")[1] for child in assertion][:3] == [
        "Issuer",
        "Signature",
        "Subject",
    ]


def test_other_algorithms_can_be_chosen(material):
    xml = signed_response(
        material, signature_algorithm=c.SIG_RSA_SHA512, digest_algorithm=c.DIGEST_SHA512
    )
    assert c.SIG_RSA_SHA512.encode() in xml
    XMLVerifier().verify(xml, x509_cert=material.cert_pem, id_attribute="ID")


def test_time_window_follows_r12(material):
    root = etree.fromstring(signed_response(material))
    conditions = root.find(".//saml:Conditions", NS)
    confirmation = root.find(".//saml:SubjectConfirmationData", NS)
    assert root.get("IssueInstant") == "2026-11-21T12:00:00Z"
    assert conditions.get("NotBefore") == "2026-11-21T11:59:30Z"
    assert conditions.get("NotOnOrAfter") == "2026-11-21T12:05:00Z"
    assert confirmation.get("NotOnOrAfter") == "2026-11-21T12:05:00Z"


def test_signing_needs_no_xmlsec1_binary(tmp_path, key_pems):
    """The IdP signs in process: with no xmlsec1 anywhere on PATH, signing still works."""
    (tmp_path / "key.pem").write_bytes(key_pems[0])
    (tmp_path / "cert.pem").write_bytes(key_pems[1])
    script = (
        "import shutil, sys\n"
        "from pathlib import Path\n"
        "assert shutil.which('xmlsec1') is None, 'xmlsec1 is still on PATH'\n"
        "from lxml import etree\n"
        "from idp.saml import signing\n"
        "d = Path(sys.argv[1])\n"
        "key = signing.load_key((d / 'key.pem').read_bytes(), (d / 'cert.pem').read_bytes())\n"
        'root = etree.fromstring(b\'<r xmlns="urn:x" ID="_1"><i/></r>\')\n'
        "sys.stdout.buffer.write(signing.sign(root, key, sign_assertion=False, "
        "sign_response=True))\n"
    )
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        env={"PATH": str(empty_bin), "PYTHONPATH": str(Path(__file__).parent.parent)},
        capture_output=True,
        check=True,
    )
    XMLVerifier().verify(result.stdout, x509_cert=key_pems[1].decode(), id_attribute="ID")


def test_generated_key_is_rsa_2048_sha256_and_private(db, settings, tmp_path):
    key, created = keys.ensure_active_key()
    assert created
    assert keys.ensure_active_key() == (key, False)
    # Stored encrypted, never as a PEM in clear; exported as a private (0600) file.
    assert b"PRIVATE KEY" not in key.private_key_encrypted.encode()
    assert b"PRIVATE KEY" in keys.decrypt_private_key(key.fingerprint, key.private_key_encrypted)
    _, key_path, cert_path = keys.export_key(key.fingerprint, tmp_path / "export")
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert cert.public_key().key_size == 2048
    assert cert.signature_hash_algorithm.name == "sha256"
    # R16: no duplicated extensions in the published certificate.
    oids = [extension.oid for extension in cert.extensions]
    assert len(oids) == len(set(oids))


def test_key_files_are_ignored_by_git():
    root = Path(__file__).parent.parent
    result = subprocess.run(
        ["git", "check-ignore", "certs/abc.key", "certs/abc.crt", "certs/README.md"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert result.stdout.split() == ["certs/abc.key", "certs/abc.crt"]


def test_key_is_parsed_once_per_process(signing_key, monkeypatch):
    first = keys.active_key()
    monkeypatch.setattr(signing, "load_key", lambda *a: pytest.fail("the key was parsed again"))
    assert keys.active_key() is first
