"""The sign-on pipeline, in order:

    bindings.decode -> authn_requests.parse (+ SP registry) -> [login] -> claims.release
    -> aws checks -> responses.build -> signing.sign -> bindings.post_form -> audit.record

This is the only module that calls every step. Views hand it plain mappings (the
raw query string for HTTP-Redirect, whose signature covers the octets as sent)
and render what it returns; IdP-initiated sign-on and the mint (API, command)
enter at claims.release. A fault scenario (idp/scenarios.py), named in a mint or
standing on the SP as its fault profile (idp/faults.py, with replayed-id's memory),
alters the steps of `_issue` where they run; everything else is the same path.

Every instant comes from idp.clock (the system clock plus IDP_CLOCK_OFFSET), or
from the `now` a mint names.
"""

import datetime
import functools
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core import signing as django_signing
from lxml import etree

from . import (
    audit,
    authn_context,
    cache,
    claims,
    clock,
    faults,
    identity,
    keys,
    participants,
    replay,
    scenarios,
)
from .models import MAX_REQUEST_MAX_AGE, AuditEvent, ServiceProvider
from .saml import authn_requests, aws, bindings, ecp, responses, signing
from .saml import constants as c
from .saml.errors import SamlError
from .saml.metadata import Endpoint
from .saml.release import Release

SP_INITIATED = "sp-initiated"
IDP_INITIATED = "idp-initiated"
MINT = "mint"  # the API's POST /api/v1/sign-ons and `manage.py mint_response`
ECP = "ecp"  # the ECP profile: an AuthnRequest over SOAP, with HTTP Basic credentials
PENDING_MAX_AGE = 3600
_TOKEN_SALT = "fedmock.pending-request"  # noqa: S105


@dataclass(frozen=True)
class PendingRequest:
    """An AuthnRequest that passed every check, waiting for the user's login.

    It travels as a signed token in the login's `next` URL rather than in the
    session, so a login that replaces the session (another user) keeps it.
    """

    request_id: str
    sp_entity_id: str
    acs_url: str
    relay_state: str
    force_authn: bool
    is_passive: bool
    name_id_format: str
    received_at: float
    notes: tuple[str, ...] = ()  # warnings about the request, for the audit
    flow: str = SP_INITIATED  # the audit's flow: SP_INITIATED (browser) or ECP
    # RequestedAuthnContext, flat so that the token stays JSON: no comparison, no request.
    authn_comparison: str = ""
    authn_class_refs: tuple[str, ...] = ()
    authn_decl_refs: tuple[str, ...] = ()

    @property
    def requested_authn_context(self) -> authn_context.Requested | None:
        if not self.authn_comparison:
            return None
        return authn_context.Requested(
            authn_context.Comparison(self.authn_comparison),
            self.authn_class_refs,
            self.authn_decl_refs,
        )

    def to_token(self) -> str:
        """A signed, URL-safe token: the request survives a login that replaces the session."""
        return django_signing.dumps(asdict(self), salt=_TOKEN_SALT, compress=True)

    @classmethod
    def from_token(cls, token: str) -> "PendingRequest":
        try:
            fields = django_signing.loads(token, salt=_TOKEN_SALT, max_age=PENDING_MAX_AGE)
            tuples = ("notes", "authn_class_refs", "authn_decl_refs")
            return cls(**{**fields, **{name: tuple(fields.get(name, ())) for name in tuples}})
        except django_signing.SignatureExpired as error:
            raise SamlError(
                "This sign-on request has expired",
                f"It waited more than {PENDING_MAX_AGE // 60} minutes for a login.",
                "Go back to the service provider and start the sign-on again.",
            ) from error
        except (django_signing.BadSignature, TypeError) as error:
            raise SamlError(
                "This sign-on link is not valid",
                "It was altered or cut short, or the IdP's SECRET_KEY changed.",
                "Go back to the service provider and start the sign-on again.",
            ) from error


@dataclass(frozen=True)
class Authentication:
    """Who is signed in at the IdP, and since when."""

    user: AbstractBaseUser
    session_index: str
    authn_instant: float
    # What the sign-in proved (signals.py keeps it in the session); the assertion states it.
    authn_class: str = authn_context.PASSWORD_PROTECTED_TRANSPORT

    def satisfies(self, pending: PendingRequest) -> bool:
        return not pending.force_authn or self.authn_instant >= pending.received_at


