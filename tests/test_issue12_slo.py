"""Single logout through Django's test client: metadata, import, hostile messages, the admin."""

import base64
import datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import Permission
from lxml import etree

from idp import clock, identity, participants, slo
from idp.models import (
    AssertionConsumerService,
    AuditEvent,
    LogoutRound,
    RevokedSession,
    ServiceProvider,
    SingleLogoutService,
    SpSession,
)
from idp.registry import register_from_metadata
from idp.saml import bindings, logout, signing
from idp.saml import constants as c
from idp.saml.errors import SamlError
from idp.saml.release import NameID
from idp.signals import SESSION_INDEX
from users.models import User

MD = f"{{{c.MD}}}"
SP1 = "https://sp1.example.test/metadata"
SP2 = "https://sp2.example.test/metadata"
SLO = "http://testserver/saml/slo/"


@pytest.fixture(scope="module")
def sp_key(key_pems):
    key_pem, cert_pem = signing.generate_self_signed("slo test SP")
    return signing.load_key(key_pem, cert_pem)


@pytest.fixture
def sps(demo, settings, sp_key):
    settings.IDP_BASE_URL = "http://testserver"
    made = []
    for entity_id, host in ((SP1, "sp1"), (SP2, "sp2")):
        sp = ServiceProvider.objects.create(
            name=host, entity_id=entity_id, request_certificate=sp_key.cert_pem
        )
        AssertionConsumerService.objects.create(
            service_provider=sp, location=f"https://{host}.example.test/acs"
        )
        SingleLogoutService.objects.create(
            service_provider=sp, location=f"https://{host}.example.test/slo"
        )
        made.append(sp)
    return made


def sign_on(client, *entity_ids, username="alice"):
    client.login(username=username, password=username)
    for entity_id in entity_ids:
        assert client.get("/saml/init/", {"sp": entity_id}).status_code == 200
    return client.session[SESSION_INDEX]


def issued_name_id(session_index: str, entity_id: str) -> NameID:
    (found,) = [p for p in participants.for_session(session_index) if p.sp_entity_id == entity_id]
    return NameID(found.name_id, found.name_id_format, found.sp_name_qualifier)


def logout_request(name_id, session_index="", *, issuer=SP1, destination=SLO, now=None, **kw):
    return logout.build_request(
        kw.get("message_id", logout.new_id()),
        issuer,
        destination,
        name_id,
        session_index,
        now or clock.now(),
    )


def xml(root) -> bytes:
    return etree.tostring(root)


def redirect_query(root, field="SAMLRequest", relay_state="", key=None) -> str:
    url = bindings.redirect_url(SLO, field, xml(root), relay_state, key, c.SIG_RSA_SHA256)
    return urlsplit(url).query


def refused(response, status=400) -> str:
    assert response.status_code == status, response.content[:500]
    text = response.content.decode()
    assert "How to fix it" in text
    return text


# --- metadata and import ------------------------------------------------------------------


def test_the_idp_metadata_lists_slo_for_both_bindings_before_nameid_format(client, demo):
    root = etree.fromstring(client.get("/saml/metadata/").content)
    descriptor = root.find(f"{MD}IDPSSODescriptor")
    services = descriptor.findall(f"{MD}SingleLogoutService")
    assert {s.get("Binding") for s in services} == {c.BINDING_REDIRECT, c.BINDING_POST}
    assert all(s.get("Location") == identity.slo_url() for s in services)
    order = [etree.QName(child).localname for child in descriptor]
    # SSODescriptorType: SingleLogoutService, then NameIDFormat, then SingleSignOnService.
    assert max(i for i, n in enumerate(order) if n == "SingleLogoutService") < order.index(
        "NameIDFormat"
    )
    assert order.index("NameIDFormat") < order.index("SingleSignOnService")
    assert len(services) == 2


SP_METADATA = """<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"
  entityID="https://imported.example.test/sp"><md:SPSSODescriptor
  protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">{slo}
  <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
    Location="https://imported.example.test/acs" index="0"/>
</md:SPSSODescriptor></md:EntityDescriptor>"""


def slo_element(binding: str, location: str, response_location: str = "") -> str:
    extra = f' ResponseLocation="{response_location}"' if response_location else ""
    return (
        f'<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:{binding}" '
        f'Location="{location}"{extra}/>'
    )


