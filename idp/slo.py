"""Single logout, in order: the SLO counterpart of sso.py.

    receive (bindings.decode -> logout.parse -> SP registry -> signature, as sso.py judges
    AuthnRequests) -> plan (end the IdP session; its participants, participants.py)
    -> propagate (one LogoutRequest at a time, through the browser; each LogoutResponse
    verified and recorded in the round) -> answer (a LogoutResponse to the SP that asked,
    Success or Success/PartialLogout, or a page of results) -> audit every step (flow "slo").

A logout round (models.LogoutRound) holds the plan server-side; its id is the RelayState
of every LogoutRequest the IdP sends, so an SP's answer finds it on any worker. Views
hand this module plain fields and render what it returns.
"""

import datetime
import re
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from django.core import signing as django_signing
from django.db import transaction
from lxml import etree

from . import audit, cache, clock, identity, keys, participants, replay, sessions
from .models import MAX_REQUEST_MAX_AGE, AuditEvent, LogoutRound, ServiceProvider
from .saml import bindings, logout, signing
from .saml import constants as c
from .saml.errors import SamlError
from .saml.release import NameID
from .sso import service_provider, verified_signature

SLO = "slo"
ROUND_LIFETIME = datetime.timedelta(minutes=10)
RESUME_MAX_AGE = 300
_TOKEN_SALT = "fedmock.logout-request"  # noqa: S105

PENDING, SENT, LOGGED_OUT, FAILED, SKIPPED = "pending", "sent", "logged out", "failed", "skipped"
AWS_TAKES_NO_SLO = (
    "AWS takes no single logout: its console session lasts until it expires or the user "
    "signs out there."
)


# --- receive --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedLogout:
    """An SP's LogoutRequest that passed every check. Over HTTP-POST it travels as a signed
    token to a GET, where the IdP's SameSite=Lax cookie is seen (as sso.PendingRequest)."""

    sp_entity_id: str
    request_id: str
    relay_state: str
    name_id: str
    name_id_format: str = ""
    sp_name_qualifier: str = ""
    session_indexes: tuple[str, ...] = ()
    # A verified signature proves the SP sent it; unsigned, anyone may have written it.
    signed: bool = False

    def to_token(self) -> str:
        return django_signing.dumps(asdict(self), salt=_TOKEN_SALT, compress=True)

    @classmethod
    def from_token(cls, token: str) -> "ReceivedLogout":
        try:
            fields = django_signing.loads(token, salt=_TOKEN_SALT, max_age=RESUME_MAX_AGE)
            return cls(**{**fields, "session_indexes": tuple(fields["session_indexes"])})
        except (django_signing.BadSignature, TypeError, KeyError) as error:
            raise SamlError(
                "This sign-out link is not valid",
                "It was altered, cut short or is older than "
                f"{RESUME_MAX_AGE // 60} minutes, or the IdP's SECRET_KEY changed.",
                "Sign out at the service provider again.",
            ) from error


def _audit(outcome: str, sp_entity_id: str = "", **fields) -> None:
    audit.record(flow=SLO, sp_entity_id=sp_entity_id, outcome=outcome, **fields)


def _refused(error: SamlError, sp_entity_id: str = "", request_id: str = "") -> SamlError:
    _audit(
        AuditEvent.Outcome.REFUSED,
        sp_entity_id[:1024],
        request_id=request_id[:256],
        detail=f"{error.title}: {error.detail}",
    )
    return error


def _check_destination(destination: str, what: str) -> None:
    if destination and destination != identity.slo_url():
        raise SamlError(
            f"The {what} is addressed to another endpoint",
            f"Its Destination is {destination[:300]}, but it arrived at this IdP's single "
            f"logout endpoint {identity.slo_url()}.",
            "Reload this IdP's metadata at the SP, or set IDP_BASE_URL to the URL the SP uses.",
        )


def _redirect_fields(raw_query: str) -> tuple[dict[str, str], bytes]:
    fields, signed_octets = bindings.redirect_parameters(raw_query)
    if "SAMLRequest" in fields and "SAMLResponse" in fields:
        raise SamlError(
            "The query carries both SAMLRequest and SAMLResponse",
            "A single logout message is one or the other.",
            "Send the LogoutRequest or the LogoutResponse, not both.",
        )
    return fields, signed_octets