def service_provider(entity_id: str, missing_status: int = 400) -> ServiceProvider:
    printable = entity_id.isprintable() and len(entity_id) <= 1024
    sp = cache.service_provider(entity_id) if printable else None
    if sp is None:
        raise SamlError(
            "Unknown service provider",
            f"No service provider with entity ID {entity_id[:1024]!r} is registered at this IdP.",
            "Register it: import its metadata with `python manage.py import_sp_metadata FILE` "
            "or in the admin under Service providers → Import metadata.",
            status=missing_status,
        )
    if not sp.enabled:
        raise SamlError(
            "Service provider disabled",
            f"{sp} is registered but disabled.",
            "Enable it in the admin under Service providers.",
            status=403,
        )
    return sp


def _endpoints(sp: ServiceProvider) -> list[Endpoint]:
    return [Endpoint(e.location, e.binding, e.index, e.is_default) for e in sp.endpoints.all()]


class UncheckableSignature(SamlError):
    def __init__(self, sp: ServiceProvider, what: str = "AuthnRequest"):
        super().__init__(
            f"The {what} is signed, but this IdP cannot check the signature",
            f"No signing certificate is registered for {sp}, so the signature proves nothing "
            "and the request is refused rather than trusted.",
            "Register the SP's signing certificate (re-import its metadata, or paste it in the "
            "admin), or, if unsigned requests are fine, tick 'ignore request signatures it "
            "cannot check' on the SP.",
        )


def verified_signature(
    sp: ServiceProvider, signed: bool, verify: Callable[[str], None], what: str = "AuthnRequest"
) -> bool:
    """Whether the request carries a signature that verified. One that is present verifies,
    or the request is refused; it is treated as absent only if the SP is set up that way.
    Single logout (slo.py) judges LogoutRequests and LogoutResponses by the same rules."""
    certificate = sp.request_certificate.strip()
    if signed and certificate:
        verify(certificate)
        return True
    if signed and not sp.ignore_unverifiable_signatures:
        raise UncheckableSignature(sp, what)
    if sp.require_signed_requests:
        raise SamlError(
            f"The {what} is not signed",
            f"{sp} is configured to accept signed requests only.",
            "Turn on request signing at the SP, or clear 'require signed requests' in the admin.",
        )
    return False


def _request_notes(sp: ServiceProvider, acs_url: str, signature_algorithm: str) -> tuple[str, ...]:
    notes = []
    if signature_algorithm == c.SIG_RSA_SHA1:
        notes.append(f"{sp} {_SHA1_REQUESTS}, which is deprecated; switch the SP to RSA-SHA256.")
    notes += _acs_notes(sp, acs_url)
    return tuple(notes)


def _acs_notes(sp: ServiceProvider, acs_url: str) -> list[str]:
    """Plain http:// to an SP outside AWS (for AWS it is an R9 error already)."""
    return [] if sp.is_checked else [f.message for f in aws.check_transport(acs_url, "The ACS")]


def _pending(
    request: authn_requests.AuthnRequest,
    sp: ServiceProvider,
    relay_state: str,
    signature_algorithm: str = "",
    flow: str = SP_INITIATED,
) -> PendingRequest:
    requested = request.requested_authn_context
    # An ECP asks for PAOS: it relays the response to the ACS itself (profiles §4.2.4).
    # pysaml2's SP asks for SOAP, the binding the response comes back over; taken too.
    bindings_asked = (c.BINDING_POST,)
    if flow == ECP:
        bindings_asked += (c.BINDING_SOAP, c.BINDING_PAOS)
    acs = authn_requests.choose_acs(request, _endpoints(sp), bindings_asked)
    return PendingRequest(
        request_id=request.id,
        sp_entity_id=sp.entity_id,
        acs_url=acs.location,
        relay_state=relay_state,
        force_authn=request.force_authn,
        is_passive=request.is_passive,
        name_id_format=request.name_id_format,
        received_at=time.time(),
        notes=_request_notes(sp, acs.location, signature_algorithm),
        flow=flow,
        authn_comparison=str(requested.comparison) if requested else "",
        authn_class_refs=requested.class_refs if requested else (),
        authn_decl_refs=requested.declaration_refs if requested else (),
    )


def _parse(xml: bytes, endpoint: str = "") -> tuple[authn_requests.AuthnRequest, ServiceProvider]:
    """Parse, check the Destination against the endpoint that received it, find the SP."""
    request = authn_requests.parse(xml)
    endpoint = endpoint or identity.sso_url()
    if request.destination and request.destination != endpoint:
        raise SamlError(
            "The AuthnRequest is addressed to another endpoint",
            f"Its Destination is {request.destination}, but it arrived at this IdP's "
            f"endpoint {endpoint}.",
            "Reload this IdP's metadata at the SP, or set IDP_BASE_URL to the URL the SP uses.",
        )
    sp = service_provider(request.issuer)
    authn_requests.check_fresh(request, _now(), sp.request_max_age)
    return request, sp


def _now() -> datetime.datetime:
    return clock.now()


