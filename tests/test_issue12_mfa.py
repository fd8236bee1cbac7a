"""The TOTP second factor: the code after the password, one-time codes, the lockout, enrolment
at the portal, and SPs that require MFA. Codes are computed here from the provisioned secret
for the step that contains now; django-otp accepts one step either side, so no test races the
30-second boundary, and none sleeps."""

import base64
import re
import time
from urllib.parse import parse_qs, urlsplit

import lxml.html
import pytest
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from idp import authn_context as ac
from idp import cache, mfa, sso
from idp.mfa_views import PENDING
from idp.models import ServiceProvider as SPModel
from idp.saml.errors import SamlError
from idp.signals import AUTHN_CLASS
from users.models import User

from .agents import Browser, ServiceProvider, parse_post_form

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # 20 bytes, as an authenticator app shows it


def code_for(secret_b32: str, offset_steps: int = 0) -> str:
    totp = TOTP(base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8)))
    totp.time = time.time() + 30 * offset_steps
    return f"{totp.token():06d}"


def wrong_code(secret_b32: str) -> str:
    """A code no step within django-otp's tolerance gives."""
    near = {code_for(secret_b32, step) for step in (-1, 0, 1)}
    return next(f"{n:06d}" for n in range(1000000) if f"{n:06d}" not in near)


@pytest.fixture
def tom(demo):
    user = User.objects.create_user("tom", "tom@example.com", "tom")
    mfa.provision(user, mfa.secret_from_base32(SECRET))
    cache.refresh()
    return user


def password(client, username: str, next_url: str = "", address: str = "10.0.0.7"):
    data = {"username": username, "password": username}
    if next_url:
        data["next"] = next_url
    return client.post("/accounts/login/", data, REMOTE_ADDR=address)


def submit_code(client, code: str, address: str = "10.0.0.7"):
    return client.post("/accounts/login/code/", {"otp_token": code}, REMOTE_ADDR=address)


def signed_in_as(client) -> str | None:
    page = client.get("/")
    return None if page.status_code == 302 else page.wsgi_request.user.get_username()


# --- the code after the password -------------------------------------------------------


