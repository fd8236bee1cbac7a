"""Issue 12 review of single logout: what a hostile sender can end, and how."""

import datetime
from unittest import mock
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from django.test import Client
from lxml import etree

from idp import clock, participants, slo
from idp.models import LogoutRound, RevokedSession
from idp.saml import bindings, logout, signing
from idp.saml import constants as c
from idp.signals import SESSION_INDEX

from . import test_issue12_slo as slo_tests
from .test_issue12_slo import SLO, SP1, SP2, issued_name_id, logout_request, redirect_query, sign_on

sps, sp_key = slo_tests.sps, slo_tests.sp_key  # the SLO tests' fixtures


def answer_to_sp1(response) -> logout.LogoutResponse:
    """Follow the IdP's redirects to the LogoutResponse it sends SP 1."""
    client = Client()
    while urlsplit(response["Location"]).netloc in ("", "testserver"):
        response = client.get(response["Location"])
        assert response.status_code in (302, 303), response.content[:300]
    assert urlsplit(response["Location"]).netloc == "sp1.example.test"  # no other SP asked
    query = {k: v[0] for k, v in parse_qs(urlsplit(response["Location"]).query).items()}
    return logout.parse_response(bindings.decode_redirect(query["SAMLResponse"], "SAMLResponse"))


@pytest.mark.parametrize("names_session_index", [False, True])
def test_an_unsigned_logout_request_from_another_browser_ends_no_session(
    client, sps, names_session_index
):
    """Anyone can write an unsigned LogoutRequest: it may end the session of the browser
    that brings it, never one found by NameID (an email address is no secret) or by a
    SessionIndex that every SP of the session has seen."""
    index = sign_on(client, SP1, SP2)
    forged = logout_request(issued_name_id(index, SP1), index if names_session_index else "")

    response = Client().get(f"/saml/slo/?{redirect_query(forged)}")  # no IdP cookie

    assert response.status_code == 303
    answer = answer_to_sp1(response)
    assert not RevokedSession.objects.filter(session_index=index).exists()
    assert client.get("/saml/init/", {"sp": SP2}).status_code == 200  # still signed in
    # The SP is told that the IdP session it named lives on, not a plain Success.
    assert answer.succeeded and answer.sub_status == logout.STATUS_PARTIAL_LOGOUT


def test_an_unsigned_logout_request_in_another_users_browser_ends_neither_session(client, sps):
    alice = sign_on(client, SP1)
    bob_browser = Client()
    bob = sign_on(bob_browser, SP1, username="bob")
    forged = logout_request(issued_name_id(alice, SP1), alice)

    answer_to_sp1(bob_browser.get(f"/saml/slo/?{redirect_query(forged)}"))

    assert not RevokedSession.objects.filter(session_index__in=[alice, bob]).exists()


def test_a_signed_logout_request_from_another_browser_still_ends_the_named_session(
    client, sps, sp_key
):
    index = sign_on(client, SP1, SP2)
    signed = redirect_query(logout_request(issued_name_id(index, SP1)), key=sp_key)

    answer_to_sp1_or_sp2 = Client().get(f"/saml/slo/?{signed}")

    assert answer_to_sp1_or_sp2.status_code == 303
    assert RevokedSession.objects.filter(session_index=index).exists()


def test_an_unsigned_logout_request_ends_the_session_of_the_browser_that_brings_it(client, sps):
    index = sign_on(client, SP1)
    request = logout_request(issued_name_id(index, SP1))

    answer = answer_to_sp1(client.get(f"/saml/slo/?{redirect_query(request)}"))

    assert RevokedSession.objects.filter(session_index=index).exists()
    assert answer.succeeded and answer.sub_status == ""


def sign_in_again(client, username="alice"):
    """A second password login in the same browser (ForceAuthn, a step-up): the login page."""
    response = client.post("/accounts/login/", {"username": username, "password": username})
    assert response.status_code == 302, response.content[:300]


def test_a_logout_after_signing_in_again_ends_the_browsers_session_and_reaches_every_sp(
    client, sps, sp_key
):
    first = sign_on(client, SP1)
    sign_in_again(client)
    assert client.get("/saml/init/", {"sp": SP2}).status_code == 200
    # SP 1 asks with the SessionIndex of the assertion it got, signed.
    request = logout_request(issued_name_id(first, SP1), first)

    to_sp2 = client.get(client.get(f"/saml/slo/?{redirect_query(request, key=sp_key)}")["Location"])

    assert urlsplit(to_sp2["Location"]).netloc == "sp2.example.test"  # SP 2 is told too
    assert client.get("/saml/init/", {"sp": SP2}).status_code == 302  # to the login page


def test_the_portal_sign_out_after_signing_in_again_names_each_sps_own_session_index(client, sps):
    first = sign_on(client, SP1)
    sign_in_again(client)
    assert client.get("/saml/init/", {"sp": SP2}).status_code == 200
    continue_url = client.post("/accounts/logout/")["Location"]

    sent = {}
    for _ in range(2):
        location = urlsplit(client.get(continue_url)["Location"])
        query = {k: v[0] for k, v in parse_qs(location.query).items()}
        sent[location.netloc] = logout.parse_request(bindings.decode_redirect(query["SAMLRequest"]))
    assert sent["sp1.example.test"].session_indexes == (first,)  # as in SP 1's assertion
    assert client.get("/saml/init/", {"sp": SP1}).status_code == 302