def _detached_verifier(fields: Mapping[str, str], signed_octets: bytes, what: str):
    """(signed, verify) for HTTP-Redirect: the signature is over the raw query's octets."""
    signed = "Signature" in fields or "SigAlg" in fields
    if signed:
        signing.check_signature_algorithm(fields.get("SigAlg", ""))
        if "Signature" not in fields:
            raise SamlError(
                "SigAlg without a Signature",
                f"The query names a signature algorithm for the {what} but carries no Signature.",
                "Send both Signature and SigAlg, or neither.",
            )
    return signed, lambda certificate: signing.verify_detached(
        signed_octets, fields["Signature"], fields["SigAlg"], certificate
    )


def _relay_state(value: str) -> str:
    """The SP's RelayState, kept in the round until its answer: bounded, and with no NUL,
    which PostgreSQL's text and jsonb refuse (a 500 instead of a page)."""
    if "\x00" in value:
        raise SamlError(
            "RelayState contains a NUL character",
            "A RelayState is an opaque string, and this one carries a zero byte.",
            "Send a RelayState of printable characters (SAML bindings: at most 80 bytes).",
        )
    return bindings.check_relay_state(value)


def _no_xml_signature(is_signed: bool, what: str) -> None:
    if is_signed:
        raise SamlError(
            f"The HTTP-Redirect {what} carries an XML signature",
            "Over HTTP-Redirect the signature travels in the Signature and SigAlg parameters.",
            f"Remove the ds:Signature from the {what} and sign the query string, or post it.",
        )


def kind_of(fields: Mapping[str, str]) -> str:
    """ "request" or "response": which message a door received (never both, never neither)."""
    if "SAMLRequest" in fields and "SAMLResponse" in fields:
        raise SamlError(
            "Both SAMLRequest and SAMLResponse",
            "A single logout message is one or the other.",
            "Send the LogoutRequest or the LogoutResponse, not both.",
        )
    if "SAMLRequest" in fields:
        return "request"
    if "SAMLResponse" in fields:
        return "response"
    raise SamlError(
        "No logout message",
        "This single logout endpoint takes a SAMLRequest (a LogoutRequest) or a SAMLResponse "
        "(a LogoutResponse), and the request carried neither.",
        "Sign out at the service provider, or use the portal's sign-out button.",
    )


def _checked_request(request: logout.LogoutRequest, now: datetime.datetime) -> ServiceProvider:
    _check_destination(request.destination, "LogoutRequest")
    sp = service_provider(request.issuer)
    logout.check_fresh(request, now, sp.request_max_age)
    return sp


def _received(
    request: logout.LogoutRequest, sp: ServiceProvider, relay_state: str, signed: bool
) -> ReceivedLogout:
    received = ReceivedLogout(
        sp_entity_id=sp.entity_id,
        request_id=request.id,
        relay_state=relay_state,
        name_id=request.name_id.value,
        name_id_format=request.name_id.format,
        sp_name_qualifier=request.name_id.sp_name_qualifier,
        session_indexes=request.session_indexes,
        signed=signed,
    )
    _audit(
        AuditEvent.Outcome.RECEIVED,
        sp.entity_id,
        request_id=request.id,
        detail=f"LogoutRequest for NameID {request.name_id.value[:200]}"
        + (
            f", SessionIndex {', '.join(request.session_indexes)}"
            if request.session_indexes
            else ""
        ),
    )
    return received


def receive_request_redirect(raw_query: str, now: datetime.datetime | None = None):
    """A LogoutRequest over HTTP-Redirect: decode, parse, check the SP and its signature."""
    now = now or clock.now()
    issuer = request_id = ""
    try:
        fields, signed_octets = _redirect_fields(raw_query)
        relay_state = _relay_state(fields.get("RelayState", ""))
        request = logout.parse_request(bindings.decode_redirect(fields.get("SAMLRequest", "")))
        issuer, request_id = request.issuer, request.id
        _no_xml_signature(request.is_signed, "LogoutRequest")
        sp = _checked_request(request, now)
        signed, verify = _detached_verifier(fields, signed_octets, "LogoutRequest")
        verified = verified_signature(sp, signed, verify, "LogoutRequest")
    except SamlError as error:
        raise _refused(error, issuer, request_id) from None
    return _received(request, sp, relay_state, verified)