def test_sp_metadata_import_stores_redirect_and_post_slo_and_skips_soap(db):
    sp, _ = register_from_metadata(
        SP_METADATA.format(
            slo=slo_element("SOAP", "https://imported.example.test/soap")
            + slo_element("HTTP-Redirect", "https://imported.example.test/slo")
            + slo_element(
                "HTTP-POST", "https://imported.example.test/slo-post", "https://x.example/r"
            )
        ).encode()
    )
    stored = list(sp.logout_endpoints.values_list("binding", "location", "response_location"))
    assert stored == [
        (c.BINDING_REDIRECT, "https://imported.example.test/slo", ""),
        (c.BINDING_POST, "https://imported.example.test/slo-post", "https://x.example/r"),
    ]
    # A re-import replaces the list.
    register_from_metadata(SP_METADATA.format(slo="").encode())
    assert not sp.logout_endpoints.exists()


@pytest.mark.parametrize(
    "location",
    ["javascript:alert(1)", "https://sp.example:0/slo", "/relative/slo", "https://a b.example/"],
)
def test_an_slo_location_is_checked_as_acs_locations_are(db, location):
    with pytest.raises(SamlError, match="SingleLogoutService"):
        register_from_metadata(
            SP_METADATA.format(slo=slo_element("HTTP-Redirect", location)).encode()
        )
    assert not ServiceProvider.objects.filter(entity_id="https://imported.example.test/sp")


# --- the pure protocol ----------------------------------------------------------------------

NOW = datetime.datetime(2026, 11, 21, 12, 0, tzinfo=datetime.UTC)


def test_a_built_logout_response_parses_with_partial_logout():
    root = logout.build_response(
        "_r1", "https://idp", SLO, "_req", NOW, sub_status=logout.STATUS_PARTIAL_LOGOUT
    )
    parsed = logout.parse_response(xml(root))
    assert (parsed.in_response_to, parsed.status, parsed.sub_status) == (
        "_req",
        c.STATUS_SUCCESS,
        logout.STATUS_PARTIAL_LOGOUT,
    )
    assert parsed.succeeded and not parsed.is_signed


def test_a_built_logout_request_round_trips():
    name_id = NameID("abc", c.NAMEID_PERSISTENT, "https://sp")
    parsed = logout.parse_request(xml(logout.build_request("_q", SP1, SLO, name_id, "_s", NOW)))
    assert parsed.name_id == name_id and parsed.session_indexes == ("_s",)
    assert parsed.not_on_or_after == NOW + datetime.timedelta(minutes=5)
    assert parsed.issue_instant == NOW and parsed.destination == SLO


def test_a_signed_redirect_url_verifies_over_the_raw_query(sp_key):
    root = logout.build_request("_q", SP1, SLO, NameID("abc", c.NAMEID_PERSISTENT), "", NOW)
    url = bindings.redirect_url(
        "https://sp/slo?x=1", "SAMLRequest", xml(root), "state=1&", sp_key, c.SIG_RSA_SHA256
    )
    assert url.startswith("https://sp/slo?x=1&SAMLRequest=")
    fields, octets = bindings.redirect_parameters(urlsplit(url).query)
    assert fields["RelayState"] == "state=1&"
    signing.verify_detached(octets, fields["Signature"], fields["SigAlg"], sp_key.cert_pem)
    with pytest.raises(SamlError):
        signing.verify_detached(
            octets.replace(b"state", b"stat3"),
            fields["Signature"],
            fields["SigAlg"],
            sp_key.cert_pem,
        )


@pytest.mark.parametrize(
    "document, title",
    [
        (b"<x/>", "not a LogoutRequest"),
        (
            b'<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
            b'Version="1.1" ID="_a"/>',
            "Unsupported SAML version",
        ),
        (
            b'<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
            b'Version="2.0"/>',
            "no usable ID",
        ),
        (
            b'<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
            b'Version="2.0" ID="_a"/>',
            "no usable Issuer",
        ),
        (
            b'<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
            b'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" Version="2.0" ID="_a" '
            b'IssueInstant="2026-11-21T12:00:00Z"><saml:Issuer>x</saml:Issuer>'
            b"</samlp:LogoutRequest>",
            "names no user",
        ),
        (
            b'<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
            b'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" Version="2.0" ID="_a" '
            b'IssueInstant="yesterday"><saml:Issuer>x</saml:Issuer><saml:NameID>u</saml:NameID>'
            b"</samlp:LogoutRequest>",
            "not a valid xs:dateTime",
        ),
        (b'<!DOCTYPE x [<!ENTITY e "e">]><x>&e;</x>', "DOCTYPE"),
    ],
)
def test_malformed_logout_requests_are_refused_with_a_title(document, title):
    with pytest.raises(SamlError, match=title):
        logout.parse_request(document)