@pytest.fixture(scope="module")
def other_key(key_pems):
    key_pem, cert_pem = signing.generate_self_signed("not the SP's key")
    return signing.load_key(key_pem, cert_pem)


@pytest.mark.parametrize(
    "case", ["redirect-wrong-key", "post-wrong-key", "post-tampered", "post-unsigned-required"]
)
def test_a_logout_response_whose_signature_does_not_verify_is_refused(
    client, sps, sp_key, other_key, case
):
    sent, query = slo_tests.sent_to_sp2(client, sps)
    answer = logout.build_response(logout.new_id(), SP2, SLO, sent.id, clock.now())
    if case == "redirect-wrong-key":
        response = client.get(
            f"/saml/slo/?{redirect_query(answer, 'SAMLResponse', query['RelayState'], other_key)}"
        )
    else:
        if case == "post-unsigned-required":
            slo_tests.change(SP2, require_signed_requests=True)
        else:
            signing.sign_element(answer, other_key if case == "post-wrong-key" else sp_key)
        body = etree.tostring(answer)
        if case == "post-tampered":  # the signed Success made a Responder failure
            body = body.replace(c.STATUS_SUCCESS.encode(), c.STATUS_RESPONDER.encode())
        response = client.post(
            "/saml/slo/",
            {"SAMLResponse": bindings.encode_post(body), "RelayState": query["RelayState"]},
        )

    assert 400 <= response.status_code < 500, response.content[:300]
    assert "How to fix it" in response.content.decode()
    (round_,) = LogoutRound.objects.all()
    assert [p["state"] for p in round_.participants] == [slo.SENT]  # still waiting


def test_a_signed_logout_response_over_post_is_recorded(client, sps, sp_key):
    """The refusals above are for the signatures, not for posting a LogoutResponse at all."""
    sent, query = slo_tests.sent_to_sp2(client, sps)
    answer = logout.build_response(logout.new_id(), SP2, SLO, sent.id, clock.now())
    signing.sign_element(answer, sp_key)
    body = bindings.encode_post(etree.tostring(answer))

    response = client.post("/saml/slo/", {"SAMLResponse": body, "RelayState": query["RelayState"]})

    assert response.status_code == 303
    (round_,) = LogoutRound.objects.all()
    assert [p["state"] for p in round_.participants] == [slo.LOGGED_OUT]


TWICE = {
    "Issuer": f"<saml:Issuer>{SP1}</saml:Issuer><saml:Issuer><saml:x/></saml:Issuer>",
    "Issuer (both plain)": f"<saml:Issuer>{SP1}</saml:Issuer><saml:Issuer>{SP2}</saml:Issuer>",
    "NameID": "<saml:NameID>someone</saml:NameID><saml:NameID>someone-else</saml:NameID>",
}


@pytest.mark.parametrize(
    "kind, twice",
    [("request", twice) for twice in TWICE]
    + [("response", twice) for twice in TWICE if twice != "NameID"],
)
def test_a_message_with_a_repeated_single_element_is_refused_not_a_500(client, sps, kind, twice):
    """The schema allows one Issuer (and one NameID): with two, this IdP's checks and
    pysaml2's reading (the last one) would judge different elements."""
    namespaces = f'xmlns:samlp="{c.SAMLP}" xmlns:saml="{c.SAML}"'
    head = f'ID="_a" Version="2.0" IssueInstant="{clock.now():%Y-%m-%dT%H:%M:%SZ}"'
    issuer = f"<saml:Issuer>{SP1}</saml:Issuer>"
    if kind == "request":
        name_id = "<saml:NameID>someone</saml:NameID>"
        body = TWICE[twice] if twice != "NameID" else issuer + TWICE[twice]
        body += name_id if twice != "NameID" else ""
        document = f"<samlp:LogoutRequest {namespaces} {head}>{body}</samlp:LogoutRequest>"
        field = "SAMLRequest"
    else:
        status = f'<samlp:Status><samlp:StatusCode Value="{c.STATUS_SUCCESS}"/></samlp:Status>'
        document = (
            f'<samlp:LogoutResponse {namespaces} {head} InResponseTo="_x">'
            f"{TWICE[twice]}{status}</samlp:LogoutResponse>"
        )
        field = "SAMLResponse"
    response = client.get("/saml/slo/", {field: bindings.encode_redirect(document.encode())})

    assert response.status_code == 400, response.content[:300]
    assert "How to fix it" in response.content.decode()


def test_ending_a_session_in_the_admin_is_csrf_checked(client, sps):
    index = sign_on(client, SP1)
    participants.flush()
    ender = Client(enforce_csrf_checks=True)
    ender.force_login(slo_tests.staff("ender", "idp.view_spsession", "idp.end_session"))

    response = ender.post("/admin/idp/spsession/end/", {"session_index": index})

    assert response.status_code == 403
    assert not RevokedSession.objects.filter(session_index=index).exists()