def receive_redirect(raw_query: str) -> PendingRequest:
    """An AuthnRequest over HTTP-Redirect: decode, parse, check signature and SP registry."""
    fields, signed_octets = bindings.redirect_parameters(raw_query)
    relay_state = bindings.check_relay_state(fields.get("RelayState", ""))
    xml = bindings.decode_redirect(fields.get("SAMLRequest", ""))
    request, sp = _parse(xml)
    if request.is_signed:
        raise SamlError(
            "The HTTP-Redirect request carries an XML signature",
            "Over HTTP-Redirect the signature travels in the Signature and SigAlg parameters; "
            "one inside the deflated AuthnRequest cannot be checked reliably.",
            "Remove the ds:Signature from the AuthnRequest and sign the query string, or post "
            "the signed request over HTTP-POST.",
        )
    signed = "Signature" in fields or "SigAlg" in fields
    algorithm = fields.get("SigAlg", "")
    if signed:
        signing.check_signature_algorithm(algorithm)
        if "Signature" not in fields:
            raise SamlError(
                "SigAlg without a Signature",
                "The query names a signature algorithm but carries no Signature.",
                "Send both Signature and SigAlg, or neither.",
            )
    verified_signature(
        sp,
        signed,
        lambda certificate: signing.verify_detached(
            signed_octets, fields["Signature"], algorithm, certificate
        ),
    )
    return _pending(request, sp, relay_state, algorithm)


def receive_post(fields: Mapping[str, str]) -> PendingRequest:
    """An AuthnRequest over HTTP-POST: decode, parse, check signature and SP registry."""
    relay_state = bindings.check_relay_state(fields.get("RelayState", ""))
    xml = bindings.decode_post(fields.get("SAMLRequest", ""))
    return _receive_xml(xml, relay_state)


def receive_soap(envelope: bytes) -> PendingRequest:
    """An AuthnRequest in a SOAP envelope (the ECP profile): unwrap it, then the same
    checks as HTTP-POST; its Destination, if any, is the ECP endpoint. No RelayState
    comes to the IdP: the ECP keeps the SP's ecp:RelayState itself."""
    return _receive_xml(ecp.unwrap(envelope), "", identity.ecp_url(), ECP)


def _receive_xml(
    xml: bytes, relay_state: str, endpoint: str = "", flow: str = SP_INITIATED
) -> PendingRequest:
    """An AuthnRequest's XML with an enveloped signature, if any (HTTP-POST and SOAP)."""
    root = bindings.parse_xml(xml, "The SAMLRequest")
    # The allow-list runs before anything canonicalises, whatever the SP's settings.
    signature = signing.enveloped_signature(root)
    request, sp = _parse(xml, endpoint)
    verified_signature(
        sp,
        signature is not None,
        lambda certificate: signing.verify_enveloped(root, certificate),
    )
    algorithm = (
        signature.find(f"{{{c.DS}}}SignedInfo/{{{c.DS}}}SignatureMethod").get("Algorithm", "")
        if signature is not None
        else ""
    )
    return _pending(request, sp, relay_state, algorithm, flow)


def _context(
    sp: ServiceProvider,
    acs_url: str,
    in_response_to: str | None,
    now: datetime.datetime,
    session_index: str = "",
    authn_instant: datetime.datetime | None = None,
    authn_class: str = authn_context.PASSWORD_PROTECTED_TRANSPORT,
) -> responses.ResponseContext:
    response_id = responses.new_id()
    return responses.ResponseContext(
        response_id=response_id,
        assertion_id=faults.assertion_id_for(response_id),
        issuer=identity.entity_id(),
        destination=acs_url,
        audience=sp.entity_id,
        in_response_to=in_response_to,
        now=now,
        session_index=session_index,
        authn_instant=authn_instant,
        authn_class=authn_class,
        lifetime=datetime.timedelta(seconds=sp.assertion_lifetime),
    )


def _encryption(sp: ServiceProvider) -> signing.Encryption | None:
    if not sp.encrypt_assertions:
        return None
    return signing.Encryption(sp.encryption_certificate.strip(), sp.encryption_algorithm)


def _signing_options(sp: ServiceProvider, encrypt: bool = True) -> signing.SigningOptions:
    return signing.SigningOptions(
        key=keys.active_key(),
        sign_assertion=sp.sign_assertion or sp.is_checked,
        sign_response=sp.sign_response,
        signature_algorithm=sp.signature_algorithm,
        digest_algorithm=sp.digest_algorithm,
        encryption=_encryption(sp) if encrypt else None,
    )