@pytest.mark.django_db
def test_an_enrolled_user_is_asked_for_a_code_and_not_signed_in_before_it(client, tom, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 3600  # the wait below holds however slow the run
    response = password(client, "tom", next_url="/?after=code")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/code/"
    assert signed_in_as(client) is None  # the password alone signs nobody in
    page = client.get("/accounts/login/code/")
    assert page.status_code == 200 and "tom" in page.content.decode()

    refused = submit_code(client, wrong_code(SECRET))
    assert refused.status_code == 400
    assert "That code is wrong" in refused.content.decode()
    assert signed_in_as(client) is None
    # django-otp makes the device wait after a failure; a test does not wait.
    assert submit_code(client, code_for(SECRET)).status_code == 400
    TOTPDevice.objects.update(throttling_failure_count=0, throttling_failure_timestamp=None)

    accepted = submit_code(client, code_for(SECRET))
    assert accepted.status_code == 302 and accepted["Location"] == "/?after=code"
    assert signed_in_as(client) == "tom"
    assert client.session[AUTHN_CLASS] == ac.MFA


@pytest.mark.django_db
def test_a_user_without_a_device_signs_in_with_the_password_alone(client, demo):
    response = password(client, "alice")
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.session[AUTHN_CLASS] == ac.PASSWORD_PROTECTED_TRANSPORT


@pytest.mark.django_db
def test_a_code_works_once(client, tom):
    code = code_for(SECRET)
    password(client, "tom")
    assert submit_code(client, code).status_code == 302
    client.post("/accounts/logout/")
    password(client, "tom")
    replayed = submit_code(client, code)
    assert replayed.status_code == 400
    assert "already used" in replayed.content.decode()
    assert signed_in_as(client) is None


@pytest.mark.django_db
@pytest.mark.parametrize("junk", ["", "12345", "1234567", "abcdef", "１２３４５６", "12 34\x0056"])
def test_malformed_codes_are_refused_in_words(client, tom, junk):
    password(client, "tom")
    refused = submit_code(client, junk)
    assert refused.status_code == 400
    assert "6 digits" in refused.content.decode() or "wrong" in refused.content.decode()
    assert signed_in_as(client) is None


@pytest.mark.django_db
def test_the_code_page_without_a_password_first_goes_to_the_login(client, tom):
    assert client.get("/accounts/login/code/")["Location"] == "/accounts/login/"
    assert submit_code(client, code_for(SECRET))["Location"] == "/accounts/login/"
    assert signed_in_as(client) is None


@pytest.mark.django_db
def test_a_password_waits_five_minutes_for_its_code(client, tom, settings):
    password(client, "tom")
    session = client.session
    session[PENDING] = {**session[PENDING], "at": time.time() - mfa.PENDING_MAX_AGE - 1}
    session.save()
    client.cookies[settings.SESSION_COOKIE_NAME] = session.session_key  # a signed cookie
    late = submit_code(client, code_for(SECRET))
    assert late.status_code == 400
    assert "waited too long" in late.content.decode()
    assert signed_in_as(client) is None


@pytest.mark.django_db
def test_wrong_codes_count_towards_the_lockout_like_wrong_passwords(client, tom, settings):
    assert settings.AXES_FAILURE_LIMIT == 5
    password(client, "tom")
    wrong = wrong_code(SECRET)
    TOTPDevice.objects.update(throttling_failure_count=0)
    statuses = []
    for _ in range(5):
        statuses.append(submit_code(client, wrong).status_code)
        # django-otp's own throttle would slow the next try; lift it to reach axes' limit.
        TOTPDevice.objects.update(throttling_failure_count=0, throttling_failure_timestamp=None)
    assert statuses == [400, 400, 400, 400, 429]
    locked = submit_code(client, code_for(SECRET))  # even the right code
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    assert signed_in_as(client) is None
    # The password door is locked for this user name too.
    assert password(client, "tom").status_code == 429


@pytest.mark.django_db
def test_django_otp_throttles_the_device_after_a_wrong_code(client, tom, settings):
    # One failure makes the device wait OTP_TOTP_THROTTLE_FACTOR seconds (1 by default): an
    # hour here, so that a slow run (more than 1 s between two requests) cannot pass it.
    settings.OTP_TOTP_THROTTLE_FACTOR = 3600
    password(client, "tom")
    submit_code(client, wrong_code(SECRET))
    throttled = submit_code(client, code_for(SECRET))  # at once: the device waits first
    assert throttled.status_code == 400
    assert "Too many wrong codes" in throttled.content.decode()


# --- provisioning -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("not base32!", "not base32"),
        ("JBSWY3DP", "5 bytes"),
        ("A" * 200, "bytes"),
        ("0189" * 8, "not base32"),
    ],
)
def test_a_bad_secret_is_refused_in_words(text, problem):
    with pytest.raises(Exception) as refused:
        mfa.secret_from_base32(text)
    assert problem in " ".join(refused.value.messages)


def test_a_secret_may_be_spaced_lower_case_and_padded():
    assert mfa.secret_from_base32("jbsw y3dp ehpk 3pxp") == mfa.secret_from_base32(
        "JBSWY3DPEHPK3PXP======"
    )


# --- enrolment at the portal ----------------------------------------------------------


def form_value(page: str, testid: str) -> str:
    return lxml.html.fromstring(page).xpath(f'//*[@data-testid="{testid}"]')[0].text_content()


