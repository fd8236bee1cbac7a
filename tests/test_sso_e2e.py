"""End to end over HTTP: a live IdP, pysaml2 as the SP, a user agent signing in."""

import base64

import boto3
import pytest
from lxml import etree
from moto import mock_aws
from saml2 import BINDING_HTTP_POST
from saml2.sigver import SignatureError

from idp import clock
from idp.models import AuditEvent
from idp.saml import aws
from idp.saml import constants as c

from .agents import Browser, ServiceProvider, parse_post_form

pytestmark = pytest.mark.django_db(transaction=True)

NS = {"samlp": c.SAMLP, "saml": c.SAML, "ds": c.DS}


@pytest.fixture
def sp(demo, idp_url, tmp_path):
    """pysaml2 SP that loaded the IdP's metadata over HTTP and is registered from its own."""
    metadata = Browser(idp_url).get("/saml/metadata/")
    assert metadata.status_code == 200
    service_provider = ServiceProvider(tmp_path / "sp", metadata.content)
    service_provider.register(tmp_path)
    return service_provider


def response_xml(saml_response: str) -> etree._Element:
    return etree.fromstring(base64.b64decode(saml_response))


def test_sp_initiated_redirect_binding(sp, idp_url):
    browser = Browser(idp_url)
    request_id, url = sp.redirect_request(relay_state="/after/login?x=1")
    login_page = browser.get(url)
    assert login_page.status_code == 200 and "/accounts/login/" in login_page.url

    form = parse_post_form(browser.sign_in_on(login_page, "alice").text)

    assert form["action"] == sp.acs
    assert form["fields"]["RelayState"] == "/after/login?x=1"
    accepted = sp.accept(form["fields"]["SAMLResponse"], request_id)
    assert accepted.in_response_to == request_id
    assert accepted.assertion.subject.name_id.format == c.NAMEID_PERSISTENT
    root = response_xml(form["fields"]["SAMLResponse"])
    assert root.get("Destination") == sp.acs
    assert root.findtext("saml:Issuer", namespaces=NS) == f"{idp_url}/saml/metadata/"
    confirmation = root.find(".//saml:SubjectConfirmationData", NS)
    assert confirmation.get("Recipient") == sp.acs
    assert confirmation.get("InResponseTo") == request_id
    assert root.find(".//saml:AuthnStatement", NS).get("SessionIndex")
    assert root.find("saml:Assertion/ds:Signature", NS) is not None
    assert root.find("ds:Signature", NS) is not None


def test_sp_initiated_post_binding_and_single_sign_on(sp, idp_url):
    browser = Browser(idp_url)
    request_id, action, fields = sp.post_request(relay_state="post-state")
    login_page = browser.post(action, fields)
    form = parse_post_form(browser.sign_in_on(login_page, "alice").text)
    assert sp.accept(form["fields"]["SAMLResponse"], request_id).in_response_to == request_id
    assert form["fields"]["RelayState"] == "post-state"

    # The IdP session answers the next request without a login page.
    request_id, action, fields = sp.post_request()
    second = browser.post(action, fields)
    assert "/accounts/login/" not in second.url
    assert sp.accept(parse_post_form(second.text)["fields"]["SAMLResponse"], request_id)


def test_sp_rejects_a_response_signed_by_another_key(sp, idp_url, tmp_path):
    """The SP's signature check is real: a response from a foreign IdP key fails it."""
    from idp.keys import forget_cached_keys, store_key
    from idp.models import SigningKey
    from idp.saml import signing

    SigningKey.objects.update(state=SigningKey.State.RETIRED)
    store_key(*signing.generate_self_signed("impostor"), state="active")
    forget_cached_keys()
    browser = Browser(idp_url)
    browser.sign_in("alice")
    request_id, url = sp.redirect_request()
    form = parse_post_form(browser.get(url).text)
    with pytest.raises(SignatureError):
        sp.accept(form["fields"]["SAMLResponse"], request_id)


def test_force_authn_shows_the_login_again(sp, idp_url):
    browser = Browser(idp_url)
    browser.sign_in("alice")
    request_id, url = sp.redirect_request(force_authn="true")
    page = browser.get(url)
    assert "/accounts/login/" in page.url
    form = parse_post_form(browser.sign_in_on(page, "alice").text)
    assert sp.accept(form["fields"]["SAMLResponse"], request_id)


def test_is_passive_without_session_answers_no_passive(sp, idp_url):
    browser = Browser(idp_url)
    request_id, url = sp.redirect_request(is_passive="true")
    form = parse_post_form(browser.get(url).text)
    root = response_xml(form["fields"]["SAMLResponse"])
    codes = [e.get("Value") for e in root.iterfind(".//samlp:StatusCode", NS)]
    assert codes == [c.STATUS_RESPONDER, c.STATUS_NO_PASSIVE]
    assert root.find("saml:Assertion", NS) is None


