"""A standing fault profile: the SP under test gets the broken response in its real flows."""

import base64

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from lxml import etree

from idp import cache, faults, sso
from idp.models import AuditEvent, ServiceProvider
from idp.saml import aws
from users.models import User

from .agents import Browser, parse_post_form
from .agents import ServiceProvider as Pysaml2SP

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_process():
    faults._last_sent.clear()
    yield
    faults._last_sent.clear()


@pytest.fixture
def sp(demo, idp_url, tmp_path):
    metadata = Browser(idp_url).get("/saml/metadata/").content
    service_provider = Pysaml2SP(tmp_path / "sp", metadata)
    service_provider.register(tmp_path)
    return service_provider


def set_profile(entity_id: str, scenario: str) -> None:
    row = ServiceProvider.objects.get(entity_id=entity_id)
    row.fault_scenario = scenario
    row.full_clean()
    row.save()
    cache.forget()  # the live server's thread shares this process's caches


def sp_initiated(sp: Pysaml2SP, browser: Browser) -> tuple[str, str]:
    request_id, url = sp.redirect_request()
    page = browser.get(url)
    if "/accounts/login/" in page.url:
        page = browser.sign_in_on(page, "alice")
    return parse_post_form(page.text)["fields"]["SAMLResponse"], request_id


def accepts(sp: Pysaml2SP, saml_response: str, request_id: str) -> bool:
    try:
        return bool(sp.accept(saml_response, request_id))
    except Exception:  # pysaml2 refuses with one exception class per rule
        return False


@pytest.mark.parametrize("scenario", ["expired", "wrong-audience", "unsigned", "wrapping-object"])
def test_a_fault_profile_breaks_the_real_flow_and_removing_it_mends_it(sp, idp_url, scenario):
    browser = Browser(idp_url)
    assert accepts(sp, *sp_initiated(sp, browser))  # the control: the SP takes real responses

    set_profile(sp.entity_id, scenario)
    assert not accepts(sp, *sp_initiated(sp, browser))
    faulted = AuditEvent.objects.filter(outcome="sent").order_by("-created_at").first()
    assert faulted.flow == "sp-initiated"
    assert faulted.detail.startswith(f"FAULT PROFILE {scenario}: ")

    set_profile(sp.entity_id, "")
    assert accepts(sp, *sp_initiated(sp, browser))
    last = AuditEvent.objects.filter(outcome="sent").order_by("-created_at").first()
    assert "FAULT" not in last.detail


def test_a_fault_profile_applies_to_idp_initiated_sign_on(sp, idp_url):
    set_profile(sp.entity_id, "wrong-audience")
    browser = Browser(idp_url)
    browser.sign_in("alice")
    page = browser.get("/saml/init/", params={"sp": sp.entity_id})
    root = etree.fromstring(base64.b64decode(parse_post_form(page.text)["fields"]["SAMLResponse"]))
    assert root.findtext(".//{*}Audience") == "https://wrong-audience.fedmock.invalid/"
    event = AuditEvent.objects.get(outcome="sent")
    assert event.flow == "idp-initiated" and event.detail.startswith("FAULT PROFILE")


# --- The block policy ---------------------------------------------------------------


def aws_sp() -> ServiceProvider:
    return ServiceProvider.objects.get(entity_id=aws.AUDIENCE)


def test_clean_refuses_a_fault_profile_where_the_checks_block(demo):
    row = aws_sp()
    assert row.check_policy == ServiceProvider.CheckPolicy.BLOCK
    row.fault_scenario = "expired"
    with pytest.raises(ValidationError) as refusal:
        row.full_clean()
    assert "warn" in str(refusal.value.message_dict["fault_scenario"])
    row.check_policy = ServiceProvider.CheckPolicy.WARN
    row.full_clean()  # an operator who opts in twice may send broken responses to AWS


@pytest.mark.parametrize("value", ["bogus", "clock-skew:0", "expired:3", "clock-skew:x"])
def test_clean_refuses_what_the_catalogue_does_not_hold(demo, value):
    row = ServiceProvider.objects.exclude(entity_id=aws.AUDIENCE).first() or aws_sp()
    row.check_policy = ServiceProvider.CheckPolicy.WARN
    row.fault_scenario = value
    with pytest.raises(ValidationError) as refusal:
        row.full_clean()
    assert "fault_scenario" in refusal.value.message_dict


def test_a_profile_written_around_clean_still_sends_nothing_to_a_blocking_aws_sp(demo, idp_url):
    ServiceProvider.objects.filter(entity_id=aws.AUDIENCE).update(fault_scenario="expired")
    cache.forget()
    browser = Browser(idp_url)
    browser.sign_in("alice")
    page = browser.get("/saml/init/", params={"sp": aws.AUDIENCE})
    assert page.status_code == 409
    assert "fault profile" in page.text and "SAMLResponse" not in page.text
    assert AuditEvent.objects.get().outcome == "refused"


def test_a_warned_aws_sp_gets_the_broken_response_and_the_audit_says_so(demo, idp_url):
    ServiceProvider.objects.filter(entity_id=aws.AUDIENCE).update(
        fault_scenario="no-role", check_policy="warn"
    )
    cache.forget()
    browser = Browser(idp_url)
    browser.sign_in("alice")
    page = browser.get("/saml/init/", params={"sp": aws.AUDIENCE})
    assert page.status_code == 200
    event = AuditEvent.objects.get(outcome="sent")
    assert event.detail.startswith("FAULT PROFILE no-role")
    assert "R1 error" in event.detail


# --- The admin says it loudly -------------------------------------------------------


def test_the_admin_shows_the_fault_profile(demo):
    User.objects.create_superuser("root", "root@example.com", "root")
    row = aws_sp()
    ServiceProvider.objects.filter(pk=row.pk).update(
        fault_scenario="clock-skew:600", check_policy="warn"
    )
    sso.mint("alice", aws.AUDIENCE)
    client = Client()
    client.force_login(User.objects.get(username="root"))
    listing = client.get("/admin/idp/serviceprovider/").content.decode()
    assert "⚠ BROKEN: clock-skew:600" in listing
    change = client.get(f"/admin/idp/serviceprovider/{row.pk}/change/").content.decode()
    assert 'data-testid="fault-profile-warning"' in change and "clock-skew:600" in change
    audit = client.get("/admin/idp/auditevent/").content.decode()
    assert "⚠ FAULT PROFILE clock-skew:600<" in audit  # the value too, not cut at its colon

    ServiceProvider.objects.filter(pk=row.pk).update(fault_scenario="")
    change = client.get(f"/admin/idp/serviceprovider/{row.pk}/change/").content.decode()
    assert "fault-profile-warning" not in change