@pytest.mark.django_db
def test_enrolment_at_the_portal_end_to_end(client, demo, settings):
    # Two codes in a row: django-otp would keep the drift of the first (-1 if a 30 s
    # boundary passed between computing and checking it), and then refuse the second,
    # computed a step ahead. The drift stays 0 here, so no boundary can fail the test.
    settings.OTP_TOTP_SYNC = False
    assert password(client, "alice").status_code == 302
    portal = client.get("/").content.decode()
    assert "/accounts/mfa/" in portal
    page = client.get("/accounts/mfa/").content.decode()
    secret = form_value(page, "totp-secret")
    uri = form_value(page, "totp-uri")
    assert uri.startswith("otpauth://totp/") and f"secret={secret}" in uri
    assert parse_qs(urlsplit(uri).query)["issuer"] == ["fedmock"]
    qr = lxml.html.fromstring(page).xpath('//img[@class="qr"]/@src')[0]
    svg = base64.b64decode(qr.removeprefix("data:image/svg+xml;base64,"))
    assert svg.lstrip().startswith((b"<?xml", b"<svg")) and b"<script" not in svg
    assert not mfa.enrolled(User.objects.get(username="alice"))

    bad = client.post("/accounts/mfa/", {"action": "confirm", "otp_token": wrong_code(secret)})
    assert bad.status_code == 400 and "That code is wrong" in bad.content.decode()
    assert form_value(bad.content.decode(), "totp-secret") == secret  # the same device
    TOTPDevice.objects.update(throttling_failure_count=0, throttling_failure_timestamp=None)

    done = client.post("/accounts/mfa/", {"action": "confirm", "otp_token": code_for(secret)})
    assert done.status_code == 302
    assert mfa.enrolled(User.objects.get(username="alice"))
    assert client.session[AUTHN_CLASS] == ac.MFA  # a password earlier, a code now
    assert 'data-testid="mfa-on"' in client.get("/accounts/mfa/").content.decode()

    # The next sign-in asks for a code.
    client.post("/accounts/logout/")
    assert password(client, "alice")["Location"] == "/accounts/login/code/"
    assert submit_code(client, code_for(secret, +1)).status_code == 302

    # Removing the device takes a code too.
    refused = client.post("/accounts/mfa/", {"action": "remove", "otp_token": "000000x"})
    assert refused.status_code == 400 and mfa.enrolled(User.objects.get(username="alice"))
    TOTPDevice.objects.update(throttling_failure_count=0, throttling_failure_timestamp=None)
    TOTPDevice.objects.update(last_t=-1)  # the code of this step is used; the test reuses it
    removed = client.post("/accounts/mfa/", {"action": "remove", "otp_token": code_for(secret)})
    assert removed.status_code == 302
    assert not mfa.enrolled(User.objects.get(username="alice"))


@pytest.mark.django_db
def test_enrolment_needs_a_sign_in_and_a_real_action(client, demo):
    assert client.get("/accounts/mfa/")["Location"].startswith("/accounts/login/")
    password(client, "alice")
    odd = client.post("/accounts/mfa/", {"action": "remove", "otp_token": "123456"})
    assert odd.status_code == 400 and "Nothing to do" in odd.content.decode()


# --- SPs that require MFA, and assertions after MFA (over HTTP, pysaml2 as the SP) -------


pytestmark_http = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sp(demo, idp_url, tmp_path):
    metadata = Browser(idp_url).get("/saml/metadata/")
    service_provider = ServiceProvider(tmp_path / "sp", metadata.content)
    service_provider.register(tmp_path)
    return service_provider


def require_mfa(sp: ServiceProvider) -> None:
    SPModel.objects.filter(entity_id=sp.entity_id).update(require_mfa=True)
    registered = SPModel.objects.get(entity_id=sp.entity_id)
    registered.save()  # the configuration generation moves: every worker sees it
    cache.refresh()


def csrf(page_text: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page_text).group(1)


def post_code(browser: Browser, page, code: str):
    assert "/accounts/login/code/" in page.url, page.url
    return browser.post(
        "/accounts/login/code/",
        {"csrfmiddlewaretoken": csrf(page.text), "otp_token": code},
        headers={"Referer": page.url},
    )


