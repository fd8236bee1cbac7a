"""Build a SAML Response (and its Assertion) from a Release."""

import datetime
import secrets
from dataclasses import dataclass, field

from lxml import etree

from . import constants as c
from .errors import SamlError
from .release import Release

# R12: AWS rejects an assertion redeemed more than five minutes after issue.
DEFAULT_LIFETIME = datetime.timedelta(minutes=5)
CLOCK_SKEW = datetime.timedelta(seconds=30)

# The Response declares samlp only; the Issuer and the Assertion declare what they
# use, so an Assertion that is encrypted (or cut out by an SP) still stands alone.
_RESPONSE_NSMAP = {"samlp": c.SAMLP}
_ISSUER_NSMAP = {"saml": c.SAML}
_ASSERTION_NSMAP = {"saml": c.SAML, "xs": c.XS, "xsi": c.XSI}
_STRING_VALUE = {f"{{{c.XSI}}}type": "xs:string"}
_ATTRIBUTE_VALUE = f"{{{c.SAML}}}AttributeValue"


def new_id() -> str:
    # xs:ID must not start with a digit.
    return "_" + secrets.token_hex(20)


def timestamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ResponseContext:
    """Everything about one response that is not the user's data."""

    issuer: str
    destination: str
    audience: str
    in_response_to: str | None
    now: datetime.datetime
    session_index: str = ""
    authn_instant: datetime.datetime | None = None
    authn_class: str = c.AUTHN_CONTEXT_PASSWORD  # AuthnContextClassRef: what the sign-in proved
    lifetime: datetime.timedelta = DEFAULT_LIFETIME
    response_id: str = field(default_factory=new_id)
    assertion_id: str = field(default_factory=new_id)


def _element(parent: etree._Element, namespace: str, tag: str, **attributes: str):
    return etree.SubElement(parent, f"{{{namespace}}}{tag}", attributes)


def _text(element: etree._Element, text: str, what: str, name: str = "") -> None:
    try:
        element.text = text
    except ValueError as error:
        raise SamlError(
            "A value cannot go into XML",
            f"{what}{name} {text!r} holds control characters, which XML cannot carry.",
            "Fix the user's data in the directory admin.",
            status=409,
        ) from error


def _response_root(context: ResponseContext, status: str, sub_status: str, message: str):
    response = etree.Element(
        f"{{{c.SAMLP}}}Response",
        {
            "ID": context.response_id,
            "Version": "2.0",
            "IssueInstant": timestamp(context.now),
            "Destination": context.destination,
        },
        nsmap=_RESPONSE_NSMAP,
    )
    if context.in_response_to:
        response.set("InResponseTo", context.in_response_to)
    etree.SubElement(response, f"{{{c.SAML}}}Issuer", nsmap=_ISSUER_NSMAP).text = context.issuer
    status_element = _element(response, c.SAMLP, "Status")
    code = _element(status_element, c.SAMLP, "StatusCode", Value=status)
    if sub_status:
        _element(code, c.SAMLP, "StatusCode", Value=sub_status)
    if message:
        _element(status_element, c.SAMLP, "StatusMessage").text = message
    return response


def build(release: Release, context: ResponseContext) -> etree._Element:
    """A successful Response holding one unsigned Assertion about the release."""
    try:
        return _build(release, context)
    except ValueError as error:  # lxml refuses control characters in names and values
        raise SamlError(
            "A value cannot go into XML",
            f"Building the response failed: {error}.",
            "Remove control characters from the SP's settings and claim rules in the admin.",
            status=409,
        ) from error


def _build(release: Release, context: ResponseContext) -> etree._Element:
    response = _response_root(context, c.STATUS_SUCCESS, "", "")
    issued = response.get("IssueInstant")
    not_on_or_after = timestamp(context.now + context.lifetime)

    assertion = etree.SubElement(
        response,
        f"{{{c.SAML}}}Assertion",
        {"ID": context.assertion_id, "Version": "2.0", "IssueInstant": issued},
        nsmap=_ASSERTION_NSMAP,
    )
    _element(assertion, c.SAML, "Issuer").text = context.issuer

    subject = _element(assertion, c.SAML, "Subject")
    name_id = _element(subject, c.SAML, "NameID", Format=release.name_id.format)
    if release.name_id.sp_name_qualifier:
        name_id.set("SPNameQualifier", release.name_id.sp_name_qualifier)
    _text(name_id, release.name_id.value, "The NameID")
    confirmation = _element(subject, c.SAML, "SubjectConfirmation", Method=c.CONFIRMATION_BEARER)
    confirmation_data = _element(
        confirmation,
        c.SAML,
        "SubjectConfirmationData",
        NotOnOrAfter=not_on_or_after,
        Recipient=context.destination,
    )
    if context.in_response_to:
        confirmation_data.set("InResponseTo", context.in_response_to)

    conditions = _element(
        assertion,
        c.SAML,
        "Conditions",
        NotBefore=timestamp(context.now - CLOCK_SKEW),
        NotOnOrAfter=not_on_or_after,
    )
    restriction = _element(conditions, c.SAML, "AudienceRestriction")
    _element(restriction, c.SAML, "Audience").text = context.audience

    authn = _element(
        assertion,
        c.SAML,
        "AuthnStatement",
        AuthnInstant=timestamp(context.authn_instant) if context.authn_instant else issued,
    )
    if context.session_index:
        authn.set("SessionIndex", context.session_index)
    authn_context = _element(authn, c.SAML, "AuthnContext")
    _element(authn_context, c.SAML, "AuthnContextClassRef").text = context.authn_class

    if release.attributes:
        statement = _element(assertion, c.SAML, "AttributeStatement")
        for attribute in release.attributes:
            element = _element(
                statement,
                c.SAML,
                "Attribute",
                Name=attribute.name,
                NameFormat=attribute.name_format,
            )
            if attribute.friendly_name:
                element.set("FriendlyName", attribute.friendly_name)
            for value in attribute.values:
                value_element = etree.SubElement(element, _ATTRIBUTE_VALUE, _STRING_VALUE)
                _text(value_element, value, "A value of ", attribute.name)
    return response


def build_status(
    context: ResponseContext, status: str, sub_status: str = "", message: str = ""
) -> etree._Element:
    """A Response with no Assertion, reporting why the IdP did not authenticate."""
    return _response_root(context, status, sub_status, message)
