"""RequestedAuthnContext end to end: a pysaml2 SP asks, over HTTP, with each comparison; the
assertion states the class that met the request, or the status is NoAuthnContext."""

import base64

import pytest
from lxml import etree
from saml2.saml import AuthnContextClassRef
from saml2.samlp import RequestedAuthnContext

from idp import authn_context as ac
from idp import cache
from idp.saml import constants as c
from users.models import User

from .agents import Browser, ServiceProvider, parse_post_form

pytestmark = pytest.mark.django_db(transaction=True)

NS = {"samlp": c.SAMLP, "saml": c.SAML}
UNKNOWN = "urn:example:ac:classes:Retina"


@pytest.fixture
def sp(demo, idp_url, tmp_path):
    metadata = Browser(idp_url).get("/saml/metadata/")
    service_provider = ServiceProvider(tmp_path / "sp", metadata.content)
    service_provider.register(tmp_path)
    return service_provider


def make_user(username: str, authn_method: str = "password") -> User:
    user = User.objects.create_user(username, f"{username}@example.com", username)
    user.authn_method = authn_method
    user.save()
    cache.refresh()
    return user


def requested(comparison: str, *refs: str) -> RequestedAuthnContext:
    return RequestedAuthnContext(
        comparison=comparison,
        authn_context_class_ref=[AuthnContextClassRef(text=ref) for ref in refs],
    )


def outcome(sp: ServiceProvider, form: dict, request_id: str) -> str:
    """The class in the assertion (after the SP accepted it), or the second-level status."""
    root = etree.fromstring(base64.b64decode(form["fields"]["SAMLResponse"]))
    codes = [e.get("Value") for e in root.iterfind(".//samlp:StatusCode", NS)]
    if codes[0] != c.STATUS_SUCCESS:
        assert codes[0] == c.STATUS_RESPONDER
        assert root.findtext(".//samlp:StatusMessage", namespaces=NS).strip()
        assert root.find("saml:Assertion", NS) is None
        return codes[1].rsplit(":", 1)[1]
    accepted = sp.accept(form["fields"]["SAMLResponse"], request_id)
    statement = accepted.assertion.authn_statement[0]
    return statement.authn_context.authn_context_class_ref.text


# (user's authn_method, comparison, classes asked) -> the assertion's class or the status
TABLE = [
    ("password", None, (), ac.PASSWORD_PROTECTED_TRANSPORT),
    ("password", "exact", (ac.PASSWORD_PROTECTED_TRANSPORT,), ac.PASSWORD_PROTECTED_TRANSPORT),
    ("password", "exact", (ac.X509,), "NoAuthnContext"),
    ("password", "exact", (ac.X509, ac.PASSWORD), ac.PASSWORD),
    ("password", "exact", (UNKNOWN,), "NoAuthnContext"),
    ("password", "exact", (ac.UNSPECIFIED,), ac.UNSPECIFIED),
    ("password", "minimum", (ac.PASSWORD,), ac.PASSWORD_PROTECTED_TRANSPORT),
    ("password", "minimum", (ac.KERBEROS,), "enrolment"),  # only MFA reaches it: enrol
    ("password", "better", (ac.PASSWORD_PROTECTED_TRANSPORT,), "enrolment"),
    ("password", "maximum", (ac.X509,), ac.PASSWORD_PROTECTED_TRANSPORT),
    ("password", "maximum", (ac.PASSWORD,), ac.PASSWORD),
    ("x509", None, (), ac.X509),
    ("x509", "exact", (ac.X509,), ac.X509),
    ("x509", "exact", (ac.KERBEROS,), "NoAuthnContext"),
    ("x509", "exact", (ac.PASSWORD_PROTECTED_TRANSPORT,), "enrolment"),  # MFA has a password
    ("x509", "minimum", (ac.KERBEROS,), ac.X509),
    ("x509", "better", (ac.PASSWORD_PROTECTED_TRANSPORT,), ac.X509),
    ("x509", "better", (ac.X509,), "enrolment"),
    ("x509", "maximum", (ac.KERBEROS,), ac.UNSPECIFIED),
    ("kerberos", "exact", (ac.KERBEROS,), ac.KERBEROS),
    ("kerberos", "minimum", (ac.PASSWORD,), ac.KERBEROS),
    ("kerberos", "maximum", (ac.MFA,), ac.KERBEROS),
]