def assertion_class(sp: ServiceProvider, page, request_id: str) -> str:
    form = parse_post_form(page.text)
    accepted = sp.accept(form["fields"]["SAMLResponse"], request_id)
    return accepted.assertion.authn_statement[0].authn_context.authn_context_class_ref.text


@pytestmark_http
def test_the_assertion_after_a_code_carries_the_mfa_class(sp, idp_url, tom):
    browser = Browser(idp_url)
    request_id, url = sp.redirect_request()
    asked = browser.sign_in_on(browser.get(url), "tom")
    page = post_code(browser, asked, code_for(SECRET))
    assert assertion_class(sp, page, request_id) == ac.MFA


@pytestmark_http
def test_an_sp_that_requires_mfa_never_gets_a_password_only_assertion(sp, idp_url, demo):
    require_mfa(sp)
    browser = Browser(idp_url)
    request_id, url = sp.redirect_request()
    login = browser.get(url)
    assert "asks for a stronger sign-in" in login.text and "sp.example.test" in login.text
    after_password = browser.sign_in_on(login, "alice")
    # No device yet: enrolment, with the sign-on to come back to; no SAMLResponse anywhere.
    assert "/accounts/mfa/" in after_password.url
    assert "SAMLResponse" not in after_password.text
    assert "asks for a stronger sign-in" in after_password.text
    secret = form_value(after_password.text, "totp-secret")
    next_url = lxml.html.fromstring(after_password.text).xpath('//input[@name="next"]/@value')[0]
    confirmed = browser.post(
        "/accounts/mfa/",
        {
            "csrfmiddlewaretoken": csrf(after_password.text),
            "action": "confirm",
            "otp_token": code_for(secret),
            "next": next_url,
        },
        headers={"Referer": after_password.url},
    )
    assert assertion_class(sp, confirmed, request_id) == ac.MFA

    # A password-only session elsewhere gets the code page, not an assertion.
    other = Browser(idp_url)
    other.sign_in("bob")
    request_id, url = sp.redirect_request()
    step_up = other.get(url)
    assert "SAMLResponse" not in step_up.text and "/accounts/mfa/" in step_up.url


@pytestmark_http
def test_a_password_waiting_for_its_code_is_no_session_at_the_sso(sp, idp_url, tom):
    require_mfa(sp)
    browser = Browser(idp_url)
    browser.sign_in_on(browser.get("/accounts/login/"), "tom")  # stops at the code page
    request_id, url = sp.redirect_request(is_passive="true")
    root = parse_post_form(browser.get(url).text)["fields"]["SAMLResponse"]
    assert b"NoPassive" in base64.b64decode(root)


@pytestmark_http
def test_the_portal_steps_up_for_an_sp_that_requires_mfa(demo, idp_url, tom):
    from idp.saml import aws

    SPModel.objects.filter(entity_id=aws.AUDIENCE).update(require_mfa=True)
    SPModel.objects.get(entity_id=aws.AUDIENCE).save()
    cache.refresh()
    browser = Browser(idp_url)
    browser.sign_in("alice")
    page = browser.get(f"/saml/init/?sp={aws.AUDIENCE}")
    assert "/accounts/mfa/" in page.url and "SAMLResponse" not in page.text
    assert "requires a password and a TOTP code" in page.text


@pytest.mark.django_db
def test_a_mint_for_an_mfa_sp_states_mfa_or_is_refused(demo, tom):
    from idp.saml import aws

    SPModel.objects.filter(entity_id=aws.AUDIENCE).update(require_mfa=True)
    cache.refresh()
    with pytest.raises(SamlError) as refused:
        sso.mint("alice", aws.AUDIENCE)
    assert refused.value.status == 403 and "authn_context MFA" in refused.value.hint
    minted = sso.mint("alice", aws.AUDIENCE, authn_context_class="MFA")
    assert f"<saml:AuthnContextClassRef>{ac.MFA}</saml:AuthnContextClassRef>" in minted.xml
