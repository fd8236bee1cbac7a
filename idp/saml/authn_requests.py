"""Parse an AuthnRequest, judge its freshness, and choose where its response goes."""

import datetime
import re
from dataclasses import dataclass

from saml2 import samlp

from .. import authn_context
from . import constants as c
from .bindings import parse_xml
from .errors import SamlError
from .metadata import Endpoint


@dataclass(frozen=True)
class AuthnRequest:
    id: str
    issuer: str
    issue_instant: str
    destination: str
    acs_url: str
    acs_index: int | None
    protocol_binding: str
    force_authn: bool
    is_passive: bool
    name_id_format: str
    is_signed: bool
    requested_authn_context: authn_context.Requested | None = None


MAX_ID_LENGTH = 256


def _flag(value: str | None, name: str) -> bool:
    if value is None:
        return False
    if value.strip() not in {"true", "false", "1", "0"}:
        raise SamlError(
            f"{name} is not a boolean",
            f"It is {value!r}; xs:boolean allows true, false, 1 and 0.",
            f'Set {name}="true" or leave it out.',
        )
    return value.strip() in {"true", "1"}


_DATE_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)?")


def _instant(value: str) -> datetime.datetime:
    try:
        if not _DATE_TIME.fullmatch(value):  # fromisoformat alone also takes 20261121T1200
            raise ValueError(value)
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise SamlError(
            "The AuthnRequest has an invalid IssueInstant",
            f"{value[:100]!r} is not an xs:dateTime.",
            "Use the form 2024-01-31T12:00:00Z.",
        ) from error
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def check_fresh(request: "AuthnRequest", now: datetime.datetime, max_age_seconds: int) -> None:
    """Refuse a request issued further than the window from `now`, either way.

    A stale request is a replay or a stuck SP; one from the future is a wrong clock.
    """
    issued = _instant(request.issue_instant)
    skew = (now - issued).total_seconds()
    if abs(skew) > max_age_seconds:
        when = "ago" if skew > 0 else "in the future"
        raise SamlError(
            "The AuthnRequest is not fresh",
            f"It was issued at {request.issue_instant}, {abs(skew):.0f} s {when}; this IdP "
            f"accepts requests within {max_age_seconds} s of its clock ({now:%Y-%m-%dT%H:%M:%SZ}).",
            "Start the sign-on again at the SP, and check both clocks (NTP). The window is the "
            "SP's 'AuthnRequest clock window' in the admin.",
        )


def parse(xml: bytes) -> AuthnRequest:
    root = parse_xml(xml, "The SAMLRequest")
    if root.tag != f"{{{c.SAMLP}}}AuthnRequest":
        raise SamlError(
            "The SAMLRequest is not an AuthnRequest",
            f"Its root element is {root.tag}.",
            "Send a samlp:AuthnRequest to this endpoint.",
        )
    version = root.get("Version")
    if version != "2.0":
        raise SamlError(
            "Unsupported SAML version",
            f"The AuthnRequest has Version={version!r}; this IdP speaks SAML 2.0 only.",
            'Set Version="2.0" on the AuthnRequest.',
        )
    issuer = root.find(f"{{{c.SAML}}}Issuer")
    if issuer is not None and len(issuer):
        raise SamlError(
            "The AuthnRequest Issuer holds markup",
            "The Issuer must be plain text: the SP's entity ID.",
            "Send <saml:Issuer>entity ID</saml:Issuer> with no elements or comments inside.",
        )
    request = samlp.authn_request_from_string(xml)
    if not request.id:
        raise SamlError("The AuthnRequest has no ID", hint="Give the AuthnRequest an ID attribute.")
    if len(request.id) > MAX_ID_LENGTH:
        raise SamlError(
            "The AuthnRequest ID is too long",
            f"It has {len(request.id)} characters; this IdP accepts up to {MAX_ID_LENGTH}.",
            "SAML IDs are usually 20 to 50 characters; use a shorter random ID.",
        )
    if request.issuer is None or not (request.issuer.text or "").strip():
        raise SamlError(
            "The AuthnRequest has no Issuer",
            "The IdP cannot tell which service provider sent it.",
            "Add <saml:Issuer> with the SP's entity ID.",
        )
    _instant(request.issue_instant or "")
    index = request.assertion_consumer_service_index
    try:
        acs_index = int(index) if index is not None else None
    except ValueError as error:
        raise SamlError(
            "AssertionConsumerServiceIndex is not a number",
            f"It is {index!r}.",
            "Use the index of one of the SP's registered ACS endpoints, or send its URL.",
        ) from error
    policy = request.name_id_policy
    return AuthnRequest(
        id=request.id,
        issuer=request.issuer.text.strip(),
        issue_instant=request.issue_instant,
        destination=request.destination or "",
        acs_url=request.assertion_consumer_service_url or "",
        acs_index=acs_index,
        protocol_binding=request.protocol_binding or "",
        force_authn=_flag(request.force_authn, "ForceAuthn"),
        is_passive=_flag(request.is_passive, "IsPassive"),
        name_id_format=(policy.format or "") if policy is not None else "",
        is_signed=request.signature is not None,
        requested_authn_context=_requested_authn_context(request.requested_authn_context),
    )