def _signed_response(
    sp: ServiceProvider,
    release: Release,
    context: responses.ResponseContext,
    encrypt: bool = True,
    fault: scenarios.Fault | None = None,
) -> bytes:
    """responses.build, then signing.sign; a fault scenario alters the built Response, the
    signing options or the signed XML here (its Release and context steps ran in _issue)."""
    root = responses.build(release, context)
    options = _signing_options(sp, encrypt)
    if fault is None:
        return signing.sign_with(root, options)
    root = fault.built(root, context)
    return fault.signed(signing.sign_with(root, fault.signing(options)))


def _size_findings(sp: ServiceProvider, form: bindings.PostForm) -> list[aws.Finding]:
    encoded_length = len(form.fields["SAMLResponse"])
    if not sp.is_checked or encoded_length <= aws.MAX_ENCODED_RESPONSE:
        return []
    return [
        aws.error(
            "R13",
            f"The base64 response is {encoded_length} characters; AWS accepts at most "
            f"{aws.MAX_ENCODED_RESPONSE}. Send fewer roles or attributes.",
        )
    ]


def _audit(flow: str, sp_entity_id: str, outcome: str, **fields) -> None:
    audit.record(flow=flow, sp_entity_id=sp_entity_id, outcome=outcome, **fields)


def _refuse(error: SamlError, flow: str, sp_entity_id: str, username: str, request_id: str = ""):
    _audit(
        flow,
        sp_entity_id,
        AuditEvent.Outcome.REFUSED,
        username=username,
        request_id=request_id,
        detail="\n".join(
            [f"{error.title}: {error.detail}", *map(str, getattr(error, "findings", []))]
        ),
    )
    return error


def _findings(sp: ServiceProvider, release: Release, acs_url: str) -> list[aws.Finding]:
    """What the AWS checker says of this release going to this ACS with these settings."""
    if not sp.is_checked:
        return []
    return list(
        _release_findings(
            release,
            acs_url,
            sp.entity_id,
            sp.profile,
            sp.encrypt_assertions,
            sp.signature_algorithm,
            sp.digest_algorithm,
        )
    )


@functools.lru_cache(maxsize=1024)
def _release_findings(
    release: Release,
    acs_url: str,
    entity_id: str,
    profile: str,
    encrypt: bool,
    signature_algorithm: str,
    digest_algorithm: str,
) -> tuple[aws.Finding, ...]:
    """The checks are pure functions of these values, and a user signs on to the same SP with
    the same release again and again: judged once, not on every sign-on (a twentieth of it)."""
    return tuple(
        aws.check_release(release, profile)
        + aws.check_endpoints(acs_url, [[entity_id]], profile, encrypt)
        + aws.check_partition(acs_url, release.values(aws.ROLE))
        + aws.check_algorithms(signature_algorithm, {digest_algorithm})
    )


class RejectedByChecks(SamlError):
    """The AWS checker found errors and the SP's policy is to block: nothing is sent."""

    def __init__(self, sp: ServiceProvider, findings: list[aws.Finding]):
        super().__init__(
            "AWS would reject this response",
            f"The checks of docs/aws-saml-rules.md found {len(findings)} problem(s) in what "
            f"{sp} would receive, so no response was sent.",
            "Fix the claim rules or the SP's settings in the admin (its preview shows the "
            "rule behind each attribute), or set the SP's check policy to warn.",
            status=409,
        )
        self.findings = findings


def _check_for_aws(
    sp: ServiceProvider, release: Release, acs_url: str, username: str
) -> list[aws.Finding]:
    """The checker's findings; raises if the SP's policy is to block on errors."""
    if not sp.is_checked:
        return []
    if sp.is_aws and not release.values(aws.ROLE):
        raise SamlError(
            "No AWS role for you",
            f"The claim rules of {sp} give {username} no Role: none of the user's directory "
            "groups matches a rule that makes roles (such as groups named "
            "AWS-<account>-<role>). AWS refuses a response without a Role (R1), so none "
            "was sent.",
            "Ask an operator to add you to a group that maps to an AWS role, or to add a "
            "claim rule for your groups.",
            status=403,
        )
    findings = _findings(sp, release, acs_url)
    errors = [f for f in findings if f.severity == "error"]
    if errors and sp.check_policy == ServiceProvider.CheckPolicy.BLOCK:
        raise RejectedByChecks(sp, errors)
    return findings


def _checked_response(sp: ServiceProvider, xml: bytes, now: datetime.datetime):
    """The whole-response checker's findings on what is sent, judged against this IdP's
    published keys and entity ID at `now`, as IAM would hold its metadata."""
    if not sp.is_checked:
        return []
    try:
        return aws.check_response(
            xml,
            now=now,
            certificates=[key.cert_pem for key in keys.published_keys()],
            issuer=identity.entity_id(),
        )
    except SamlError as refusal:  # signature wrapping: refused, not judged
        return [aws.error("SAML", f"The checker refuses the response: {refusal.detail}")]