# --- SP-initiated through the test client ---------------------------------------------------


def test_an_unsigned_redirect_logout_ends_the_session_and_reaches_the_other_sp(client, sps):
    index = sign_on(client, SP1, SP2)
    request = logout_request(issued_name_id(index, SP1), index)

    response = client.get(f"/saml/slo/?{redirect_query(request, relay_state='back')}")
    assert response.status_code == 303
    to_sp2 = client.get(response["Location"])
    assert to_sp2.status_code == 302
    sent = urlsplit(to_sp2["Location"])
    assert sent.netloc == "sp2.example.test"
    query = {k: v[0] for k, v in parse_qs(sent.query).items()}
    assert "Signature" in query  # sign_response is on: logout messages are signed too
    fields, octets = bindings.redirect_parameters(sent.query)
    signing.verify_detached(octets, fields["Signature"], fields["SigAlg"], _idp_cert())
    sent_request = logout.parse_request(bindings.decode_redirect(query["SAMLRequest"]))
    assert sent_request.name_id == issued_name_id_from_db(index, SP2)
    assert sent_request.session_indexes == (index,)
    assert RevokedSession.objects.filter(session_index=index).exists()
    assert client.get("/saml/init/", {"sp": SP1}).status_code == 302  # to the login page

    # SP 2 answers Success; SP 1 then gets its LogoutResponse, with its RelayState.
    answer = logout.build_response(logout.new_id(), SP2, SLO, sent_request.id, clock.now())
    back = client.get(f"/saml/slo/?{redirect_query(answer, 'SAMLResponse', query['RelayState'])}")
    assert back.status_code == 303
    final = client.get(back["Location"])
    final_query = {k: v[0] for k, v in parse_qs(urlsplit(final["Location"]).query).items()}
    assert final["Location"].startswith("https://sp1.example.test/slo?")
    assert final_query["RelayState"] == "back"
    response_xml = bindings.decode_redirect(final_query["SAMLResponse"], "SAMLResponse")
    parsed = logout.parse_response(response_xml)
    assert parsed.in_response_to == request.get("ID") and parsed.succeeded
    assert parsed.sub_status == ""

    # The same LogoutResponse again: nothing is waiting for it.
    replay = client.get(f"/saml/slo/?{redirect_query(answer, 'SAMLResponse', query['RelayState'])}")
    assert replay.status_code in (400, 404)


def _idp_cert() -> str:
    from idp import keys

    return keys.active_key().cert_pem


def issued_name_id_from_db(index, entity_id) -> NameID:
    row = SpSession.objects.get(session_index=index, sp_entity_id=entity_id)
    return NameID(row.name_id, row.name_id_format, row.sp_name_qualifier)


def test_an_sp_that_answers_failure_makes_the_logout_partial(client, sps):
    index = sign_on(client, SP1, SP2)
    request = logout_request(issued_name_id(index, SP1), index)
    to_sp2 = client.get(client.get(f"/saml/slo/?{redirect_query(request)}")["Location"])
    query = {k: v[0] for k, v in parse_qs(urlsplit(to_sp2["Location"]).query).items()}
    sent = logout.parse_request(bindings.decode_redirect(query["SAMLRequest"]))
    answer = logout.build_response(
        logout.new_id(), SP2, SLO, sent.id, clock.now(), status=c.STATUS_RESPONDER
    )
    back = client.get(f"/saml/slo/?{redirect_query(answer, 'SAMLResponse', query['RelayState'])}")
    final = client.get(back["Location"])
    final_query = {k: v[0] for k, v in parse_qs(urlsplit(final["Location"]).query).items()}
    parsed = logout.parse_response(
        bindings.decode_redirect(final_query["SAMLResponse"], "SAMLResponse")
    )
    assert parsed.succeeded and parsed.sub_status == logout.STATUS_PARTIAL_LOGOUT