def receive_request_post(fields: Mapping[str, str], now: datetime.datetime | None = None):
    """A LogoutRequest over HTTP-POST: an enveloped signature, judged by the allow-list first."""
    now = now or clock.now()
    issuer = request_id = ""
    try:
        relay_state = _relay_state(fields.get("RelayState", ""))
        xml = bindings.decode_post(fields.get("SAMLRequest", ""))
        root = bindings.parse_xml(xml, "The SAMLRequest")
        signature = signing.enveloped_signature(root)
        request = logout.parse_request(xml)
        issuer, request_id = request.issuer, request.id
        sp = _checked_request(request, now)
        verified = verified_signature(
            sp,
            signature is not None,
            lambda certificate: signing.verify_enveloped(root, certificate),
            "LogoutRequest",
        )
    except SamlError as error:
        raise _refused(error, issuer, request_id) from None
    return _received(request, sp, relay_state, verified)


def receive_response_redirect(raw_query: str) -> str:
    """An SP's LogoutResponse over HTTP-Redirect; the round's id, to continue it."""
    issuer = ""
    try:
        fields, signed_octets = _redirect_fields(raw_query)
        xml = bindings.decode_redirect(fields.get("SAMLResponse", ""), "SAMLResponse")
        response = logout.parse_response(xml)
        issuer = response.issuer
        _no_xml_signature(response.is_signed, "LogoutResponse")
        signed, verify = _detached_verifier(fields, signed_octets, "LogoutResponse")
        return _record_answer(response, fields.get("RelayState", ""), signed, verify)
    except SamlError as error:
        raise _refused(error, issuer) from None


def receive_response_post(fields: Mapping[str, str]) -> str:
    issuer = ""
    try:
        xml = bindings.decode_post(fields.get("SAMLResponse", ""), "SAMLResponse")
        root = bindings.parse_xml(xml, "The SAMLResponse")
        signature = signing.enveloped_signature(root)
        response = logout.parse_response(xml)
        issuer = response.issuer
        return _record_answer(
            response,
            fields.get("RelayState", ""),
            signature is not None,
            lambda certificate: signing.verify_enveloped(root, certificate),
        )
    except SamlError as error:
        raise _refused(error, issuer) from None


def _unknown_round(relay_state: str) -> SamlError:
    return SamlError(
        "Unknown or finished sign-out",
        f"No single logout in progress has the id {relay_state[:100]!r}: it finished, expired "
        f"after {ROUND_LIFETIME.seconds // 60} minutes, or never existed.",
        "Sign out again from the portal or at the service provider.",
        status=404,
    )


def _record_answer(response: logout.LogoutResponse, relay_state: str, signed, verify) -> str:
    """Match the answer to the LogoutRequest the round has outstanding, then record it."""
    _check_destination(response.destination, "LogoutResponse")
    _round_id(relay_state)
    with transaction.atomic():
        round_ = _open_round(relay_state, lock=True)
        entry = next(
            (
                p
                for p in round_.participants
                if p["state"] == SENT and p["request_id"] == response.in_response_to
            ),
            None,
        )
        if entry is None:
            raise SamlError(
                "This LogoutResponse answers no request in progress",
                f"Its InResponseTo {response.in_response_to[:100]!r} is not the LogoutRequest "
                "this sign-out is waiting for: it was answered already, or it was never sent.",
                "Sign out again; an SP must answer each LogoutRequest once, with its ID.",
            )
        if response.issuer != entry["sp"]:
            raise SamlError(
                "The LogoutResponse comes from another service provider",
                f"Its Issuer is {response.issuer[:300]}; the LogoutRequest went to {entry['sp']}.",
                "The SP must answer with its own entity ID as Issuer.",
            )
        sp = service_provider(response.issuer)
        verified_signature(sp, signed, verify, "LogoutResponse")
        entry["state"] = LOGGED_OUT if response.succeeded else FAILED
        entry["detail"] = (
            ""
            if response.succeeded
            else " ".join(
                part
                for part in (
                    response.status.rsplit(":", 1)[-1],
                    response.sub_status.rsplit(":", 1)[-1],
                    response.message,
                )
                if part
            )
        )
        round_.save(update_fields=["participants"])
    _audit(
        AuditEvent.Outcome.RECEIVED,
        sp.entity_id,
        username=round_.username,
        request_id=response.in_response_to,
        response_id=response.id[:64],
        detail=f"LogoutResponse: {entry['state']}"
        + (f" ({entry['detail']})" if entry["detail"] else ""),
    )
    return round_.id


