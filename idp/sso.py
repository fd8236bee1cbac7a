"""The sign-on pipeline, in order:

    bindings.decode -> requests.parse (+ SP registry) -> [login] -> claims.release
    -> aws checks -> responses.build -> signing.sign -> bindings.post_form -> AuditEvent

This is the only module that calls every step. Views hand it plain mappings and
render what it returns; IdP-initiated sign-on enters at claims.release.
"""

import datetime
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import Prefetch

from . import claims, identity, keys
from .models import AuditEvent, ClaimRule, ServiceProvider
from .saml import aws, bindings, requests, responses, signing
from .saml import constants as c
from .saml.errors import SamlError
from .saml.metadata import Endpoint
from .saml.release import Release

SP_INITIATED = "sp-initiated"
IDP_INITIATED = "idp-initiated"


@dataclass(frozen=True)
class PendingRequest:
    """An AuthnRequest that passed every check, waiting for the user; fits in a session."""

    request_id: str
    sp_entity_id: str
    acs_url: str
    relay_state: str
    force_authn: bool
    is_passive: bool
    name_id_format: str
    received_at: float

    def to_session(self) -> dict:
        return asdict(self)

    @classmethod
    def from_session(cls, data: Mapping) -> "PendingRequest":
        return cls(**data)


@dataclass(frozen=True)
class Authentication:
    """Who is signed in at the IdP, and since when."""

    user: AbstractBaseUser
    session_index: str
    authn_instant: float

    def satisfies(self, pending: PendingRequest) -> bool:
        return not pending.force_authn or self.authn_instant >= pending.received_at