@dataclass(frozen=True)
class Issued:
    """What _issue sent: the form, the XML in it, and how it was made."""

    form: bindings.PostForm
    xml: bytes
    release: Release
    context: responses.ResponseContext
    findings: list[aws.Finding]
    fault: scenarios.Fault | None


def _issue(
    sp: ServiceProvider,
    release: Release,
    acs_url: str,
    relay_state: str,
    auth: Authentication,
    flow: str,
    in_response_to: str | None,
    notes: tuple[str, ...] = (),
    *,
    fault: scenarios.Fault | None = None,
    as_of: datetime.datetime | None = None,
) -> Issued:
    """Check, build, sign and audit one response. `fault`: a scenario the caller named
    (its findings are returned, never blocked); without one, the SP's fault profile."""
    username = auth.user.get_username()
    explicit = fault is not None
    try:
        fault = fault or faults.fault_profile(sp)
        # The block policy judges the honest release; a scenario then breaks it on purpose.
        findings = _check_for_aws(sp, release, acs_url, username)
    except SamlError as error:
        raise _refuse(error, flow, sp.entity_id, username, in_response_to or "") from None
    now = as_of or _now()
    authn_instant = as_of or clock.from_system(auth.authn_instant)
    context = _context(
        sp, acs_url, in_response_to, now, auth.session_index, authn_instant, auth.authn_class
    )
    if fault is not None:
        release = fault.release(release)
        earlier = faults.last_sent(sp) if fault.scenario.needs_earlier else None
        try:
            context = fault.context(context, earlier)
        except SamlError as error:
            raise _refuse(error, flow, sp.entity_id, username, in_response_to or "") from None
    xml = _signed_response(sp, release, context, fault=fault)
    form = bindings.post_form(acs_url, xml, relay_state)
    # The size is known only now; a mint is refused here as the browser is (a scenario
    # named on purpose, or a profile the warn policy allows, is sent with its findings).
    oversize = _size_findings(sp, form) if fault is None else []
    if oversize and sp.check_policy == ServiceProvider.CheckPolicy.BLOCK:
        raise _refuse(RejectedByChecks(sp, oversize), flow, sp.entity_id, username) from None
    if fault is not None or flow == MINT:
        findings = _checked_response(sp, xml, now)  # the size (R13) included
    else:
        findings += oversize
    faults.remember_sent(sp.entity_id, scenarios.Earlier(context.response_id, context.assertion_id))
    if flow != MINT:  # a mint's one-off session has no browser to sign out
        participants.record(
            participants.Participant(
                auth.session_index,
                username,
                sp.entity_id,
                release.name_id.value,
                release.name_id.format,
                release.name_id.sp_name_qualifier,
            ),
            now,
        )
    _audit(
        flow,
        sp.entity_id,
        AuditEvent.Outcome.SENT,
        username=username,
        request_id=in_response_to or "",
        response_id=context.response_id,
        acs_url=acs_url,
        roles=[p.role_arn for p in aws.role_pairs(release)],
        detail="\n".join(
            [
                *faults.audit_notes(fault, explicit, flow, as_of),
                *(str(f) for f in findings),
                *(f"warning: {n}" for n in notes),
            ]
        ),
    )
    return Issued(form, xml, release, context, findings, fault)


def _claim(pending: PendingRequest, sp: ServiceProvider, username: str = "") -> None:
    """Each AuthnRequest gets one response: a reused resume link or a replay is refused here."""
    try:
        replay.claim(
            sp.entity_id,
            pending.request_id,
            _now(),
            # The widest window any SP may have: widening this SP's later must not
            # let a forgotten claim be answered again.
            keep_for=PENDING_MAX_AGE + 2 * MAX_REQUEST_MAX_AGE,
        )
    except replay.AlreadyAnswered as error:
        raise _refuse(error, pending.flow, sp.entity_id, username, pending.request_id) from None


def refuse(pending: PendingRequest, error: SamlError, username: str = "") -> SamlError:
    """Audit a refusal that a door made after the request passed (ECP: bad credentials)."""
    return _refuse(error, pending.flow, pending.sp_entity_id, username, pending.request_id)


def status_response(pending: PendingRequest, status: str, message: str) -> bindings.PostForm:
    """Tell the SP why no assertion comes (NoPassive, InvalidNameIDPolicy), in a signed Response."""
    sp = service_provider(pending.sp_entity_id)
    _claim(pending, sp)
    return _status_response(sp, pending, status, message)