# --- plan -----------------------------------------------------------------------------------


def _entry(participant: participants.Participant) -> dict:
    return {
        "sp": participant.sp_entity_id,
        "name_id": participant.name_id,
        "format": participant.name_id_format,
        "sp_name_qualifier": participant.sp_name_qualifier,
        "session_index": participant.session_index,
        "state": PENDING,
        "detail": "",
        "request_id": "",
    }


def _new_round(
    username: str,
    session_index: str,
    plan: list[participants.Participant],
    now: datetime.datetime,
    initiator: dict | None = None,
    return_url: str = "",
) -> LogoutRound:
    return LogoutRound.objects.create(
        id=secrets.token_urlsafe(16),
        username=username,
        session_index=session_index,
        participants=[_entry(p) for p in plan],
        initiator=initiator,
        return_url=return_url,
        created_at=now,
        expires_at=now + ROUND_LIFETIME,
    )


def end_session(
    session_index: str,
    username: str,
    cookie: list[participants.Participant] = (),
    *,
    now: datetime.datetime | None = None,
    except_sp: str = "",
    initiator: dict | None = None,
    return_url: str = "",
) -> LogoutRound:
    """Revoke one IdP session at once and plan the logout of its participants."""
    now = now or clock.now()
    plan = [
        p for p in participants.for_session(session_index, cookie) if p.sp_entity_id != except_sp
    ]
    sessions.revoke(session_index, username)
    participants.end(session_index, now)
    round_ = _new_round(username, session_index, plan, now, initiator, return_url)
    _audit(
        AuditEvent.Outcome.RECEIVED,
        except_sp,
        username=username,
        detail=f"IdP session {session_index} ended; logout round {round_.id} for "
        + (", ".join(p.sp_entity_id for p in plan) or "no other service provider"),
    )
    return round_


@dataclass(frozen=True)
class Started:
    round_id: str
    ended_session_index: str  # "" if the IdP knew no session of this user at this SP


def start_from_sp(
    received: ReceivedLogout,
    cookie_session_index: str,
    cookie: list[participants.Participant],
    username: str = "",
    now: datetime.datetime | None = None,
) -> Started:
    """An SP asked: end the IdP session it names (or the browser's), then the others'.

    The session ended is the LogoutRequest's SessionIndex if this IdP issued it to that SP
    for that NameID; else the browser's session, if the SP got that NameID in it; else the
    newest open session in which it did (a sign-out from another browser). Only a request
    whose signature verified may end a session other than the browser's own: an unsigned
    one is anyone's to write, and NameIDs (emails) and SessionIndexes (seen by every SP of
    the session) are no secrets. The SP then learns, by PartialLogout, what was left open.
    """
    now = now or clock.now()
    _claim(received, now)
    key = (received.sp_entity_id, received.name_id)
    in_cookie = any(p.key == key for p in cookie) and cookie_session_index
    elsewhere = participants.sessions_of(*key)
    known = elsewhere if received.signed else []
    if in_cookie and cookie_session_index not in known:
        known.append(cookie_session_index)
    named = [index for index in received.session_indexes if index in known]
    if named:
        session_index = named[0]
    elif in_cookie:
        session_index = cookie_session_index
    else:
        session_index = known[0] if known else ""
    initiator = {
        "sp": received.sp_entity_id,
        "request_id": received.request_id,
        "relay_state": received.relay_state,
    }
    if not session_index:
        # Nothing to end: the SP still gets its answer (core §3.7.3.2: a session unknown
        # to the IdP is logged out already), partial if an unsigned request named one.
        round_ = _new_round(username, "", [], now, initiator)
        if elsewhere:
            round_.participants = [_left_open(received, len(elsewhere))]
            round_.save(update_fields=["participants"])
            _audit(
                AuditEvent.Outcome.REFUSED,
                received.sp_entity_id,
                request_id=received.request_id,
                detail=round_.participants[0]["detail"],
            )
        return Started(round_.id, "")
    owner = username if session_index == cookie_session_index else ""
    round_ = end_session(
        session_index,
        owner or _username_of(session_index),
        cookie if session_index == cookie_session_index else [],
        now=now,
        except_sp=received.sp_entity_id,
        initiator=initiator,
    )
    return Started(round_.id, session_index)


