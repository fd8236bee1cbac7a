"""The test clock: IDP_CLOCK_OFFSET and a mint's `now` move the response, the checker and
the audit alike. The system clock is held still (clock.system_now), so nothing races it."""

import base64
import datetime
import io

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from lxml import etree

from idp import clock, conf, faults, identity, sso
from idp.models import AuditEvent
from idp.saml import aws

pytestmark = pytest.mark.django_db

ADMIN = "arn:aws:iam::111122223333:role/Admin"
SYSTEM = datetime.datetime(2030, 6, 1, 12, 0, 0, tzinfo=datetime.UTC)
HOUR = datetime.timedelta(hours=1)


@pytest.fixture(autouse=True)
def still_system_clock(monkeypatch):
    monkeypatch.setattr(clock, "system_now", lambda: SYSTEM)
    faults._last_sent.clear()


def instants(minted: sso.Minted) -> dict[str, str]:
    root = etree.fromstring(base64.b64decode(minted.saml_response))
    conditions = root.find(".//{*}Conditions")
    return {
        "IssueInstant": root.get("IssueInstant"),
        "NotBefore": conditions.get("NotBefore"),
        "NotOnOrAfter": conditions.get("NotOnOrAfter"),
        "SubjectConfirmation": root.find(".//{*}SubjectConfirmationData").get("NotOnOrAfter"),
        "AuthnInstant": root.find(".//{*}AuthnStatement").get("AuthnInstant"),
    }


def stamps(moment: datetime.datetime) -> dict[str, str]:
    def z(t):
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")

    later = z(moment + datetime.timedelta(minutes=5))
    return {
        "IssueInstant": z(moment),
        "NotBefore": z(moment - datetime.timedelta(seconds=30)),
        "NotOnOrAfter": later,
        "SubjectConfirmation": later,
        "AuthnInstant": z(moment),
    }


@pytest.mark.parametrize("offset", [0, -3600, 3600, -86400 * 400])
def test_the_offset_moves_the_response_the_checker_and_the_audit(demo, settings, offset, tmp_path):
    settings.IDP_CLOCK_OFFSET = offset
    shifted = SYSTEM + datetime.timedelta(seconds=offset)
    assert clock.now() == shifted
    minted = sso.mint("alice", aws.AUDIENCE, role_arn=ADMIN)
    assert instants(minted) == stamps(shifted)
    # The checker's doors judge on the same clock: the response is fresh to them.
    assert checked_by_command(minted, tmp_path) == "No findings: AWS should accept this response."
    assert minted.findings == []
    assert AuditEvent.objects.get().created_at == shifted


def test_a_response_from_another_offset_is_judged_by_this_clock(demo, settings, tmp_path):
    settings.IDP_CLOCK_OFFSET = -3600
    minted = sso.mint("alice", aws.AUDIENCE, role_arn=ADMIN)
    settings.IDP_CLOCK_OFFSET = 0
    with pytest.raises(SystemExit):  # the command exits 1 on an error finding
        checked_by_command(minted, tmp_path)
    findings = aws.check_response(minted.saml_response.encode(), now=clock.now())
    assert {f.rule for f in findings} == {"R12"}
    assert any("redeemed within 5 minutes" in f.message for f in findings)


def checked_by_command(minted, tmp_path) -> str:
    """What `check_saml_response` prints: the door that supplies the IdP's clock."""
    saved = tmp_path / "response.b64"
    saved.write_text(minted.saml_response)
    out = io.StringIO()
    call_command("check_saml_response", str(saved), stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


def test_an_explicit_now_stamps_the_response_and_its_findings(demo, settings):
    settings.IDP_CLOCK_OFFSET = 600  # ignored for the response: the caller named its instant
    named = datetime.datetime(2020, 2, 29, 23, 59, 59, tzinfo=datetime.UTC)
    minted = sso.mint("alice", aws.AUDIENCE, role_arn=ADMIN, now=named)
    assert instants(minted) == stamps(named)
    assert minted.findings == []  # judged as of `now`, it is fresh
    assert (
        aws.check_response_with_metadata(
            minted.saml_response.encode(), identity.metadata_xml(), now=named
        )
        == []
    )
    # The event happens on the IdP's clock; the named instant is in its detail.
    event = AuditEvent.objects.get()
    assert event.created_at == SYSTEM + datetime.timedelta(seconds=600)
    assert "Issued as of 2020-02-29T23:59:59Z" in event.detail


def test_a_naive_now_is_utc(demo):
    naive = datetime.datetime(2029, 1, 1, 8, 0, 0)
    minted = sso.mint("alice", aws.AUDIENCE, role_arn=ADMIN, now=naive)
    assert instants(minted)["IssueInstant"] == "2029-01-01T08:00:00Z"


def test_a_browser_login_instant_is_read_on_the_idp_clock(demo, settings, client):
    settings.IDP_CLOCK_OFFSET = -7200
    assert client.login(username="alice", password="alice")
    session = client.session
    login = SYSTEM.timestamp()
    session["fedmock_authn_instant"] = login  # the system time signals.py records
    session.save()
    client.cookies[settings.SESSION_COOKIE_NAME] = session.session_key  # signed cookies
    page = client.get("/saml/init/", {"sp": aws.AUDIENCE, "role": ADMIN})
    assert page.status_code == 200
    event = AuditEvent.objects.get(outcome="sent")
    assert event.created_at == SYSTEM - 2 * HOUR
    form = page.content.decode()
    saml_response = form.split('name="SAMLResponse" value="')[1].split('"')[0]
    root = etree.fromstring(base64.b64decode(saml_response))
    assert root.get("IssueInstant") == "2030-06-01T10:00:00Z"
    assert root.find(".//{*}AuthnStatement").get("AuthnInstant") == "2030-06-01T10:00:00Z"


def test_authn_request_freshness_uses_the_idp_clock(demo, settings):
    from idp.saml import authn_requests

    settings.IDP_CLOCK_OFFSET = 3600
    request = authn_requests.AuthnRequest.__new__(authn_requests.AuthnRequest)
    object.__setattr__(request, "issue_instant", "2030-06-01T12:00:00Z")  # the system's now
    with pytest.raises(Exception, match="not fresh"):
        authn_requests.check_fresh(request, sso._now(), 300)
    settings.IDP_CLOCK_OFFSET = 0
    authn_requests.check_fresh(request, sso._now(), 300)


@pytest.mark.parametrize(("text", "value"), [("", 0), ("-30", -30), ("86400", 86400), (" 5 ", 5)])
def test_the_setting_reads_whole_seconds(text, value):
    assert conf.from_environment({"IDP_CLOCK_OFFSET": text})["IDP_CLOCK_OFFSET"] == value


@pytest.mark.parametrize("text", ["1.5", "ten", "1e9", str(conf.MAX_CLOCK_OFFSET + 1)])
def test_the_setting_refuses_the_rest_in_one_line(text):
    with pytest.raises(ImproperlyConfigured, match="IDP_CLOCK_OFFSET") as refusal:
        conf.from_environment({"IDP_CLOCK_OFFSET": text})
    assert "\n" not in str(refusal.value)