def test_a_logout_request_over_post_resumes_on_a_get_that_sees_the_cookie(client, sps, sp_key):
    index = sign_on(client, SP1)
    request = logout_request(issued_name_id(index, SP1), "")  # no SessionIndex: the cookie's
    signing.sign_element(request, sp_key)
    response = client.post("/saml/slo/", {"SAMLRequest": bindings.encode_post(xml(request))})
    assert response.status_code == 303 and "/saml/slo/resume/" in response["Location"]
    assert not RevokedSession.objects.filter(session_index=index).exists()  # not yet
    done = client.get(client.get(response["Location"])["Location"])
    assert done["Location"].startswith("https://sp1.example.test/slo?SAMLResponse=")
    assert RevokedSession.objects.filter(session_index=index).exists()
    # The resume link is one-time: the LogoutRequest was acted on.
    refused(client.get(response["Location"]))


def test_an_aws_participant_is_skipped_and_said_so(client, sps):
    index = sign_on(client, SP1, "urn:amazon:webservices")
    request = logout_request(issued_name_id(index, SP1), index)
    final = client.get(client.get(f"/saml/slo/?{redirect_query(request)}")["Location"])
    query = {k: v[0] for k, v in parse_qs(urlsplit(final["Location"]).query).items()}
    parsed = logout.parse_response(bindings.decode_redirect(query["SAMLResponse"], "SAMLResponse"))
    assert parsed.sub_status == logout.STATUS_PARTIAL_LOGOUT
    (round_,) = LogoutRound.objects.all()
    (aws,) = round_.participants
    assert aws["state"] == slo.SKIPPED and "AWS takes no single logout" in aws["detail"]


# --- hostile inputs -------------------------------------------------------------------------


def change(entity_id: str, **fields) -> None:
    """Through save(), so the configuration cache sees it (update() sends no signal)."""
    sp = ServiceProvider.objects.get(entity_id=entity_id)
    for name, value in fields.items():
        setattr(sp, name, value)
    sp.save()


def tampered_redirect(query: str) -> str:
    fields = dict(piece.split("=", 1) for piece in query.split("&"))
    fields["RelayState"] = "tampered"
    return "&".join(f"{k}={v}" for k, v in fields.items())


@pytest.mark.parametrize(
    "case",
    [
        "garbage",
        "not-deflated",
        "unknown-issuer",
        "wrong-destination",
        "stale",
        "expired",
        "tampered-redirect",
        "tampered-post",
        "unsigned-but-required",
        "signed-without-certificate",
        "neither",
        "both",
        "replayed-request",
    ],
)
def test_hostile_logout_requests_get_a_4xx_page_and_end_nothing(client, sps, sp_key, case):
    index = sign_on(client, SP1, SP2)
    name_id = issued_name_id(index, SP1)
    later = clock.now() - datetime.timedelta(hours=1)
    signed_query = redirect_query(logout_request(name_id, index), key=sp_key)
    if case == "garbage":
        response = client.get("/saml/slo/?SAMLRequest=%%%not-base64")
    elif case == "not-deflated":
        response = client.get(f"/saml/slo/?SAMLRequest={base64.b64encode(b'<x/>').decode()}")
    elif case == "unknown-issuer":
        response = client.get(
            f"/saml/slo/?{redirect_query(logout_request(name_id, index, issuer='urn:evil'))}"
        )
    elif case == "wrong-destination":
        request = logout_request(name_id, index, destination="https://other.example/slo")
        response = client.get(f"/saml/slo/?{redirect_query(request)}")
    elif case == "stale":
        response = client.get(f"/saml/slo/?{redirect_query(logout_request(name_id, now=later))}")
    elif case == "expired":
        request = logout_request(name_id, index)
        request.set("NotOnOrAfter", "2000-01-01T00:00:00Z")
        response = client.get(f"/saml/slo/?{redirect_query(request)}")
    elif case == "tampered-redirect":
        response = client.get(f"/saml/slo/?{tampered_redirect(signed_query)}")
    elif case == "tampered-post":
        request = logout_request(name_id, index)
        signing.sign_element(request, sp_key)
        signed_xml = xml(request).replace(name_id.value.encode(), b"someone-else")
        response = client.post("/saml/slo/", {"SAMLRequest": bindings.encode_post(signed_xml)})
    elif case == "unsigned-but-required":
        change(SP1, require_signed_requests=True)
        response = client.get(f"/saml/slo/?{redirect_query(logout_request(name_id, index))}")
    elif case == "signed-without-certificate":
        change(SP1, request_certificate="")
        response = client.get(f"/saml/slo/?{signed_query}")
    elif case == "neither":
        response = client.get("/saml/slo/?RelayState=x")
    elif case == "both":
        response = client.get("/saml/slo/?SAMLRequest=a&SAMLResponse=b")
    elif case == "replayed-request":
        assert client.get(f"/saml/slo/?{signed_query}").status_code == 303
        sign_on(client, SP1)  # a new session, which the replay must not end
        index = client.session[SESSION_INDEX]
        response = client.get(f"/saml/slo/?{signed_query}")
    assert 400 <= response.status_code < 500
    refused(response, response.status_code)
    assert not RevokedSession.objects.filter(session_index=index).exists()
    if case not in ("garbage", "not-deflated", "neither", "both"):
        assert AuditEvent.objects.filter(flow="slo", outcome="refused").exists()


