"""The standalone checker against hostile or unusual input: items 1, 8, 9, 15 and 18 of issue 8."""

import base64
import datetime
import io
from pathlib import Path

import pytest
import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519
from cryptography.x509.oid import NameOID
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from lxml import etree

from idp.saml import aws, signing
from idp.saml import constants as c
from idp.saml.errors import SamlError
from idp.saml.metadata import idp_metadata

from .test_aws_checker import (
    ENCRYPTED_ACS,
    IC_ACS,
    IC_AUDIENCE,
    NOW,
    NS,
    ROLE,
    release,
    response,
)

DATA = Path(__file__).parent / "data"
ISSUER = "https://idp.example/saml/metadata/"
CHECK_PAGE = "/admin/idp/serviceprovider/check-response/"


@pytest.fixture(scope="module")
def key(key_pems):
    return signing.load_key(*key_pems)


@pytest.fixture(scope="module")
def sp_key():
    """The SP's key pair: IAM holds the private half (R14), the IdP encrypts to the public."""
    return signing.generate_self_signed("sp")


def encrypted(key, sp_key, *, acs=ENCRYPTED_ACS, algorithm=c.ENC_AES256_GCM, **options) -> bytes:
    encryption = signing.Encryption(sp_key[1].decode(), algorithm)
    return response(key, acs=acs, encryption=encryption, **options)


def check(data: bytes, key, **options) -> list[aws.Finding]:
    return aws.check_response(data, now=NOW, certificates=[key.cert_pem], issuer=ISSUER, **options)


def errors(findings) -> set[str]:
    return {f.rule for f in findings if f.severity == "error"}


# --- item 18 (a): the encrypted-assertion ACS -----------------------------------------


def test_botocore_defines_the_saml_provider_uuid_as_the_checker_does():
    import botocore.session

    model = botocore.session.get_session().get_service_model("iam")
    shape = model.operation_model("GetSAMLProvider").output_shape.members["SAMLProviderUUID"]
    assert (shape.metadata["pattern"], shape.metadata["min"], shape.metadata["max"]) == (
        "[A-Z0-9]+",
        22,
        64,
    )
    assert aws.names.SAML_PROVIDER_UUID == "[A-Z0-9]{22,64}"


ACS_PREFIX = "https://eu-west-1.signin.aws.amazon.com/saml/acs/"
ENCRYPTED_ACS_IDS = [
    ("22 characters", "A" * 21 + "7", True),
    ("64 characters", "Z9" * 32, True),
    ("IAM's shape", "SAMLSPD0EXAMPLE0UUID0123456", True),
    ("21 characters", "A" * 21, False),
    ("65 characters", "A" * 65, False),
    ("lower case", "samlspd0example0uuid0123456", False),
    ("a dashed hex UUID", "5d9e2c2a-2b64-4f6e-a1f9-7b9d00000000", False),
    ("a trailing slash", "SAMLSPD0EXAMPLE0UUID0123456/", False),
]


@pytest.mark.parametrize(
    ("provider_id", "valid"),
    [case[1:] for case in ENCRYPTED_ACS_IDS],
    ids=[case[0] for case in ENCRYPTED_ACS_IDS],
)
def test_encrypted_acs_takes_iams_provider_id(provider_id, valid):
    findings = aws.check_endpoints(
        ACS_PREFIX + provider_id, [[aws.AUDIENCE]], aws.PROFILE_AWS, True
    )
    assert (findings == []) is valid, findings
    if not valid:
        assert "R9" in errors(findings)


def test_an_encrypted_response_to_an_iam_provider_acs_is_accepted(key, sp_key):
    findings = check(encrypted(key, sp_key), key)
    assert errors(findings) == set(), findings


# --- item 18 (b): partitions -----------------------------------------------------------

GOV_ACS = "https://signin.amazonaws-us-gov.com/saml"
CN_ACS = "https://signin.amazonaws.cn/saml"
GOV_AUDIENCE, CN_AUDIENCE = aws.AUDIENCES[1], aws.AUDIENCES[2]
REGIONAL_ACS = "https://us-east-1.signin.aws.amazon.com/saml"


def role_in(partition: str) -> str:
    return ROLE.replace("arn:aws:", f"arn:{partition}:")