def _left_open(received: ReceivedLogout, count: int) -> dict:
    """The round's record of IdP sessions an unsigned request could not end."""
    return {
        "sp": received.sp_entity_id,
        "name_id": received.name_id,
        "format": received.name_id_format,
        "sp_name_qualifier": received.sp_name_qualifier,
        "session_index": "",
        "state": SKIPPED,
        "detail": f"{count} IdP session(s) of this NameID left open: an unsigned "
        "LogoutRequest ends only the session of the browser that brings it (sign "
        "LogoutRequests at the SP and register its certificate to end them from anywhere)",
        "request_id": "",
    }


def _claim(received: ReceivedLogout, now: datetime.datetime) -> None:
    """Each LogoutRequest is acted on once: a replay (or a reused resume link) is refused."""
    try:
        replay.claim(
            received.sp_entity_id,
            received.request_id,
            now,
            keep_for=RESUME_MAX_AGE + 2 * MAX_REQUEST_MAX_AGE,
        )
    except replay.AlreadyAnswered:
        raise _refused(
            SamlError(
                "This LogoutRequest was already answered",
                f"LogoutRequest {received.request_id[:80]!r} from {received.sp_entity_id[:200]} "
                "has been acted on; a replayed request or a reused sign-out link is refused.",
                "Sign out at the service provider again: it sends a new request.",
            ),
            received.sp_entity_id,
            received.request_id,
        ) from None


def _username_of(session_index: str) -> str:
    plan = participants.for_session(session_index)
    return plan[0].username if plan else ""


# --- propagate and answer -------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    sp_entity_id: str
    sp_name: str
    state: str
    detail: str


@dataclass(frozen=True)
class Step:
    """What the browser does next: go to a URL, post a form, or see the results."""

    redirect_url: str = ""
    form: bindings.PostForm | None = None
    results: tuple[Outcome, ...] = ()
    partial: bool = False
    return_url: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)


_ROUND_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")  # secrets.token_urlsafe(16): 22 of these


def _round_id(round_id: str) -> str:
    """A RelayState or URL that cannot be a round is unknown before any query (PostgreSQL
    refuses a NUL in a parameter with a ValueError: a 500)."""
    if not _ROUND_ID.fullmatch(round_id):
        raise _unknown_round(round_id)
    return round_id


def _open_round(round_id: str, lock: bool = False) -> LogoutRound:
    rows = LogoutRound.objects.filter(id=_round_id(round_id), expires_at__gt=clock.now())
    round_ = (rows.select_for_update() if lock else rows).first() if round_id else None
    if round_ is None:
        raise _unknown_round(round_id)
    return round_


def _endpoint(sp: ServiceProvider):
    """The SP's SingleLogoutService: HTTP-Redirect preferred, else HTTP-POST."""
    endpoints = list(sp.logout_endpoints.all())
    for binding in (c.BINDING_REDIRECT, c.BINDING_POST):
        for endpoint in endpoints:
            if endpoint.binding == binding:
                return endpoint
    return None


def _skip_reason(sp: ServiceProvider | None) -> str:
    if sp is None:
        return "no longer registered (or disabled) at this IdP"
    if sp.is_checked:
        return AWS_TAKES_NO_SLO
    if _endpoint(sp) is None:
        return "no SingleLogoutService registered: it was not told (re-import its metadata)"
    return ""


def _registered(entity_id: str) -> ServiceProvider | None:
    sp = cache.service_provider(entity_id)
    return sp if sp is not None and sp.enabled else None


def _send(sp: ServiceProvider, location: str, binding: str, root, field_name: str, relay_state):
    """Sign as the SP's settings say (sign_response covers logout messages too) and encode."""
    key = keys.active_key() if sp.sign_response else None
    if binding == c.BINDING_REDIRECT:
        xml = _serialised(root)
        return Step(
            redirect_url=bindings.redirect_url(
                location, field_name, xml, relay_state, key, sp.signature_algorithm
            )
        )
    if key is not None:
        signing.sign_element(root, key, sp.signature_algorithm, sp.digest_algorithm)
    xml = _serialised(root)
    fields = {field_name: bindings.encode_post(xml)}
    if relay_state:
        fields["RelayState"] = relay_state
    return Step(form=bindings.PostForm(location, fields))