def sent_to_sp2(client, sps):
    index = sign_on(client, SP1, SP2)
    request = logout_request(issued_name_id(index, SP1), index)
    to_sp2 = client.get(client.get(f"/saml/slo/?{redirect_query(request)}")["Location"])
    query = {k: v[0] for k, v in parse_qs(urlsplit(to_sp2["Location"]).query).items()}
    return logout.parse_request(bindings.decode_redirect(query["SAMLRequest"])), query


@pytest.mark.parametrize(
    "case", ["unknown-round", "wrong-in-response-to", "wrong-issuer", "tampered", "no-status"]
)
def test_hostile_logout_responses_are_refused(client, sps, sp_key, case):
    sent, query = sent_to_sp2(client, sps)
    relay_state, issuer, in_response_to = query["RelayState"], SP2, sent.id
    if case == "unknown-round":
        relay_state = "no-such-round"
    elif case == "wrong-in-response-to":
        in_response_to = "_not-the-request"
    elif case == "wrong-issuer":
        issuer = SP1
    answer = logout.build_response(logout.new_id(), issuer, SLO, in_response_to, clock.now())
    if case == "no-status":
        answer.remove(answer.find(f"{{{c.SAMLP}}}Status"))
    answer_query = redirect_query(answer, "SAMLResponse", relay_state, key=sp_key)
    if case == "tampered":
        answer_query = answer_query.replace("SigAlg=", "SigAlg=x", 1)
    response = client.get(f"/saml/slo/?{answer_query}")
    assert 400 <= response.status_code < 500
    round_ = LogoutRound.objects.get()
    assert [p["state"] for p in round_.participants] == [slo.SENT]


def test_continuing_an_unknown_round_is_a_404_page(client, db):
    refused(client.get("/saml/slo/continue/nope/"), 404)


# --- IdP-initiated: portal and admin --------------------------------------------------------


def test_the_portal_sign_out_is_post_only_and_csrf_checked(client, sps):
    from django.test import Client

    sign_on(client, SP1)
    assert client.get("/accounts/logout/").status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.login(username="alice", password="alice")
    assert strict.post("/accounts/logout/").status_code == 403


def test_the_portal_sign_out_runs_a_round_and_shows_the_results(client, sps):
    index = sign_on(client, SP1, SP2)
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and "/saml/slo/continue/" in response["Location"]
    assert RevokedSession.objects.filter(session_index=index).exists()
    continue_url = response["Location"]
    for host in ("sp1", "sp2"):
        to_sp = client.get(continue_url)
        assert urlsplit(to_sp["Location"]).netloc == f"{host}.example.test"
        query = {k: v[0] for k, v in parse_qs(urlsplit(to_sp["Location"]).query).items()}
        sent = logout.parse_request(bindings.decode_redirect(query["SAMLRequest"]))
        answer = logout.build_response(
            logout.new_id(), f"https://{host}.example.test/metadata", SLO, sent.id, clock.now()
        )
        back = client.get(
            f"/saml/slo/?{redirect_query(answer, 'SAMLResponse', query['RelayState'])}"
        )
        assert back["Location"] == continue_url
    page = client.get(continue_url)
    assert page.status_code == 200 and page.content.decode().count('data-state="logged out"') == 2


def staff(username: str, *perms: str) -> User:
    user = User.objects.create_user(username, password=username, is_staff=True)
    for perm in perms:
        app, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app, codename=codename)
        )
    return user