@pytest.mark.parametrize(("method", "comparison", "refs", "expected"), TABLE)
def test_each_comparison_over_http(sp, idp_url, method, comparison, refs, expected):
    make_user("tess", method)
    browser = Browser(idp_url)
    browser.sign_in("tess")
    options = {"requested_authn_context": requested(comparison, *refs)} if comparison else {}
    request_id, url = sp.redirect_request(**options)
    page = browser.get(url)
    if expected == "enrolment":
        # Signed in with less than asked, and only a TOTP code would do: enrol first.
        assert "/accounts/mfa/" in page.url
        assert "asks for a stronger sign-in" in page.text
        return
    assert outcome(sp, parse_post_form(page.text), request_id) == expected


def test_the_login_page_says_why_and_names_the_sp(sp, idp_url):
    make_user("xena", "x509")
    browser = Browser(idp_url)
    browser.sign_in("xena")
    # Signed in as X509; the SP wants Kerberos or better than X509: not this user.
    request_id, url = sp.redirect_request(requested_authn_context=requested("exact", ac.X509))
    assert outcome(sp, parse_post_form(browser.get(url).text), request_id) == ac.X509
    # Nobody signed in yet: the login page says who asks for what, and X509 follows.
    fresh = Browser(idp_url)
    request_id, url = sp.redirect_request(requested_authn_context=requested("exact", ac.X509))
    page = fresh.get(url)
    assert "/accounts/login/" in page.url
    assert "sp.example.test" in page.text and "asks for a stronger sign-in" in page.text
    assert "X509" in page.text
    form = parse_post_form(fresh.sign_in_on(page, "xena").text)
    assert outcome(sp, form, request_id) == ac.X509


def test_a_password_user_asked_for_x509_gets_no_authn_context_after_login(sp, idp_url):
    make_user("paula")
    browser = Browser(idp_url)
    request_id, url = sp.redirect_request(requested_authn_context=requested("exact", ac.X509))
    page = browser.get(url)
    form = parse_post_form(browser.sign_in_on(page, "paula").text)
    assert outcome(sp, form, request_id) == "NoAuthnContext"
    root = etree.fromstring(base64.b64decode(form["fields"]["SAMLResponse"]))
    message = root.findtext(".//samlp:StatusMessage", namespaces=NS)
    assert "X509" in message and "PasswordProtectedTransport" in message


def test_is_passive_and_a_step_up_answers_no_passive(sp, idp_url):
    make_user("ivy")
    browser = Browser(idp_url)
    browser.sign_in("ivy")
    request_id, url = sp.redirect_request(
        is_passive="true", requested_authn_context=requested("exact", ac.MFA)
    )
    assert outcome(sp, parse_post_form(browser.get(url).text), request_id) == "NoPassive"
    # Unmeetable whatever the user does: NoAuthnContext, passive or not.
    request_id, url = sp.redirect_request(
        is_passive="true", requested_authn_context=requested("exact", UNKNOWN)
    )
    assert outcome(sp, parse_post_form(browser.get(url).text), request_id) == "NoAuthnContext"


def test_a_declaration_reference_is_refused_with_words(sp, idp_url):
    from saml2.saml import AuthnContextDeclRef

    make_user("dora")
    browser = Browser(idp_url)
    browser.sign_in("dora")
    ask = RequestedAuthnContext(authn_context_decl_ref=AuthnContextDeclRef(text="urn:decl"))
    request_id, url = sp.redirect_request(requested_authn_context=ask)
    form = parse_post_form(browser.get(url).text)
    assert outcome(sp, form, request_id) == "NoAuthnContext"
    root = etree.fromstring(base64.b64decode(form["fields"]["SAMLResponse"]))
    assert "AuthnContextDeclRef" in root.findtext(".//samlp:StatusMessage", namespaces=NS)


def test_a_picked_session_states_unspecified(sp, idp_url, settings):
    from idp.conf import idp_settings

    settings.IDP_LOGIN_MODE = "picker"
    if idp_settings.IDP_LOGIN_MODE != "picker":
        pytest.skip("IDP_LOGIN_MODE is read at start here")
    make_user("pia")
    browser = Browser(idp_url)
    page = browser.get("/accounts/login/")
    token = page.text.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    browser.post("/accounts/pick/", {"csrfmiddlewaretoken": token, "username": "pia"})
    request_id, url = sp.redirect_request()
    assert outcome(sp, parse_post_form(browser.get(url).text), request_id) == ac.UNSPECIFIED