def test_name_id_policy_is_honoured(sp, idp_url):
    browser = Browser(idp_url)
    browser.sign_in("alice")
    request_id, url = sp.redirect_request(nameid_format=c.NAMEID_EMAIL)
    form = parse_post_form(browser.get(url).text)
    name_id = sp.accept(form["fields"]["SAMLResponse"], request_id).assertion.subject.name_id
    assert (name_id.format, name_id.text) == (c.NAMEID_EMAIL, "alice@example.com")


def test_unsupported_name_id_policy_answers_invalid_name_id_policy(sp, idp_url):
    browser = Browser(idp_url)
    browser.sign_in("alice")
    kerberos = "urn:oasis:names:tc:SAML:2.0:nameid-format:kerberos"
    request_id, url = sp.redirect_request(nameid_format=kerberos)
    root = response_xml(parse_post_form(browser.get(url).text)["fields"]["SAMLResponse"])
    codes = [e.get("Value") for e in root.iterfind(".//samlp:StatusCode", NS)]
    assert codes == [c.STATUS_RESPONDER, c.STATUS_INVALID_NAMEID_POLICY]


def aws_assertion(browser: Browser, role: str = "") -> str:
    query = {"sp": aws.AUDIENCE}
    if role:
        query["role"] = role
    page = browser.get("/saml/init/", params=query)
    assert page.status_code == 200, page.text
    form = parse_post_form(page.text)
    assert form["action"] == "https://signin.aws.amazon.com/saml"
    return form["fields"]["SAMLResponse"]


def attribute_values(root: etree._Element, name: str) -> list[str]:
    return [
        v.text for v in root.iterfind(f".//saml:Attribute[@Name='{name}']/saml:AttributeValue", NS)
    ]


ALICE_ROLES = [
    "arn:aws:iam::111122223333:role/Admin,arn:aws:iam::111122223333:saml-provider/fedmock",
    "arn:aws:iam::111122223333:role/ReadOnly,arn:aws:iam::111122223333:saml-provider/fedmock",
    "arn:aws:iam::444455556666:role/Developer,arn:aws:iam::444455556666:saml-provider/fedmock",
]


def test_idp_initiated_aws_for_alice_carries_her_three_roles(demo, idp_url):
    browser = Browser(idp_url)
    page = browser.get("/saml/init/", params={"sp": aws.AUDIENCE})
    assert "/accounts/login/" in page.url  # login first, then the form
    form = parse_post_form(browser.sign_in_on(page, "alice").text)
    root = response_xml(form["fields"]["SAMLResponse"])

    assert sorted(attribute_values(root, aws.ROLE)) == ALICE_ROLES
    assert attribute_values(root, aws.ROLE_SESSION_NAME) == ["alice@example.com"]
    assert root.findtext(".//saml:Audience", namespaces=NS) == "urn:amazon:webservices"
    assert root.get("InResponseTo") is None
    event = AuditEvent.objects.get(outcome="sent")
    assert sorted(event.roles) == sorted(r.split(",")[0] for r in ALICE_ROLES)


def exchange_with_sts(saml_response: str, role_value: str) -> dict:
    """AssumeRoleWithSAML against moto, which checks the shape only (see AWS-SAML-RULES.md)."""
    role, provider = role_value.split(",")
    sts = boto3.client("sts", region_name="us-east-1")
    return sts.assume_role_with_saml(
        RoleArn=role, PrincipalArn=provider, SAMLAssertion=saml_response
    )


@mock_aws
@pytest.mark.parametrize("role_value", ALICE_ROLES)
def test_each_of_alices_roles_is_exchanged_with_sts(demo, idp_url, role_value):
    browser = Browser(idp_url)
    browser.sign_in("alice")
    saml_response = aws_assertion(browser, role_value.split(",")[0])
    root = response_xml(saml_response)
    assert attribute_values(root, aws.ROLE) == [role_value]
    assert attribute_values(root, aws.SESSION_DURATION) == ["3600"]
    assert attribute_values(root, aws.PRINCIPAL_TAG_PREFIX + "department") == ["Engineering"]
    assert attribute_values(root, aws.PRINCIPAL_TAG_PREFIX + "costCenter") == ["4711"]
    # fedmock's own checker, stricter than moto, finds nothing to object to either.
    assert aws.check_response(saml_response.encode(), now=clock.now()) == []

    answer = exchange_with_sts(saml_response, role_value)
    assert answer["Credentials"]["AccessKeyId"]
    assert answer["AssumedRoleUser"]["Arn"].endswith("/alice@example.com")