# (name, role partition, ACS, audience, whether AWS could assume the role)
PARTITIONS = [
    ("GovCloud role to the commercial endpoint", "aws-us-gov", aws.SIGNIN_ACS, aws.AUDIENCE, False),
    ("China role to the commercial endpoint", "aws-cn", aws.SIGNIN_ACS, aws.AUDIENCE, False),
    ("GovCloud role to a regional endpoint", "aws-us-gov", REGIONAL_ACS, aws.AUDIENCE, False),
    ("commercial role to GovCloud", "aws", GOV_ACS, GOV_AUDIENCE, False),
    ("commercial role to China", "aws", CN_ACS, CN_AUDIENCE, False),
    ("China role to GovCloud", "aws-cn", GOV_ACS, GOV_AUDIENCE, False),
    ("GovCloud role to GovCloud", "aws-us-gov", GOV_ACS, GOV_AUDIENCE, True),
    ("China role to China", "aws-cn", CN_ACS, CN_AUDIENCE, True),
    ("commercial role to the commercial endpoint", "aws", aws.SIGNIN_ACS, aws.AUDIENCE, True),
]  # fmt: skip


@pytest.mark.parametrize(
    ("partition", "acs", "audience", "assumable"),
    [case[1:] for case in PARTITIONS],
    ids=[case[0] for case in PARTITIONS],
)
def test_role_partition_must_match_the_endpoint(key, partition, acs, audience, assumable):
    data = response(key, release(Role=(role_in(partition),)), acs=acs, audience=audience)
    findings = check(data, key)
    if assumable:
        assert findings == []
    else:
        assert errors(findings) == {"R1"}, findings
        assert any("partition" in f.message for f in findings)


def test_one_wrong_partition_among_several_roles_is_named(key):
    roles = (ROLE, role_in("aws-us-gov").replace("Dev", "Gov"))
    [finding] = check(response(key, release(Role=roles)), key)
    assert finding.rule == "R1" and "role/Gov" in finding.message


# --- item 18 (c): decrypting with the SP's key -----------------------------------------


def test_the_key_decrypts_and_every_check_runs_inside(key, sp_key):
    bad = encrypted(key, sp_key, release_=release(RoleSessionName=("alice smith",)))
    without_key = check(bad, key)
    assert "R2" not in errors(without_key)
    with_key = check(bad, key, decryption_key=sp_key[0])
    assert errors(with_key) == {"R2"}, with_key


@pytest.mark.parametrize("algorithm", [c.ENC_AES256_GCM, c.ENC_AES256_CBC])
@pytest.mark.parametrize("sign_response", [True, False])
def test_a_good_encrypted_response_has_no_findings_with_the_key(
    key, sp_key, algorithm, sign_response
):
    data = encrypted(key, sp_key, algorithm=algorithm, sign_response=sign_response)
    assert check(data, key, decryption_key=sp_key[0]) == []


def test_the_decrypted_assertion_signature_is_checked(key, sp_key):
    other = signing.load_key(*signing.generate_self_signed("someone else"))
    data = encrypted(other, sp_key, sign_response=False)
    findings = check(data, key, decryption_key=sp_key[0])
    assert any("Response signature invalid" in f.message for f in findings), findings


def test_decrypted_content_goes_through_the_wrapping_checks(key, sp_key):
    def second_assertion_inside(root):
        assertion = root.find("saml:Assertion", NS)
        advice = etree.SubElement(assertion, f"{{{c.SAML}}}Advice")
        advice.append(etree.fromstring(etree.tostring(assertion.find("saml:Subject", NS))))

    data = encrypted(key, sp_key, mutate=second_assertion_inside)
    with pytest.raises(SamlError, match="signature wrapping"):
        check(data, key, decryption_key=sp_key[0])


def test_encrypted_to_the_plain_acs_is_still_an_r14_error_with_the_key(key, sp_key):
    data = encrypted(key, sp_key, acs=aws.SIGNIN_ACS)
    assert "R14" in errors(check(data, key, decryption_key=sp_key[0]))


def test_encrypted_for_identity_center_is_an_error_with_the_key(key, sp_key):
    ic = release(RoleSessionName=None, Role=None)
    data = encrypted(key, sp_key, release_=ic, acs=IC_ACS, audience=IC_AUDIENCE)
    assert "R14" in errors(check(data, key, decryption_key=sp_key[0]))


def ec_key_pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def encrypted_pem(sp_key) -> bytes:
    key = serialization.load_pem_private_key(sp_key[0], None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )


# (name, the key file, words of the one-line refusal)
BAD_KEYS = [
    ("another RSA key", lambda sp: signing.generate_self_signed("x")[0], "cannot be decrypted"),
    ("not PEM at all", lambda sp: b"hello", "not a PEM private key"),
    ("a certificate, not a key", lambda sp: sp[1], "not a PEM private key"),
    ("a password-protected key", encrypted_pem, "encrypted"),
    ("an EC key", lambda sp: ec_key_pem(), "not RSA"),
]


@pytest.mark.parametrize(
    ("make_key", "words"), [case[1:] for case in BAD_KEYS], ids=[case[0] for case in BAD_KEYS]
)
def test_a_bad_key_is_a_clear_refusal(key, sp_key, make_key, words):
    with pytest.raises(SamlError, match=words):
        check(encrypted(key, sp_key), key, decryption_key=make_key(sp_key))


XENC = "{http://www.w3.org/2001/04/xmlenc#}"
XENC11 = "http://www.w3.org/2009/xmlenc11#"


def set_content_algorithm(algorithm):
    def change(root):
        root.find(f".//{XENC}EncryptedData/{XENC}EncryptionMethod").set("Algorithm", algorithm)

    return change


def set_key_transport(algorithm):
    def change(root):
        root.find(f".//{XENC}EncryptedKey/{XENC}EncryptionMethod").set("Algorithm", algorithm)

    return change


def add_retrieval_method(root):
    key_info = root.find(f".//{XENC}EncryptedData/{{{c.DS}}}KeyInfo")
    method = etree.SubElement(key_info, f"{{{c.DS}}}RetrievalMethod", URI="#_x")
    etree.SubElement(
        etree.SubElement(method, f"{{{c.DS}}}Transforms"),
        f"{{{c.DS}}}Transform",
        Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116",
    )


def add_cipher_reference(root):
    data = root.find(f".//{XENC}EncryptedData/{XENC}CipherData")
    data.remove(data[0])
    etree.SubElement(data, f"{XENC}CipherReference", URI="http://attacker.example/x")


def add_second_encrypted_key(root):
    key_info = root.find(f".//{XENC}EncryptedData/{{{c.DS}}}KeyInfo")
    key_info.append(etree.fromstring(etree.tostring(key_info[0])))


def add_oaep_digest(algorithm):
    def change(root):
        method = root.find(f".//{XENC}EncryptedKey/{XENC}EncryptionMethod")
        etree.SubElement(method, f"{{{c.DS}}}DigestMethod", Algorithm=algorithm)

    return change


# (name, a change to the EncryptedAssertion, still decrypted)
ENCRYPTION_LAYOUTS = [
    ("AES-128-CBC content", set_content_algorithm(c.XENC + "aes128-cbc"), False),
    ("Triple DES content", set_content_algorithm(c.XENC + "tripledes-cbc"), False),
    ("RSA 1.5 key transport", set_key_transport(c.XENC + "rsa-1_5"), False),
    ("RSA-OAEP 1.1 key transport", set_key_transport(XENC11 + "rsa-oaep"), False),
    ("a RetrievalMethod with an XPath transform", add_retrieval_method, False),
    ("a CipherReference to a URL", add_cipher_reference, False),
    ("two EncryptedKeys", add_second_encrypted_key, False),
    ("an OAEP digest of SHA-256", add_oaep_digest(c.DIGEST_SHA256), False),
    ("an OAEP digest of SHA-1, said out loud", add_oaep_digest(c.DIGEST_SHA1), True),
]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "decrypted"),
    [case[1:] for case in ENCRYPTION_LAYOUTS],
    ids=[case[0] for case in ENCRYPTION_LAYOUTS],
)
def test_only_fedmocks_own_encryption_is_decrypted(key, sp_key, monkeypatch, change, decrypted):
    root = etree.fromstring(base64.b64decode(encrypted(key, sp_key, sign_response=False)))
    change(root)
    data = base64.b64encode(etree.tostring(root))
    if decrypted:
        assert check(data, key, decryption_key=sp_key[0]) == []
        return

    def no_decryption(*args, **kwargs):
        raise AssertionError("xmlsec was asked to decrypt a refused layout")

    monkeypatch.setattr(xmlsec, "EncryptionContext", no_decryption)
    with pytest.raises(SamlError, match="not one this checker decrypts"):
        check(data, key, decryption_key=sp_key[0])