def _status_response(
    sp: ServiceProvider, pending: PendingRequest, status: str, message: str
) -> bindings.PostForm:
    context = _context(sp, pending.acs_url, pending.request_id, _now())
    root = responses.build_status(context, c.STATUS_RESPONDER, status, message)
    signed = signing.sign(
        root,
        keys.active_key(),
        sign_assertion=False,
        sign_response=True,
        signature_algorithm=sp.signature_algorithm,
        digest_algorithm=sp.digest_algorithm,
    )
    _audit(
        pending.flow,
        sp.entity_id,
        AuditEvent.Outcome.STATUS,
        request_id=pending.request_id,
        response_id=context.response_id,
        acs_url=pending.acs_url,
        detail=f"{status}: {message}",
    )
    return bindings.post_form(pending.acs_url, signed, pending.relay_state)


def refuse_passive(pending: PendingRequest) -> bindings.PostForm:
    return status_response(
        pending, c.STATUS_NO_PASSIVE, "IsPassive was set and the user has no IdP session."
    )


def authn_floor(sp: ServiceProvider) -> str:
    """The weakest class this SP takes whatever it requests: MFA if it requires MFA."""
    return authn_context.MFA if sp.require_mfa else authn_context.UNSPECIFIED


def authn_decision(
    pending: PendingRequest, performed: str | None, achievable=()
) -> authn_context.Decision:
    """Whether a sign-in of class `performed` meets the request and the SP's floor (and if
    not, whether one of the `achievable` classes would): see authn_context.decide."""
    sp = service_provider(pending.sp_entity_id)
    return authn_context.decide(
        pending.requested_authn_context, performed, frozenset(achievable), authn_floor(sp)
    )


def refuse_authn_context(pending: PendingRequest, reason: str) -> bindings.PostForm:
    """NoAuthnContext (core §3.4.1.2): the request cannot be met; never a weaker assertion."""
    sp = service_provider(pending.sp_entity_id)
    return status_response(
        pending,
        c.STATUS_NO_AUTHN_CONTEXT,
        f"{sp} asked for a sign-in this IdP cannot give this user. {reason}"[:1000],
    )


def respond(pending: PendingRequest, auth: Authentication) -> bindings.PostForm:
    """Answer an AuthnRequest for a signed-in user: the assertion states the class that met
    the request (or the SP's floor); a sign-in that meets neither gets NoAuthnContext."""
    sp = service_provider(pending.sp_entity_id)
    decision = authn_decision(pending, auth.authn_class)
    if not isinstance(decision, authn_context.Satisfied):
        return refuse_authn_context(pending, decision.reason)
    auth = replace(auth, authn_class=decision.class_ref)
    _claim(pending, sp, auth.user.get_username())
    try:
        release = claims.release(auth.user, sp, pending.name_id_format)
    except claims.NameIDUnavailable as error:
        if pending.name_id_format:
            return _status_response(sp, pending, c.STATUS_INVALID_NAMEID_POLICY, error.detail)
        raise _refuse(error, pending.flow, sp.entity_id, auth.user.get_username()) from None
    return _issue(
        sp,
        release,
        pending.acs_url,
        pending.relay_state,
        auth,
        pending.flow,
        pending.request_id,
        pending.notes,
    ).form


def _release_for(user, sp: ServiceProvider, role_arn: str, flow: str) -> Release:
    """The claim rules' release; with a role ARN, only that role (which the user must have)."""
    release = claims.release(user, sp)
    if not role_arn:
        return release
    only = aws.only_role(release, role_arn)
    if only is None:
        error = SamlError(
            "You do not have this role",
            f"{user.get_username()} has no role {role_arn[:300]} at {sp}.",
            "Pick one of your roles on the portal, or ask an operator for this one.",
            status=403,
        )
        raise _refuse(error, flow, sp.entity_id, user.get_username())
    return only


def idp_initiated(
    auth: Authentication, entity_id: str, role_arn: str = "", relay_state: str = ""
) -> bindings.PostForm:
    """Unsolicited sign-on from the portal: no AuthnRequest, the SP's default ACS."""
    sp = service_provider(entity_id)
    if not sp.allow_idp_initiated:
        raise SamlError(
            "IdP-initiated sign-on is off for this service provider",
            f"{sp} accepts only sign-ons that it starts itself.",
            "Start at the SP, or allow IdP-initiated sign-on for it in the admin.",
            status=403,
        )
    _check_floor(sp, auth.authn_class, IDP_INITIATED, auth.user.get_username())
    relay_state = bindings.check_relay_state(relay_state or sp.default_relay_state)
    acs = authn_requests.default_endpoint(sp.entity_id, _endpoints(sp))
    release = _release_for(auth.user, sp, role_arn, IDP_INITIATED)
    notes = tuple(_acs_notes(sp, acs.location))
    return _issue(sp, release, acs.location, relay_state, auth, IDP_INITIATED, None, notes).form


