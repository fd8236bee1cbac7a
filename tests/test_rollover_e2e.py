"""Key rollover and encrypted assertions, end to end over HTTP with pysaml2 as the SP."""

import base64
import io

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.core.management import call_command
from lxml import etree
from saml2.sigver import SignatureError
from signxml import XMLVerifier

from idp.models import ServiceProvider as SpModel
from idp.saml import constants as c

from .agents import Browser, ServiceProvider, parse_post_form

pytestmark = pytest.mark.django_db(transaction=True)
MD = {"md": c.MD, "ds": c.DS, "xenc": c.XENC, "saml": c.SAML}


@pytest.fixture(autouse=True)
def fast_refresh(settings):
    settings.IDP_KEY_REFRESH_SECONDS = 0.05


def metadata(browser: Browser) -> bytes:
    return browser.get("/saml/metadata/").content


def certificates(document: bytes) -> list[str]:
    root = etree.fromstring(document)
    return ["".join(t.split()) for t in root.xpath("//ds:X509Certificate/text()", namespaces=MD)]


def rotate(step: str) -> None:
    call_command("rotate_key", step, stdout=io.StringIO())


def sign_on(browser: Browser, sp: ServiceProvider) -> tuple[str, str]:
    request_id, url = sp.redirect_request()
    return request_id, parse_post_form(browser.get(url).text)["fields"]["SAMLResponse"]


def test_rollover_without_downtime(demo, idp_url, tmp_path):
    browser = Browser(idp_url)
    browser.sign_in("alice")
    sp_old = ServiceProvider(tmp_path / "old", metadata(browser))  # trusts key 1
    sp_old.register(tmp_path)
    assert len(certificates(metadata(browser))) == 1
    assert sp_old.accept(*reversed(sign_on(browser, sp_old)))

    rotate("stage")
    staged = metadata(browser)
    assert len(certificates(staged)) == 2  # both keys published, key 1 still signs
    assert sp_old.accept(*reversed(sign_on(browser, sp_old)))

    rotate("activate")
    sp_new = ServiceProvider(tmp_path / "new", metadata(browser))
    request_id, response = sign_on(browser, sp_new)
    assert sp_new.accept(response, request_id)
    # The outage this feature prevents: an SP that never reloads the metadata.
    request_id, response = sign_on(browser, sp_old)
    with pytest.raises(SignatureError):
        sp_old.accept(response, request_id)
    sp_old_reloaded = ServiceProvider(tmp_path / "old-reloaded", staged)
    request_id, response = sign_on(browser, sp_old_reloaded)
    assert sp_old_reloaded.accept(response, request_id)

    rotate("retire")
    remaining = certificates(metadata(browser))
    assert len(remaining) == 1
    assert remaining[0] == certificates(staged)[1]  # only key 2 is published


@pytest.mark.parametrize("algorithm", [c.ENC_AES256_GCM, c.ENC_AES256_CBC])
def test_encrypted_assertion_is_decrypted_by_pysaml2(demo, idp_url, tmp_path, algorithm):
    browser = Browser(idp_url)
    browser.sign_in("alice")
    sp = ServiceProvider(tmp_path / "sp", metadata(browser), encryption=True)
    sp.register(tmp_path)
    SpModel.objects.filter(entity_id=sp.entity_id).update(
        encrypt_assertions=True, encryption_algorithm=algorithm
    )
    request_id, response = sign_on(browser, sp)
    root = etree.fromstring(base64.b64decode(response))
    assert root.find("saml:Assertion", MD) is None
    method = root.find(".//xenc:EncryptedData/xenc:EncryptionMethod", MD)
    assert method.get("Algorithm") == algorithm
    assert root.find(".//xenc:EncryptedKey/xenc:EncryptionMethod", MD).get("Algorithm") == (
        c.KEY_TRANSPORT_RSA_OAEP
    )
    accepted = sp.accept(response, request_id)  # pysaml2 decrypts, then verifies the signature
    assert accepted.assertion.subject.name_id.text


def test_encrypted_assertion_opens_with_plain_cryptography(demo, idp_url, tmp_path):
    """A second, independent decryption: RSA-OAEP and AES-GCM by hand, then signxml."""
    browser = Browser(idp_url)
    browser.sign_in("alice")
    sp = ServiceProvider(tmp_path / "sp", metadata(browser), encryption=True)
    sp.register(tmp_path)
    SpModel.objects.filter(entity_id=sp.entity_id).update(encrypt_assertions=True)
    _, response = sign_on(browser, sp)
    root = etree.fromstring(base64.b64decode(response))
    private_key = serialization.load_pem_private_key(sp.key_pem, password=None)
    wrapped = root.findtext(".//xenc:EncryptedKey/xenc:CipherData/xenc:CipherValue", namespaces=MD)
    session_key = private_key.decrypt(
        base64.b64decode(wrapped),
        padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None),  # noqa: S303
    )
    data = base64.b64decode(
        root.findtext(".//xenc:EncryptedData/xenc:CipherData/xenc:CipherValue", namespaces=MD)
    )
    assertion = AESGCM(session_key).decrypt(data[:12], data[12:], None)
    assert assertion.startswith(b"<saml:Assertion")
    # Signed first, then encrypted: the decrypted assertion stands alone and verifies.
    from idp import keys

    verified = XMLVerifier().verify(assertion, x509_cert=keys.active_key().cert_pem)
    assert verified.signed_xml.tag == f"{{{c.SAML}}}Assertion"


def test_preview_shows_what_the_sp_decrypts(client, demo, tmp_path, key_pems):
    sp = SpModel.objects.create(
        name="Enc",
        entity_id="https://enc.example/sp",
        encrypt_assertions=True,
        encryption_certificate=key_pems[1].decode(),
    )
    sp.endpoints.create(location="https://enc.example/acs", index=0, is_default=True)
    client.login(username="admin", password="admin")
    from users.models import User

    page = client.get(
        f"/admin/idp/serviceprovider/{sp.pk}/preview/",
        {"user": User.objects.get(username="alice").pk},
    ).content.decode()
    assert "What the SP reads after decrypting" in page
    assert "xenc:EncryptedData" in page and "saml:Assertion" in page
