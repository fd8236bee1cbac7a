"""Review of issue 12's RequestedAuthnContext and TOTP step: defects found, each pinned.

Codes are computed for the step that contains now (django-otp accepts one step either
side); no test sleeps or waits on django-otp's throttle."""

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from idp import authn_context as ac
from idp import cache, mfa
from idp.broker import sts as broker_sts
from idp.models import ServiceProvider as SPModel
from idp.saml import aws
from idp.signals import AUTHN_CLASS
from users.models import User

from .agents import Browser, ServiceProvider
from .test_issue12_mfa import SECRET, code_for, password, submit_code

ADMIN_ROLE = "arn:aws:iam::111122223333:role/Admin"


@pytest.fixture
def tom(demo):
    user = User.objects.create_user("tom", "tom@example.com", "tom")
    mfa.provision(user, mfa.secret_from_base32(SECRET))
    cache.refresh()
    return user


# --- one-time codes are one-time, even for two requests at once ----------------------


@pytest.mark.django_db
def test_two_requests_that_loaded_the_device_cannot_both_spend_one_code(tom):
    # Two workers each read the device (the code page does, before checking), then both
    # check the same code: django-otp's verify_token saves last_t without a lock.
    first, second = mfa.confirmed_device(tom), mfa.confirmed_device(tom)
    code = code_for(SECRET)
    assert mfa.check_code(first, code).ok
    replayed = mfa.check_code(second, code)
    assert not replayed.ok and "already used" in replayed.problem


# --- the broker: no role of an SP that requires MFA without MFA -----------------------


@pytest.fixture
def aws_requires_mfa(demo):
    SPModel.objects.filter(entity_id=aws.AUDIENCE).update(require_mfa=True)
    SPModel.objects.get(entity_id=aws.AUDIENCE).save()
    cache.refresh()


@pytest.fixture
def sts_reached(monkeypatch):
    calls = []

    def assume_role(role_arn, *args, **kwargs):
        calls.append(role_arn)
        raise broker_sts.BrokerError("STS reached", "stub", "none", status=502)

    monkeypatch.setattr(broker_sts, "assume_role", assume_role)
    return calls


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/broker/console/", "/broker/credentials/"])
def test_the_broker_refuses_a_password_session_the_roles_of_an_mfa_sp(
    client, aws_requires_mfa, sts_reached, path
):
    assert password(client, "alice").status_code == 302
    assert client.session[AUTHN_CLASS] == ac.PASSWORD_PROTECTED_TRANSPORT
    refused = client.post(path, {"role": ADMIN_ROLE})
    assert refused.status_code == 403, refused.content.decode()[:500]
    page = refused.content.decode()
    assert "multi-factor" in page and "/accounts/mfa/" in page
    assert sts_reached == []


@pytest.mark.django_db
def test_the_broker_serves_an_mfa_session_the_roles_of_an_mfa_sp(
    client, aws_requires_mfa, sts_reached
):
    alice = User.objects.get(username="alice")
    mfa.provision(alice, mfa.secret_from_base32(SECRET))
    password(client, "alice")
    assert submit_code(client, code_for(SECRET)).status_code == 302
    assert client.session[AUTHN_CLASS] == ac.MFA
    answer = client.post("/broker/console/", {"role": ADMIN_ROLE})
    assert "STS reached" in answer.content.decode()
    assert sts_reached == [ADMIN_ROLE]


# --- a step-up asks for the least that meets the request -----------------------------


def test_a_picked_session_asked_for_a_password_steps_up_to_a_password_not_enrolment():
    requested = ac.Requested(ac.Comparison.MINIMUM, (ac.PASSWORD_PROTECTED_TRANSPORT,))
    decision = ac.decide(
        requested, ac.UNSPECIFIED, frozenset({ac.PASSWORD_PROTECTED_TRANSPORT, ac.MFA})
    )
    assert decision == ac.StepUp(decision.reason, ac.PASSWORD_PROTECTED_TRANSPORT)