def _serialised(root) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def step(round_id: str, now: datetime.datetime | None = None) -> Step:
    """The round's next move: a LogoutRequest to the next participant, or the answer."""
    now = now or clock.now()
    _round_id(round_id)
    with transaction.atomic():
        round_ = _open_round(round_id, lock=True)
        just_finished = round_.finished_at is None
        if just_finished:
            for entry in round_.participants:
                if entry["state"] == SENT:  # the browser came back without the SP's answer
                    entry.update(state=FAILED, detail="no LogoutResponse came back")
                    _audit(
                        AuditEvent.Outcome.REFUSED,
                        entry["sp"],
                        username=round_.username,
                        request_id=entry["request_id"],
                        detail="no LogoutResponse came back before the browser returned",
                    )
            for entry in round_.participants:
                if entry["state"] != PENDING:
                    continue
                sp = _registered(entry["sp"])
                if reason := _skip_reason(sp):
                    entry.update(state=SKIPPED, detail=reason)
                    continue
                return _request(round_, entry, sp, now)
            round_.finished_at = now
        round_.save(update_fields=["participants", "finished_at"])
        return _answer(round_, now, just_finished)


def _request(round_: LogoutRound, entry: dict, sp: ServiceProvider, now) -> Step:
    endpoint = _endpoint(sp)
    entry.update(state=SENT, request_id=logout.new_id())
    round_.save(update_fields=["participants"])
    root = logout.build_request(
        entry["request_id"],
        identity.entity_id(),
        endpoint.location,
        NameID(entry["name_id"], entry["format"], entry["sp_name_qualifier"]),
        entry["session_index"],
        now,
    )
    _audit(
        AuditEvent.Outcome.SENT,
        sp.entity_id,
        username=round_.username,
        request_id=entry["request_id"],
        acs_url=endpoint.location,
        detail=f"LogoutRequest over {endpoint.binding.rsplit(':', 1)[-1]}",
    )
    return _send(sp, endpoint.location, endpoint.binding, root, "SAMLRequest", round_.id)


def _outcomes(round_: LogoutRound) -> tuple[Outcome, ...]:
    names = {}
    for entry in round_.participants:
        sp = cache.service_provider(entry["sp"])
        names[entry["sp"]] = str(sp) if sp is not None else entry["sp"]
    return tuple(
        Outcome(e["sp"], names[e["sp"]], e["state"], e["detail"]) for e in round_.participants
    )


def _answer(round_: LogoutRound, now, just_finished: bool) -> Step:
    results = _outcomes(round_)
    partial = any(r.state != LOGGED_OUT for r in results)
    initiator = round_.initiator
    notes = []
    if initiator and just_finished:
        sp = _registered(initiator["sp"])
        endpoint = _endpoint(sp) if sp is not None else None
        if endpoint is not None:
            round_.initiator = {**initiator, "answered": True}
            round_.save(update_fields=["initiator"])
            return _respond(round_, sp, endpoint, partial, now)
        notes.append(
            f"{initiator['sp']} asked to sign out but has no SingleLogoutService to answer."
        )
    if just_finished:
        _audit(
            AuditEvent.Outcome.PARTIAL if partial else AuditEvent.Outcome.ANSWERED,
            initiator["sp"] if initiator else "",
            username=round_.username,
            detail=_summary(results),
        )
    return Step(results=results, partial=partial, return_url=round_.return_url, notes=tuple(notes))


def _summary(results) -> str:
    return (
        "; ".join(
            f"{r.sp_entity_id}: {r.state}" + (f" ({r.detail})" if r.detail else "") for r in results
        )
        or "no other service provider had a session"
    )


def _respond(round_, sp: ServiceProvider, endpoint, partial: bool, now) -> Step:
    initiator = round_.initiator
    location = endpoint.response_location or endpoint.location
    response_id = logout.new_id()
    root = logout.build_response(
        response_id,
        identity.entity_id(),
        location,
        initiator["request_id"],
        now,
        sub_status=logout.STATUS_PARTIAL_LOGOUT if partial else "",
        message="Some service providers could not be signed out." if partial else "",
    )
    _audit(
        AuditEvent.Outcome.PARTIAL if partial else AuditEvent.Outcome.ANSWERED,
        sp.entity_id,
        username=round_.username,
        request_id=initiator["request_id"],
        response_id=response_id,
        acs_url=location,
        detail=_summary(_outcomes(round_)),
    )
    return _send(sp, location, endpoint.binding, root, "SAMLResponse", initiator["relay_state"])


def prune(now: datetime.datetime) -> int:
    deleted, _ = LogoutRound.objects.filter(expires_at__lte=now).delete()
    return deleted