def test_staff_end_a_users_session_from_the_admin(client, sps):
    from django.test import Client

    index = sign_on(client, SP1, SP2)
    participants.flush()
    viewer = Client()
    viewer.force_login(staff("viewer", "idp.view_spsession"))
    page = viewer.get("/admin/idp/spsession/user/alice/")
    assert page.status_code == 200 and index in page.content.decode()
    assert "End this session" not in page.content.decode()
    assert viewer.post("/admin/idp/spsession/end/", {"session_index": index}).status_code == 403
    assert not RevokedSession.objects.filter(session_index=index).exists()

    ender = Client()
    ender.force_login(staff("ender", "idp.view_spsession", "idp.end_session"))
    response = ender.post("/admin/idp/spsession/end/", {"session_index": index})
    assert response.status_code == 302
    assert RevokedSession.objects.filter(session_index=index).exists()  # at once
    assert client.get("/saml/init/", {"sp": SP1}).status_code == 302  # alice must sign in
    to_sp1 = ender.get(response["Location"])
    assert urlsplit(to_sp1["Location"]).netloc == "sp1.example.test"
    ender.get(response["Location"])  # SP 1 never answered; SP 2 next
    final = ender.get(response["Location"])  # SP 2 never answered either: partial
    assert final.status_code == 302 and final["Location"] == "/admin/idp/spsession/user/alice/"
    back = ender.get(final["Location"])
    text = back.content.decode()
    assert "Partial logout" in text and "no LogoutResponse came back" in text
    assert index not in text.split("messagelist")[-1]  # no longer listed as open


def test_the_user_change_page_links_to_the_sessions(client, sps):
    from django.test import Client

    admin = Client()
    admin.force_login(User.objects.get(username="admin"))
    alice = User.objects.get(username="alice")
    page = admin.get(f"/admin/users/user/{alice.pk}/change/")
    assert "/admin/idp/spsession/user/alice/" in page.content.decode()


# --- the warm path --------------------------------------------------------------------------


def test_a_sign_on_records_its_participant_without_a_synchronous_write(
    client, sps, django_assert_num_queries
):
    from unittest import mock

    sign_on(client, SP1, SP2)  # the caches warm
    SpSession.objects.all().delete()
    with mock.patch("idp.audit.record"), django_assert_num_queries(0):
        assert client.get("/saml/init/", {"sp": SP2}).status_code == 200
    assert not SpSession.objects.filter(sp_entity_id=SP2).exists()  # still buffered
    index = client.session[SESSION_INDEX]
    cookie = participants.from_cookie(client.session)
    assert {p.sp_entity_id for p in cookie} == {SP1, SP2}
    assert {p.sp_entity_id for p in participants.for_session(index)} == {SP1, SP2}
    assert SpSession.objects.filter(sp_entity_id=SP2).exists()  # written by the read


def test_the_plan_is_the_union_of_cookie_and_database(db):
    cookie = [participants.Participant("_s", "alice", SP1, "n1")]
    SpSession.objects.create(session_index="_s", username="alice", sp_entity_id=SP2, name_id="n2")
    SpSession.objects.create(session_index="_other", username="bob", sp_entity_id=SP2, name_id="x")
    plan = participants.for_session("_s", cookie)
    assert sorted(p.sp_entity_id for p in plan) == [SP1, SP2]


def test_the_mint_records_no_participant(demo, settings):
    from idp import sso

    sso.mint("alice", "urn:amazon:webservices")
    participants.flush()
    assert not SpSession.objects.exists()


def test_the_watcher_prunes_old_records_and_expired_rounds(db, settings):
    settings.SESSION_COOKIE_AGE = 3600
    now = clock.now()
    hour = datetime.timedelta(hours=1)
    for name, created, ended in (
        ("open-fresh", now, None),
        ("open-old", now - 2 * hour, None),
        ("ended-lately", now - hour / 2, now - datetime.timedelta(minutes=5)),
        ("ended-long-ago", now - hour / 2, now - 2 * hour),
    ):
        SpSession.objects.create(
            session_index=name,
            username="u",
            sp_entity_id=SP1,
            name_id="n",
            created_at=created,
            ended_at=ended,
        )
    for name, expires in (("live", now + hour), ("gone", now - hour)):
        LogoutRound.objects.create(id=name, expires_at=expires)

    participants.prune(now)
    slo.prune(now)

    kept = set(SpSession.objects.values_list("session_index", flat=True))
    assert kept == {"open-fresh", "ended-lately"}
    assert list(LogoutRound.objects.values_list("id", flat=True)) == ["live"]