def test_a_plain_response_with_a_key_is_judged_as_usual(key, sp_key):
    assert check(response(key), key, decryption_key=sp_key[0]) == []


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("check_saml_response", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_command_decrypts_with_key(key, sp_key, tmp_path):
    (tmp_path / "r.b64").write_bytes(encrypted(key, sp_key))
    (tmp_path / "sp.key").write_bytes(sp_key[0])
    at = ("--now", NOW.isoformat())
    out, _ = run(str(tmp_path / "r.b64"), "--key", str(tmp_path / "sp.key"), *at)
    assert out.strip() == "No findings: AWS should accept this response."
    out, _ = run(str(tmp_path / "r.b64"), *at)
    assert out.startswith("R14 warning:") and "--key" in out


@pytest.mark.parametrize(
    ("key_file", "words"),
    [(b"not a key", "not a PEM private key"), (None, "Cannot read")],
    ids=["junk", "missing"],
)
def test_command_with_a_bad_key_is_one_line(key, sp_key, tmp_path, key_file, words):
    (tmp_path / "r.b64").write_bytes(encrypted(key, sp_key))
    if key_file is not None:
        (tmp_path / "sp.key").write_bytes(key_file)
    with pytest.raises(CommandError, match=words) as refusal:
        run(str(tmp_path / "r.b64"), "--key", str(tmp_path / "sp.key"))
    assert "\n" not in str(refusal.value)


def test_admin_page_decrypts_with_an_uploaded_key(admin_client, key, sp_key):
    bad = encrypted(key, sp_key, release_=release(RoleSessionName=("alice smith",)))
    page = admin_client.post(
        CHECK_PAGE,
        {"response": bad.decode(), "key": SimpleUploadedFile("sp.key", sp_key[0])},
    )
    body = page.content.decode()
    assert page.status_code == 200
    assert "R2 error" in body
    assert "BEGIN PRIVATE KEY" not in body  # the key is never echoed back


def test_admin_page_with_a_wrong_key_shows_the_problem(admin_client, key, sp_key):
    page = admin_client.post(
        CHECK_PAGE,
        {
            "response": encrypted(key, sp_key).decode(),
            "key": SimpleUploadedFile("sp.key", signing.generate_self_signed("x")[0]),
        },
    )
    body = page.content.decode()
    assert 'class="errornote"' in body and "cannot be decrypted" in body


def test_admin_page_refuses_an_oversized_key_file(admin_client, key):
    page = admin_client.post(
        CHECK_PAGE,
        {"response": response(key).decode(), "key": SimpleUploadedFile("k", b"A" * 20_000)},
    )
    assert "at most 16384 characters" in page.content.decode()


# --- item 8: keys cryptography cannot read, in KeyInfo ---------------------------------


def _certificate(private_key, algorithm) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "odd key")])
    moment = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(1)
        .not_valid_before(moment)
        .not_valid_after(moment + datetime.timedelta(days=3650))
        .sign(private_key, algorithm)
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


# SM2 is a curve OpenSSL knows and cryptography refuses (UnsupportedAlgorithm), so the
# certificate was made once with `openssl req -x509 -newkey sm2 -sm3` and is kept here.
ODD_CERTIFICATES = [
    ("SM2", lambda: (DATA / "sm2-certificate.pem").read_text()),
    ("Ed448", lambda: _certificate(ed448.Ed448PrivateKey.generate(), None)),
    ("Ed25519", lambda: _certificate(ed25519.Ed25519PrivateKey.generate(), None)),
    ("DSA", lambda: _certificate(dsa.generate_private_key(2048), hashes.SHA256())),
    ("EC P-256", lambda: _certificate(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())),
]


def with_key_info_certificate(data: bytes, certificate_pem: str) -> bytes:
    root = etree.fromstring(base64.b64decode(data))
    body = "".join(certificate_pem.strip().splitlines()[1:-1])
    for element in root.iterfind(".//ds:X509Certificate", NS):
        element.text = body
    return base64.b64encode(etree.tostring(root))


@pytest.fixture(scope="module", params=ODD_CERTIFICATES, ids=[c[0] for c in ODD_CERTIFICATES])
def odd_certificate(request) -> str:
    return request.param[1]()


def test_sm2_really_is_unreadable_by_cryptography():
    from cryptography.exceptions import UnsupportedAlgorithm

    cert = x509.load_pem_x509_certificate((DATA / "sm2-certificate.pem").read_bytes())
    with pytest.raises(UnsupportedAlgorithm):
        cert.public_key()