@mock_aws
def test_bob_gets_read_only_and_nothing_else(demo, idp_url):
    browser = Browser(idp_url)
    browser.sign_in("bob")
    saml_response = aws_assertion(browser)
    [role_value] = attribute_values(response_xml(saml_response), aws.ROLE)
    assert role_value == ALICE_ROLES[1]
    answer = exchange_with_sts(saml_response, role_value)
    assert answer["AssumedRoleUser"]["Arn"].endswith("/bob@example.com")
    denied = browser.get(
        "/saml/init/", params={"sp": aws.AUDIENCE, "role": ALICE_ROLES[0].split(",")[0]}
    )
    assert denied.status_code == 403


def test_carol_without_roles_gets_a_page_that_says_why(demo, idp_url):
    browser = Browser(idp_url)
    browser.sign_in("carol")
    page = browser.get("/saml/init/", params={"sp": aws.AUDIENCE})
    assert page.status_code == 403
    assert "No AWS role for you" in page.text
    assert "SAMLResponse" not in page.text
    assert AuditEvent.objects.get().outcome == "refused"


def test_a_role_the_user_lacks_is_refused(demo, idp_url):
    browser = Browser(idp_url)
    browser.sign_in("bob")
    page = browser.get(
        "/saml/init/", params={"sp": aws.AUDIENCE, "role": ALICE_ROLES[0].split(",")[0]}
    )
    assert page.status_code == 403
    assert "You do not have this role" in page.text


def test_portal_shows_one_tile_per_role_and_all_roles(demo, idp_url):
    browser = Browser(idp_url)
    browser.sign_in("alice")
    page = browser.get("/")
    assert page.status_code == 200
    assert page.text.count('data-testid="tile"') == 4
    for name in ("Admin", "ReadOnly", "Developer", "All roles"):
        assert name in page.text


def test_metadata_is_what_pysaml2_and_iam_accept(demo, idp_url):
    metadata = Browser(idp_url).get("/saml/metadata/")
    assert 1000 <= len(metadata.text) <= 10_000_000  # R15
    assert not metadata.content.startswith(b"\xef\xbb\xbf")
    root = etree.fromstring(metadata.content)
    assert root.get("entityID") == f"{idp_url}/saml/metadata/"
    bindings = {
        e.get("Binding")
        for e in root.iterfind(".//{urn:oasis:names:tc:SAML:2.0:metadata}SingleSignOnService")
    }
    assert bindings == {c.BINDING_REDIRECT, c.BINDING_POST, c.BINDING_SOAP}  # SOAP: ECP
    assert BINDING_HTTP_POST in bindings


@pytest.fixture
def signing_sp(demo, idp_url, tmp_path):
    """An SP whose metadata says AuthnRequestsSigned: the IdP then insists on valid signatures."""
    metadata = Browser(idp_url).get("/saml/metadata/").content
    service_provider = ServiceProvider(
        tmp_path / "signing-sp",
        metadata,
        entity_id="https://signing-sp.example.test/metadata",
        sign_requests=True,
    )
    service_provider.register(tmp_path)
    return service_provider


def test_signed_requests_are_verified_over_both_bindings(signing_sp, idp_url):
    browser = Browser(idp_url)
    browser.sign_in("alice")
    request_id, url = signing_sp.redirect_request(relay_state="r1", sign=True)
    assert "Signature=" in url
    form = parse_post_form(browser.get(url).text)
    assert signing_sp.accept(form["fields"]["SAMLResponse"], request_id)

    request_id, action, fields = signing_sp.post_request(sign=True)
    form = parse_post_form(browser.post(action, fields).text)
    assert signing_sp.accept(form["fields"]["SAMLResponse"], request_id)


def test_tampered_or_unsigned_requests_are_refused(signing_sp, idp_url):
    browser = Browser(idp_url)
    browser.sign_in("alice")
    _, url = signing_sp.redirect_request(relay_state="original", sign=True)
    tampered = browser.get(url.replace("RelayState=original", "RelayState=forged"))
    assert tampered.status_code == 400
    assert "signature is invalid" in tampered.text

    _, url = signing_sp.redirect_request(sign=False)
    unsigned = browser.get(url)
    assert unsigned.status_code == 400
    assert "not signed" in unsigned.text


def test_sp_rejects_a_response_to_a_request_it_did_not_send(sp, idp_url):
    from saml2.response import UnsolicitedResponse

    browser = Browser(idp_url)
    browser.sign_in("alice")
    _, url = sp.redirect_request()
    form = parse_post_form(browser.get(url).text)
    with pytest.raises(UnsolicitedResponse):
        sp.accept(form["fields"]["SAMLResponse"], "_some_other_request")