def _service_provider(entity_id: str) -> ServiceProvider:
    rules = Prefetch("rules", queryset=ClaimRule.objects.filter(enabled=True))
    sp = (
        ServiceProvider.objects.prefetch_related("endpoints", rules)
        .filter(entity_id=entity_id)
        .first()
    )
    if sp is None:
        raise SamlError(
            "Unknown service provider",
            f"No service provider with entity ID {entity_id!r} is registered at this IdP.",
            "Register it: import its metadata with `python manage.py import_sp_metadata FILE` "
            "or in the admin under Service providers → Import metadata.",
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


def _redirect_signed_octets(raw_query: str) -> bytes:
    """The HTTP-Redirect signature covers the query parameters exactly as they were encoded."""
    raw = dict(part.split("=", 1) for part in raw_query.split("&") if "=" in part)
    names = [n for n in ("SAMLRequest", "RelayState", "SigAlg") if n in raw]
    return "&".join(f"{n}={raw[n]}" for n in names).encode()


def _check_request_signature(
    sp: ServiceProvider,
    request: requests.AuthnRequest,
    binding: str,
    xml: bytes,
    fields: Mapping[str, str],
    raw_query: str,
) -> None:
    certificate = sp.request_certificate.strip()
    if binding == c.BINDING_REDIRECT:
        signed = "Signature" in fields
        if signed and certificate:
            signing.verify_detached(
                _redirect_signed_octets(raw_query),
                fields["Signature"],
                fields.get("SigAlg", ""),
                certificate,
            )
    else:
        signed = request.is_signed
        if signed and certificate:
            signing.verify_enveloped(bindings.parse_xml(xml), certificate)
    if sp.require_signed_requests and not signed:
        raise SamlError(
            "The AuthnRequest is not signed",
            f"{sp} is configured to send signed AuthnRequests only.",
            "Turn on request signing at the SP, or clear 'require signed requests' in the admin.",
        )


def receive(binding: str, fields: Mapping[str, str], raw_query: str = "") -> PendingRequest:
    """Decode, parse and check an AuthnRequest against the SP registry."""
    relay_state = bindings.check_relay_state(fields.get("RelayState", ""))
    encoded = fields.get("SAMLRequest", "")
    if binding == c.BINDING_REDIRECT:
        xml = bindings.decode_redirect(encoded)
    else:
        xml = bindings.decode_post(encoded)
    request = requests.parse(xml)
    if request.destination and request.destination != identity.sso_url():
        raise SamlError(
            "The AuthnRequest is addressed to another endpoint",
            f"Its Destination is {request.destination}, but this IdP's SSO endpoint is "
            f"{identity.sso_url()}.",
            "Reload this IdP's metadata at the SP, or set IDP_BASE_URL to the URL the SP uses.",
        )
    sp = _service_provider(request.issuer)
    _check_request_signature(sp, request, binding, xml, fields, raw_query)
    acs = requests.choose_acs(request, _endpoints(sp))
    return PendingRequest(
        request_id=request.id,
        sp_entity_id=sp.entity_id,
        acs_url=acs.location,
        relay_state=relay_state,
        force_authn=request.force_authn,
        is_passive=request.is_passive,
        name_id_format=request.name_id_format,
        received_at=time.time(),
    )


def _context(sp: ServiceProvider, acs_url: str, in_response_to: str | None, auth=None):
    return responses.ResponseContext(
        issuer=identity.entity_id(),
        destination=acs_url,
        audience=sp.entity_id,
        in_response_to=in_response_to,
        now=datetime.datetime.now(datetime.UTC),
        session_index=auth.session_index if auth else "",
        authn_instant=(
            datetime.datetime.fromtimestamp(auth.authn_instant, datetime.UTC) if auth else None
        ),
        lifetime=datetime.timedelta(seconds=sp.assertion_lifetime),
    )


def _audit(flow: str, sp_entity_id: str, outcome: str, **fields) -> None:
    AuditEvent.objects.create(flow=flow, sp_entity_id=sp_entity_id, outcome=outcome, **fields)


def _refuse(error: SamlError, flow: str, sp_entity_id: str, username: str, request_id: str = ""):
    _audit(
        flow,
        sp_entity_id,
        AuditEvent.Outcome.REFUSED,
        username=username,
        request_id=request_id,
        detail=f"{error.title}: {error.detail}",
    )
    return error


def _check_for_aws(sp: ServiceProvider, release: Release, username: str) -> None:
    if not sp.is_aws:
        return
    if not aws.role_pairs(release):
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
    errors = [f for f in aws.check_release(release) if f.severity == "error"]
    if errors:
        raise SamlError(
            "AWS would reject this response",
            " ".join(str(f) for f in errors),
            "Fix the claim rules of this service provider in the admin.",
            status=409,
        )


def _issue(
    sp: ServiceProvider,
    release: Release,
    acs_url: str,
    relay_state: str,
    auth: Authentication,
    flow: str,
    in_response_to: str | None,
) -> bindings.PostForm:
    username = auth.user.get_username()
    try:
        _check_for_aws(sp, release, username)
    except SamlError as error:
        raise _refuse(error, flow, sp.entity_id, username, in_response_to or "") from None
    context = _context(sp, acs_url, in_response_to, auth)
    signed = signing.sign(
        responses.build(release, context),
        keys.active_key(),
        sign_assertion=sp.sign_assertion or sp.is_aws,
        sign_response=sp.sign_response,
        signature_algorithm=sp.signature_algorithm,
        digest_algorithm=sp.digest_algorithm,
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
    )
    return bindings.post_form(acs_url, signed, relay_state)


def status_response(pending: PendingRequest, status: str, message: str) -> bindings.PostForm:
    """Tell the SP why no assertion comes (NoPassive, InvalidNameIDPolicy), in a signed Response."""
    sp = _service_provider(pending.sp_entity_id)
    context = _context(sp, pending.acs_url, pending.request_id)
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
        SP_INITIATED,
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


def respond(pending: PendingRequest, auth: Authentication) -> bindings.PostForm:
    """Answer an AuthnRequest for a signed-in user."""
    sp = _service_provider(pending.sp_entity_id)
    try:
        release = claims.release(auth.user, sp, pending.name_id_format)
    except claims.NameIDUnavailable as error:
        if pending.name_id_format:
            return status_response(pending, c.STATUS_INVALID_NAMEID_POLICY, error.detail)
        raise _refuse(error, SP_INITIATED, sp.entity_id, auth.user.get_username()) from None
    return _issue(
        sp, release, pending.acs_url, pending.relay_state, auth, SP_INITIATED, pending.request_id
    )


def idp_initiated(
    auth: Authentication, entity_id: str, role_arn: str = "", relay_state: str = ""
) -> bindings.PostForm:
    """Unsolicited sign-on from the portal: no AuthnRequest, the SP's default ACS."""
    sp = _service_provider(entity_id)
    if not sp.allow_idp_initiated:
        raise SamlError(
            "IdP-initiated sign-on is off for this service provider",
            f"{sp} accepts only sign-ons that it starts itself.",
            "Start at the SP, or allow IdP-initiated sign-on for it in the admin.",
            status=403,
        )
    relay_state = bindings.check_relay_state(relay_state or sp.default_relay_state)
    acs = requests.default_endpoint(sp.entity_id, _endpoints(sp))
    release = claims.release(auth.user, sp)
    if role_arn:
        release = aws.only_role(release, role_arn)
        if release is None:
            error = SamlError(
                "You do not have this role",
                f"{auth.user.get_username()} has no role {role_arn} at {sp}.",
                "Pick one of your roles on the portal, or ask an operator for this one.",
                status=403,
            )
            raise _refuse(error, IDP_INITIATED, sp.entity_id, auth.user.get_username())
    return _issue(sp, release, acs.location, relay_state, auth, IDP_INITIATED, None)