def test_the_cookie_copy_of_the_participants_stays_small_whatever_the_entity_ids(
    client, sps, settings
):
    """A browser drops a cookie over 4096 bytes (and with it the sign-in, or the pending
    TOTP step): the copy kept for single logout must leave the session room."""
    import secrets

    from idp.models import AssertionConsumerService, ServiceProvider

    client.login(username="alice", password="alice")
    for number in range(25):
        entity_id = f"https://sp{number}.example.test/{secrets.token_urlsafe(150)}"
        sp = ServiceProvider.objects.create(name=f"long {number}", entity_id=entity_id)
        AssertionConsumerService.objects.create(
            service_provider=sp, location=f"https://sp{number}.example.test/acs"
        )
        assert client.get("/saml/init/", {"sp": entity_id}).status_code == 200

    assert len(client.cookies[settings.SESSION_COOKIE_NAME].value) < 2500
    newest = participants.from_cookie(client.session)[-1]
    assert newest.sp_entity_id == entity_id  # the newest are the ones kept


def test_signing_in_again_over_a_revoked_session_this_worker_has_not_heard_of_starts_anew(
    client, sps
):
    from unittest import mock

    from idp import sessions

    first = sign_on(client, SP1)
    RevokedSession.objects.create(  # by another worker: this one's set does not know yet
        session_index=first,
        username="alice",
        revoked_at=clock.system_now(),
        expires_at=clock.system_now() + datetime.timedelta(days=1),
    )
    with mock.patch.object(sessions._RevokedSet, "__contains__", return_value=False):
        sign_in_again(client)

    assert client.session[SESSION_INDEX] != first


@pytest.mark.parametrize("binding", ["redirect", "post"])
def test_a_relay_state_with_a_nul_is_refused_before_it_reaches_the_database(client, sps, binding):
    """The round stores the SP's RelayState: PostgreSQL's text and jsonb take no NUL (a 500)."""
    index = sign_on(client, SP1, SP2)
    request = logout_request(issued_name_id(index, SP1), index)
    relay_state = "a\x00b"
    if binding == "redirect":
        response = client.get(f"/saml/slo/?{redirect_query(request, relay_state=relay_state)}")
    else:
        encoded = bindings.encode_post(etree.tostring(request))
        response = client.post("/saml/slo/", {"SAMLRequest": encoded, "RelayState": relay_state})

    assert response.status_code == 400, response.content[:300]
    assert "RelayState" in response.content.decode()
    assert not LogoutRound.objects.exists()
    assert not RevokedSession.objects.filter(session_index=index).exists()


@pytest.mark.parametrize(
    "url",
    [
        "/saml/slo/continue/a%00b/",  # a round id is token_urlsafe: never a NUL
        "/saml/slo/?SAMLResponse={answer}&RelayState=a%00b",
    ],
)
def test_a_malformed_round_id_is_a_404_without_touching_the_database(
    client, sps, django_assert_num_queries, url
):
    """PostgreSQL refuses a NUL in a query parameter (ValueError, a 500): the id is checked
    for the shape this IdP gives it first."""
    answer = logout.build_response(logout.new_id(), SP2, SLO, "_x", clock.now())
    url = url.format(answer=quote(bindings.encode_redirect(etree.tostring(answer))))
    with mock.patch("idp.audit.record"), django_assert_num_queries(0):
        response = client.get(url)

    assert response.status_code == 404
    assert "How to fix it" in response.content.decode()


def test_the_session_admin_takes_a_nul_without_a_500(client, sps):
    """PostgreSQL refuses a NUL in a query parameter (DataError: a 500 there; run the suite
    with DATABASE_URL=postgres://… to see this test fail without the check)."""
    index = sign_on(client, SP1)
    participants.flush()
    ender = Client()
    ender.force_login(slo_tests.staff("ender", "idp.view_spsession", "idp.end_session"))

    page = ender.get("/admin/idp/spsession/user/alice%00/")
    ended = ender.post("/admin/idp/spsession/end/", {"session_index": index + "\x00"})

    assert page.status_code == 200 and "No open IdP session" in page.content.decode()
    assert ended.status_code == 302 and ended["Location"] == "/admin/idp/spsession/"
    assert not RevokedSession.objects.filter(session_index=index).exists()


def test_a_sign_on_again_to_the_last_sp_leaves_the_cookie_unwritten():
    """The cookie copy is written only when it changes: no cookie is re-signed per sign-on."""
    from django.contrib.sessions.backends.signed_cookies import SessionStore

    session = SessionStore()
    session[SESSION_INDEX] = "_index"
    participant = participants.Participant("_index", "alice", SP1, "name-id")
    for expect_write in (True, False):
        session.modified = False
        participants._recorded.participants = [participant]
        participants.keep_in_session(session)
        assert session.modified is expect_write
    assert participants.from_cookie(session, "alice") == [participant]