@dataclass(frozen=True)
class Minted:
    """A response made without a browser: what the API's sign-ons and mint_response return."""

    saml_response: str  # base64, exactly what the browser would post
    acs_url: str
    relay_state: str
    xml: str  # pretty, as sent
    decrypted_xml: str | None  # the assertion as the SP reads it, only when encrypted
    findings: list[aws.Finding]
    scenario: str | None
    response_id: str


_REQUEST_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,255}")


def _active_user(username: str):
    model = get_user_model()
    user = model._default_manager.filter(**{model.USERNAME_FIELD: username[:150]}).first()
    if user is None:
        raise SamlError(
            "Unknown user",
            f"No user {username[:150]!r} in the directory.",
            "Create the user (admin, API or a fixture), or check the spelling.",
            status=404,
        )
    if not user.is_active:
        raise SamlError(
            "User is inactive",
            f"{username} is in the directory but inactive, and cannot sign on.",
            "Activate the user in the directory admin.",
            status=403,
        )
    return user


# A mint's `now`, with room for the scenarios' shifts (a year of clock skew, a window
# of an hour) before datetime's range ends in year 1 or 9999.
EARLIEST_NOW = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
LATEST_NOW = datetime.datetime(9000, 1, 1, tzinfo=datetime.UTC)


def _aware(now: datetime.datetime | None) -> datetime.datetime | None:
    if now is None:
        return None
    aware = now if now.tzinfo else now.replace(tzinfo=datetime.UTC)
    if not EARLIEST_NOW <= aware <= LATEST_NOW:
        raise SamlError(
            "now is out of range",
            f"{now.isoformat()} is not between {EARLIEST_NOW:%Y} and {LATEST_NOW:%Y}.",
            "Pass an ISO 8601 instant such as 2030-01-01T00:00:00Z, or leave now out for "
            "the IdP's clock.",
        )
    return aware.astimezone(datetime.UTC)


def mint(
    username: str,
    sp_entity_id: str,
    *,
    role_arn: str = "",
    relay_state: str = "",
    in_response_to: str | None = None,
    scenario: str | None = None,
    now: datetime.datetime | None = None,
    authn_context_class: str = "",
) -> Minted:
    """A signed response for a user and an SP, as a browser sign-on would get it.

    IdP-initiated in shape unless `in_response_to` names a request (the SP's own
    request ID; it is not claimed, since this IdP never received it). The same claim
    rules, key, checks and audit as the browser flows; `scenario` breaks it on purpose,
    and its findings are then returned rather than blocked. `now` replaces the IdP's
    clock for this response and its findings. `authn_context_class` says how the user
    signed in (a class URI or short name: X509, MFA, ...; PasswordProtectedTransport
    without it); an SP that requires MFA takes only MFA.
    """
    fault = scenarios.parse(scenario) if scenario else None
    as_of = _aware(now)
    authn_class = _authn_class(authn_context_class)
    _read_your_writes()
    if in_response_to is not None and not _REQUEST_ID.fullmatch(in_response_to):
        raise SamlError(
            "in_response_to is not a request ID",
            f"{in_response_to[:100]!r} is not an xs:ID: it must start with a letter or _ and "
            "hold at most 256 letters, digits, _ . or -.",
            "Pass the ID attribute of the SP's AuthnRequest, or leave it out for an "
            "IdP-initiated response.",
        )
    sp = service_provider(sp_entity_id, missing_status=404)
    user = _active_user(username)
    _check_floor(sp, authn_class, MINT, user.get_username())
    relay_state = bindings.check_relay_state(relay_state or sp.default_relay_state)
    acs = authn_requests.default_endpoint(sp.entity_id, _endpoints(sp))
    release = _release_for(user, sp, role_arn, MINT)
    # A one-off IdP session: the response has a SessionIndex, as a browser's does.
    auth = Authentication(
        user, "_" + secrets.token_hex(16), clock.system_now().timestamp(), authn_class
    )
    issued = _issue(
        sp,
        release,
        acs.location,
        relay_state,
        auth,
        MINT,
        in_response_to or None,
        tuple(_acs_notes(sp, acs.location)),
        fault=fault,
        as_of=as_of,
    )
    encrypted = etree.fromstring(issued.xml).find(f"{{{c.SAML}}}EncryptedAssertion") is not None
    return Minted(
        saml_response=issued.form.fields["SAMLResponse"],
        acs_url=acs.location,
        relay_state=relay_state,
        xml=_pretty(issued.xml),
        decrypted_xml=(
            _pretty(_signed_response(sp, issued.release, issued.context, False, issued.fault))
            if encrypted
            else None
        ),
        findings=issued.findings,
        scenario=issued.fault.name if issued.fault else None,
        response_id=issued.context.response_id,
    )