@pytest.mark.django_db(transaction=True)
def test_a_picked_session_is_sent_to_the_password_form_not_to_enrol(
    demo, idp_url, tmp_path, settings
):
    from saml2.saml import AuthnContextClassRef
    from saml2.samlp import RequestedAuthnContext

    from idp.conf import idp_settings

    settings.IDP_LOGIN_MODE = "picker"
    assert idp_settings.IDP_LOGIN_MODE == "picker"
    sp = ServiceProvider(tmp_path / "sp", Browser(idp_url).get("/saml/metadata/").content)
    sp.register(tmp_path)
    browser = Browser(idp_url)
    page = browser.get("/accounts/login/")
    token = page.text.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    browser.post("/accounts/pick/", {"csrfmiddlewaretoken": token, "username": "bob"})
    ask = RequestedAuthnContext(
        comparison="minimum",
        authn_context_class_ref=[AuthnContextClassRef(text=ac.PASSWORD_PROTECTED_TRANSPORT)],
    )
    _, url = sp.redirect_request(requested_authn_context=ask)
    step_up = browser.get(url)
    assert "/accounts/login/" in step_up.url, step_up.url
    assert not TOTPDevice.objects.filter(user__username="bob").exists()  # nothing enrolled


# --- the TOTP secrets stay out of the admin -----------------------------------------


@pytest.mark.django_db
def test_the_admin_never_shows_a_totp_secret(client, tom):
    admin = User.objects.create_superuser("root", "root@example.com", "root")
    client.force_login(admin)
    device = mfa.confirmed_device(tom)
    change = client.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/")
    assert change.status_code == 200
    assert device.key not in change.content.decode()
    for view in ("config", "qrcode"):
        shown = client.get(f"/admin/otp_totp/totpdevice/{device.pk}/{view}/")
        assert shown.status_code == 403
        assert device.key not in shown.content.decode()


# --- the admin's own password form ----------------------------------------------------


@pytest.mark.django_db
def test_the_admin_login_form_gives_an_enrolled_user_no_password_only_session(client, tom):
    User.objects.filter(pk=tom.pk).update(is_staff=True, is_superuser=True)
    refused = client.post(
        "/admin/login/?next=/admin/", {"username": "tom", "password": "tom", "next": "/admin/"}
    )
    assert refused.status_code == 200
    assert "TOTP second factor" in refused.content.decode()
    assert "_auth_user_id" not in client.session
    # The way it points to: the password, then the code, and back to the admin.
    assert password(client, "tom", next_url="/admin/")["Location"] == "/accounts/login/code/"
    signed_in = submit_code(client, code_for(SECRET))
    assert signed_in["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert client.session[AUTHN_CLASS] == ac.MFA


# --- ECP (a password alone) does not clear the count of wrong codes --------------------


@pytest.mark.django_db
def test_a_password_at_the_ecp_door_does_not_clear_the_wrong_codes_count(client, demo):
    from django.test import Client

    from .test_ecp import envelope
    from .test_ecp import post as ecp_post
    from .test_issue12_mfa import wrong_code

    mfa.provision(User.objects.get(username="alice"), mfa.secret_from_base32(SECRET))
    address = "10.0.0.1"
    password(client, "alice", address=address)
    wrong = wrong_code(SECRET)
    for _ in range(4):
        assert submit_code(client, wrong, address=address).status_code == 400
        TOTPDevice.objects.update(throttling_failure_count=0, throttling_failure_timestamp=None)
    # The password alone, over ECP, from the same address: it must not reset the lockout,
    # or four guesses, one ECP call, four more guesses... would never lock.
    assert ecp_post(Client(), envelope(), address=address).status_code == 200
    assert submit_code(client, wrong, address=address).status_code == 429


# --- the preview shows what an SP that requires MFA would get ---------------------------


@pytest.mark.django_db
def test_the_preview_of_an_mfa_sp_states_the_mfa_class_it_would_get(aws_requires_mfa):
    from idp import sso

    preview = sso.preview(
        User.objects.get(username="alice"), SPModel.objects.get(entity_id=aws.AUDIENCE)
    )
    assert f"<saml:AuthnContextClassRef>{ac.MFA}</saml:AuthnContextClassRef>" in preview.xml
    assert ac.PASSWORD_PROTECTED_TRANSPORT not in preview.xml