MAX_CLASS_REFS = 20


def _requested_authn_context(element) -> authn_context.Requested | None:
    """RequestedAuthnContext (core §3.3.2.2.1): Comparison defaults to exact."""
    if element is None:
        return None
    comparison = (element.comparison or "exact").strip()
    if comparison not in {member.value for member in authn_context.Comparison}:
        raise SamlError(
            "RequestedAuthnContext has an unknown Comparison",
            f"It is {comparison[:50]!r}; SAML allows exact, minimum, better and maximum.",
            'Set Comparison="exact" (or minimum, better, maximum), or leave it out for exact.',
        )
    class_refs = tuple((ref.text or "").strip() for ref in element.authn_context_class_ref)
    decl_refs = tuple((ref.text or "").strip() for ref in element.authn_context_decl_ref)
    if len(class_refs) + len(decl_refs) > MAX_CLASS_REFS or not (class_refs or decl_refs):
        raise SamlError(
            "RequestedAuthnContext lists no class, or too many",
            f"It lists {len(class_refs) + len(decl_refs)} references; this IdP reads 1 to "
            f"{MAX_CLASS_REFS}.",
            "List the AuthnContextClassRef values the SP accepts, in order of preference.",
        )
    if any(not ref or len(ref) > 1024 or not ref.isprintable() for ref in class_refs + decl_refs):
        raise SamlError(
            "RequestedAuthnContext holds an invalid reference",
            "A class reference is empty, longer than 1024 characters or holds control characters.",
            "Send class references such as "
            "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport.",
        )
    return authn_context.Requested(authn_context.Comparison(comparison), class_refs, decl_refs)


def choose_acs(
    request: AuthnRequest,
    registered: list[Endpoint],
    bindings_asked: tuple[str, ...] = (c.BINDING_POST,),
) -> Endpoint:
    """The registered endpoint the request names, or the SP's default one.

    `bindings_asked`: the ProtocolBindings this door answers. The ECP door takes PAOS too;
    the ECP relays the response to the URL, which must still be one of the SP's registered
    ACS locations (they are stored as HTTP-POST: PAOS entries are skipped on import).
    """
    if request.protocol_binding and request.protocol_binding not in bindings_asked:
        raise SamlError(
            "Unsupported response binding",
            f"The request asks for {request.protocol_binding}; this endpoint answers with "
            f"{' or '.join(b.rsplit(':', 1)[-1] for b in bindings_asked)}.",
            f"Set ProtocolBinding to {bindings_asked[-1]} or leave it out.",
        )
    post_endpoints = [e for e in registered if e.binding == c.BINDING_POST]
    if request.acs_url:
        for endpoint in post_endpoints:
            if endpoint.location == request.acs_url:
                return endpoint
        known = ", ".join(e.location for e in post_endpoints) or "none"
        raise SamlError(
            "The AssertionConsumerServiceURL is not registered",
            f"{request.issuer} asked for a response at {request.acs_url}, which is not one of "
            f"its registered HTTP-POST ACS endpoints ({known}). The IdP never posts to an "
            "unregistered URL.",
            "Add the URL as an ACS endpoint of this SP in the IdP admin, or re-import the "
            "SP's metadata.",
        )
    if request.acs_index is not None:
        for endpoint in post_endpoints:
            if endpoint.index == request.acs_index:
                return endpoint
        raise SamlError(
            "The AssertionConsumerServiceIndex is not registered",
            f"{request.issuer} has no HTTP-POST ACS endpoint with index {request.acs_index}.",
            "Register an endpoint with that index, or re-import the SP's metadata.",
        )
    return default_endpoint(request.issuer, post_endpoints)


def default_endpoint(entity_id: str, endpoints: list[Endpoint]) -> Endpoint:
    post_endpoints = [e for e in endpoints if e.binding == c.BINDING_POST]
    if not post_endpoints:
        raise SamlError(
            "The service provider has no HTTP-POST ACS endpoint",
            f"{entity_id} has nowhere this IdP can post a response.",
            "Register an HTTP-POST AssertionConsumerService for it in the IdP admin.",
        )
    defaults = [e for e in post_endpoints if e.is_default]
    return (defaults or sorted(post_endpoints, key=lambda e: e.index))[0]