class MfaRequired(SamlError):
    def __init__(self, sp: ServiceProvider, performed: str):
        super().__init__(
            "This service provider requires multi-factor sign-in",
            f"{sp} takes only assertions after a password and a TOTP code; this sign-in was "
            f"{authn_context.short_name(performed)}.",
            "Sign in again with your TOTP code (enrol one at /accounts/mfa/ first), or, for a "
            "mint, pass authn_context MFA.",
            status=403,
        )


def _check_floor(sp: ServiceProvider, performed: str, flow: str, username: str) -> None:
    """No password-only assertion goes to an SP that requires MFA, by any door."""
    floor = authn_floor(sp)
    if authn_context.STRENGTH.get(performed, -1) < authn_context.STRENGTH[floor]:
        raise _refuse(MfaRequired(sp, performed), flow, sp.entity_id, username)


def _authn_class(text: str) -> str:
    """A mint's stated class: how the user signed in, since no browser did."""
    if not text:
        return authn_context.PASSWORD_PROTECTED_TRANSPORT
    try:
        return authn_context.parse_class(text)
    except ValueError as error:
        raise SamlError(
            "Unknown authentication context class",
            str(error),
            "Pass authn_context as a class URI or short name, or leave it out for "
            "PasswordProtectedTransport.",
        ) from error


@dataclass(frozen=True)
class Preview:
    """What one user would send one SP, and why: the admin's answer to "why this role?"."""

    release: Release
    evaluation: claims.Evaluation
    findings: list[aws.Finding]
    condition_keys: list[tuple[str, str]]
    acs_url: str
    xml: str
    decrypted_xml: str  # what the SP reads after decryption; the same as xml when not encrypted


def _pretty(xml: bytes) -> str:
    return etree.tostring(etree.fromstring(xml), pretty_print=True).decode()


_SHA1_REQUESTS = "signs its AuthnRequests with RSA-SHA1"


def _security_findings(sp: ServiceProvider, acs_url: str) -> list[aws.Finding]:
    """What the preview warns of beyond AWS's rules: plain http, and SHA-1 on either side."""
    notes = _acs_notes(sp, acs_url)
    sha1 = sp.signature_algorithm == c.SIG_RSA_SHA1 or sp.digest_algorithm == c.DIGEST_SHA1
    if not sp.is_checked and sha1:
        notes.append(
            f"{sp}'s responses are signed with SHA-1; use SHA-256 unless the SP cannot verify it."
        )
    last_request = (
        AuditEvent.objects.filter(sp_entity_id=sp.entity_id, flow__in=(SP_INITIATED, ECP))
        .order_by("-created_at")
        .values_list("detail", flat=True)
        .first()
    )
    if last_request and _SHA1_REQUESTS in last_request:
        notes.append(f"The last AuthnRequest from {sp} was signed with RSA-SHA1 (see the audit).")
    return [aws.warning("SEC", note) for note in notes]


def _read_your_writes() -> None:
    """A caller that has just changed the directory or the rules through another worker
    (an API client, the admin) expects a mint or a preview to see it, so these check the
    configuration generation now instead of within the watcher's half second. One query,
    and never on the browser's sign-on path."""
    cache.refresh()


def _preview_class(sp: ServiceProvider) -> str:
    return authn_context.MFA if sp.require_mfa else authn_context.PASSWORD_PROTECTED_TRANSPORT


def preview(user, sp: ServiceProvider) -> Preview:
    """The IdP-initiated response for this user, built and signed, but neither sent nor logged."""
    _read_your_writes()
    acs = authn_requests.default_endpoint(sp.entity_id, _endpoints(sp))
    evaluation = claims.evaluate_for(user, sp)
    release = Release(claims.name_id_for(user, sp), evaluation.attributes)
    # The class a sign-on would state: an SP that requires MFA never gets a password alone.
    context = _context(sp, acs.location, None, _now(), authn_class=_preview_class(sp))
    signed = _signed_response(sp, release, context)
    findings = (
        _findings(sp, release, acs.location)
        + _size_findings(sp, bindings.post_form(acs.location, signed))
        + _security_findings(sp, acs.location)
    )
    return Preview(
        release=release,
        evaluation=evaluation,
        findings=findings,
        condition_keys=aws.condition_keys(release, context.issuer, acs.location),
        acs_url=acs.location,
        xml=_pretty(signed),
        decrypted_xml=(
            _pretty(_signed_response(sp, release, context, encrypt=False))
            if sp.encrypt_assertions
            else _pretty(signed)
        ),
    )