@pytest.mark.parametrize("with_metadata", [False, True], ids=["form only", "with metadata"])
def test_odd_key_in_key_info_is_an_r11_finding(key, odd_certificate, with_metadata):
    data = with_key_info_certificate(response(key), odd_certificate)
    certificates = [key.cert_pem] if with_metadata else []
    findings = aws.check_response(data, now=NOW, certificates=certificates)
    assert errors(findings) == {"R11"}, findings
    assert any("RSA" in f.message for f in findings)


def test_odd_key_as_the_metadata_certificate_is_a_finding(key, odd_certificate):
    findings = aws.check_response(response(key), now=NOW, certificates=[odd_certificate])
    assert any("Response signature invalid" in f.message for f in findings)


def test_command_with_an_sm2_key_info_prints_findings(key, tmp_path):
    sm2 = (DATA / "sm2-certificate.pem").read_text()
    (tmp_path / "r.b64").write_bytes(with_key_info_certificate(response(key), sm2))
    with pytest.raises(SystemExit) as exit_:
        run(str(tmp_path / "r.b64"))
    assert exit_.value.code == 1


def test_command_with_sm2_in_metadata_and_key_info(key, tmp_path):
    sm2 = (DATA / "sm2-certificate.pem").read_text()
    (tmp_path / "r.b64").write_bytes(with_key_info_certificate(response(key), sm2))
    (tmp_path / "md.xml").write_bytes(idp_metadata(ISSUER, "https://idp.example/sso", [sm2]))
    try:
        run(str(tmp_path / "r.b64"), "--metadata", str(tmp_path / "md.xml"))
    except SystemExit as exit_:
        assert exit_.code == 1
    except CommandError as refusal:  # metadata.py may refuse the SM2 certificate outright
        assert "\n" not in str(refusal)


def test_admin_page_with_an_sm2_key_info(admin_client, key):
    sm2 = (DATA / "sm2-certificate.pem").read_text()
    data = with_key_info_certificate(response(key), sm2)
    page = admin_client.post(CHECK_PAGE, {"response": data.decode()})
    assert page.status_code == 200
    assert "R11 error" in page.content.decode()


# --- item 15: the admin page says what it did not check --------------------------------


def metadata_for(key) -> str:
    return idp_metadata(ISSUER, "https://idp.example/sso", [key.cert_pem]).decode()


def test_admin_page_without_metadata_says_the_signature_was_checked_for_form_only(
    admin_client, key
):
    body = admin_client.post(CHECK_PAGE, {"response": response(key).decode()}).content.decode()
    assert "finding" in body  # the page judged it (the clock is today's, so R12 may show)
    assert "checked for form only" in body and "Issuer against nothing" in body


def test_admin_page_with_metadata_does_not_say_so(admin_client, key):
    page = admin_client.post(
        CHECK_PAGE, {"response": response(key).decode(), "metadata": metadata_for(key)}
    )
    assert "form only" not in page.content.decode()


def test_command_and_admin_page_say_the_same(admin_client, key, tmp_path):
    (tmp_path / "r.b64").write_bytes(response(key))
    _, note = run(str(tmp_path / "r.b64"), "--now", NOW.isoformat())
    body = admin_client.post(CHECK_PAGE, {"response": response(key).decode()}).content.decode()
    assert aws.WITHOUT_METADATA in note and aws.WITHOUT_METADATA in body


# --- item 9: plain HTTP and SHA-1 ------------------------------------------------------


def test_http_acs_on_identity_center_is_warned(key):
    http_acs = IC_ACS.replace("https://", "http://")
    ic = release(RoleSessionName=None, Role=None)
    findings = check(response(key, ic, acs=http_acs, audience=IC_AUDIENCE), key)
    warnings = [f for f in findings if f.severity == "warning" and "plain http://" in f.message]
    assert len(warnings) == 1, findings  # Destination and Recipient are one URL: one warning


def test_http_acs_on_aws_is_an_r9_error(key):
    findings = check(response(key, acs="http://signin.aws.amazon.com/saml"), key)
    assert "R9" in errors(findings)


def test_https_acs_is_not_warned(key):
    ic = release(RoleSessionName=None, Role=None)
    findings = check(response(key, ic, acs=IC_ACS, audience=IC_AUDIENCE), key)
    assert not any("http://" in f.message for f in findings)


def test_check_transport_for_other_doors():
    assert aws.check_transport("https://sp.example/acs", "ACS") == []
    [finding] = aws.check_transport("HTTP://sp.example/acs", "ACS")
    assert finding.severity == "warning"


@pytest.mark.parametrize(
    ("method", "digest"),
    [
        (c.SIG_RSA_SHA1, c.DIGEST_SHA1),
        (c.SIG_RSA_SHA1, c.DIGEST_SHA256),
        (c.SIG_RSA_SHA256, c.DIGEST_SHA1),
    ],
    ids=["RSA-SHA1 and SHA-1", "RSA-SHA1 only", "SHA-1 digest only"],
)
def test_sha1_signatures_are_named_warnings(key, method, digest):
    data = response(key, signature_algorithm=method, digest_algorithm=digest)
    findings = check(data, key)
    assert findings and all(f.severity == "warning" and f.rule == "R11" for f in findings)
    assert all("SHA-1 is broken" in f.message for f in findings), findings


# --- item 1: the signature allow-list reaches the checker ------------------------------

XPATH = "http://www.w3.org/TR/1999/REC-xpath-19991116"


def xpath_attack(key) -> bytes:
    """The assertion's Reference lists an XPath transform; 11,000 fillers make xmlsec slow."""

    def mutate(root):
        extensions = etree.Element(f"{{{c.SAMLP}}}Extensions")
        filler = etree.SubElement(extensions, "{urn:filler}f")
        for _ in range(11_000):
            etree.SubElement(filler, "{urn:filler}f")
        root.find("saml:Issuer", NS).addnext(extensions)

    root = etree.fromstring(base64.b64decode(response(key, mutate=mutate, sign_response=False)))
    transforms = root.find(
        "saml:Assertion/ds:Signature/ds:SignedInfo/ds:Reference/ds:Transforms", NS
    )
    transform = etree.SubElement(transforms, f"{{{c.DS}}}Transform", Algorithm=XPATH)
    etree.SubElement(transform, f"{{{c.DS}}}XPath").text = "count(//. | //@* | //namespace::*)"
    return base64.b64encode(etree.tostring(root))


@pytest.mark.parametrize("with_metadata", [False, True], ids=["form only", "with metadata"])
def test_xpath_transform_is_refused_before_xmlsec_runs(key, monkeypatch, with_metadata):
    def no_verification(*args, **kwargs):
        raise AssertionError("xmlsec was asked to verify a refused signature")

    monkeypatch.setattr(signing.xmlsec, "SignatureContext", no_verification)
    with pytest.raises(SamlError, match="does not allow") as refusal:
        aws.check_response(
            xpath_attack(key), now=NOW, certificates=[key.cert_pem] if with_metadata else []
        )
    assert refusal.value.status == 400


def test_command_refuses_the_xpath_attack_in_one_line(key, tmp_path):
    (tmp_path / "r.b64").write_bytes(xpath_attack(key))
    (tmp_path / "md.xml").write_text(metadata_for(key))
    with pytest.raises(CommandError, match="does not allow") as refusal:
        run(str(tmp_path / "r.b64"), "--metadata", str(tmp_path / "md.xml"))
    assert "\n" not in str(refusal.value)


def test_admin_page_shows_the_xpath_refusal(admin_client, key):
    page = admin_client.post(
        CHECK_PAGE, {"response": xpath_attack(key).decode(), "metadata": metadata_for(key)}
    )
    body = page.content.decode()
    assert page.status_code == 200 and 'class="errornote"' in body and "does not allow" in body


@pytest.mark.parametrize(
    ("value", "findings"),
    [("2026-11-21T12:00:00Z", "No findings"), ("2026-11-21T12:00:00", "No findings")],
    ids=["with Z", "without zone means UTC"],
)
def test_command_judges_the_window_as_of_now(key, tmp_path, value, findings):
    (tmp_path / "r.b64").write_bytes(response(key))
    out, _ = run(str(tmp_path / "r.b64"), "--now", value)
    assert out.startswith(findings)


def test_command_with_a_bad_now_is_one_line(key, tmp_path):
    (tmp_path / "r.b64").write_bytes(response(key))
    with pytest.raises(CommandError, match="not an ISO 8601 instant") as refusal:
        run(str(tmp_path / "r.b64"), "--now", "yesterday")
    assert "\n" not in str(refusal.value)
