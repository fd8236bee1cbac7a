"""Single logout messages (SAML core §3.7): parse LogoutRequest and LogoutResponse, build both.

Pure: bytes and dataclasses in, lxml elements out; no ORM, no request, `now` passed in.
Parsing follows authn_requests.py: our safe lxml parser first (no DTD, no entities),
then pysaml2's classes for the fields.
"""

import datetime
import re
import secrets
from dataclasses import dataclass

from lxml import etree
from saml2 import samlp

from . import constants as c
from .bindings import parse_xml
from .errors import SamlError
from .release import NameID

STATUS_PARTIAL_LOGOUT = "urn:oasis:names:tc:SAML:2.0:status:PartialLogout"
MAX_ID_LENGTH = 256
MAX_SESSION_INDEXES = 20


@dataclass(frozen=True)
class LogoutRequest:
    id: str
    issuer: str
    issue_instant: datetime.datetime
    destination: str
    not_on_or_after: datetime.datetime | None
    name_id: NameID
    session_indexes: tuple[str, ...]
    is_signed: bool


@dataclass(frozen=True)
class LogoutResponse:
    id: str
    issuer: str
    in_response_to: str
    destination: str
    status: str
    sub_status: str
    message: str
    is_signed: bool

    @property
    def succeeded(self) -> bool:
        return self.status == c.STATUS_SUCCESS


_DATE_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)?")


def _instant(value: str, what: str) -> datetime.datetime:
    try:
        if not _DATE_TIME.fullmatch(value):
            raise ValueError(value)
        # Python parses at most microseconds: cut longer fractions (xs:dateTime allows them).
        value = re.sub(r"(\.\d{6})\d+", r"\1", value.replace("Z", "+00:00"))
        moment = datetime.datetime.fromisoformat(value)
    except ValueError as error:
        raise SamlError(
            f"The {what} is not a valid xs:dateTime",
            f"{value[:100]!r} is not of the form 2024-01-31T12:00:00Z.",
            "Send instants in UTC, such as 2024-01-31T12:00:00Z.",
        ) from error
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def _root(xml: bytes, local_name: str, field: str) -> etree._Element:
    root = parse_xml(xml, f"The {field}")
    if root.tag != f"{{{c.SAMLP}}}{local_name}":
        raise SamlError(
            f"The {field} is not a {local_name}",
            f"Its root element is {root.tag[:200]}.",
            f"Send a samlp:{local_name} as {field} to this endpoint.",
        )
    if root.get("Version") != "2.0":
        raise SamlError(
            "Unsupported SAML version",
            f"The {local_name} has Version={root.get('Version')!r}; this IdP speaks SAML 2.0.",
            f'Set Version="2.0" on the {local_name}.',
        )
    message_id = root.get("ID") or ""
    if not message_id or len(message_id) > MAX_ID_LENGTH:
        raise SamlError(
            f"The {local_name} has no usable ID",
            f"Its ID must be present and at most {MAX_ID_LENGTH} characters.",
            f"Give the {local_name} a random ID attribute such as _5f2c….",
        )
    _at_most_one(root, f"{{{c.SAML}}}Issuer", what=local_name)
    issuer = root.find(f"{{{c.SAML}}}Issuer")
    if issuer is None or len(issuer) or not (issuer.text or "").strip():
        raise SamlError(
            f"The {local_name} has no usable Issuer",
            "The IdP cannot tell which service provider sent it without a plain-text Issuer.",
            "Add <saml:Issuer> with the SP's entity ID, and nothing else inside it.",
        )
    return root


def _at_most_one(root: etree._Element, *tags: str, what: str) -> None:
    """The schema allows one: pysaml2 reads the last of several, these checks the first."""
    found = [child for child in root if child.tag in tags]
    if len(found) > 1:
        names = " or ".join(tag.rsplit("}", 1)[-1] for tag in tags)
        raise SamlError(
            f"The {what} carries {len(found)} {names} elements",
            f"SAML allows one {names} here, and the IdP will not guess which one counts.",
            f"Send exactly one {names}.",
        )


def parse_request(xml: bytes) -> LogoutRequest:
    root = _root(xml, "LogoutRequest", "SAMLRequest")
    _at_most_one(
        root,
        f"{{{c.SAML}}}BaseID",
        f"{{{c.SAML}}}NameID",
        f"{{{c.SAML}}}EncryptedID",
        what="LogoutRequest",
    )
    if root.find(f"{{{c.SAML}}}EncryptedID") is not None:
        raise SamlError(
            "The LogoutRequest carries an EncryptedID",
            "This IdP never encrypts NameIDs, so it cannot have issued this one.",
            "Send the NameID as the IdP sent it, in a plain saml:NameID.",
        )
    request = samlp.logout_request_from_string(xml)
    if request.name_id is None or not (request.name_id.text or "").strip():
        raise SamlError(
            "The LogoutRequest names no user",
            "It carries no NameID, so the IdP cannot tell whose session to end.",
            "Send the NameID of the assertion the SP received.",
        )
    session_indexes = tuple(
        (index.text or "").strip() for index in request.session_index if (index.text or "").strip()
    )
    if len(session_indexes) > MAX_SESSION_INDEXES:
        raise SamlError(
            "The LogoutRequest lists too many SessionIndexes",
            f"It lists {len(session_indexes)}; this IdP reads at most {MAX_SESSION_INDEXES}.",
            "Send the SessionIndex of the one assertion the SP received.",
        )
    return LogoutRequest(
        id=request.id,
        issuer=request.issuer.text.strip(),
        issue_instant=_instant(request.issue_instant or "", "IssueInstant"),
        destination=request.destination or "",
        not_on_or_after=(
            _instant(request.not_on_or_after, "NotOnOrAfter") if request.not_on_or_after else None
        ),
        name_id=NameID(
            request.name_id.text.strip(),
            request.name_id.format or "",
            request.name_id.sp_name_qualifier or "",
        ),
        session_indexes=session_indexes,
        is_signed=request.signature is not None,
    )


def parse_response(xml: bytes) -> LogoutResponse:
    root = _root(xml, "LogoutResponse", "SAMLResponse")
    _at_most_one(root, f"{{{c.SAMLP}}}Status", what="LogoutResponse")
    response = samlp.logout_response_from_string(xml)
    status = response.status.status_code if response.status is not None else None
    if status is None or not status.value:
        raise SamlError(
            "The LogoutResponse has no StatusCode",
            "The IdP cannot tell whether the SP logged the user out.",
            f"Send <samlp:Status><samlp:StatusCode Value='{c.STATUS_SUCCESS}'/></samlp:Status>.",
        )
    message = response.status.status_message
    return LogoutResponse(
        id=response.id,
        issuer=response.issuer.text.strip(),
        in_response_to=response.in_response_to or "",
        destination=response.destination or "",
        status=status.value,
        sub_status=(status.status_code.value or "") if status.status_code is not None else "",
        message=((message.text or "") if message is not None else "")[:500],
        is_signed=root.find(f"{{{c.DS}}}Signature") is not None,
    )


def check_fresh(request: LogoutRequest, now: datetime.datetime, max_age_seconds: int) -> None:
    """IssueInstant within the SP's window either way; NotOnOrAfter not yet passed."""
    skew = (now - request.issue_instant).total_seconds()
    if abs(skew) > max_age_seconds:
        when = "ago" if skew > 0 else "in the future"
        raise SamlError(
            "The LogoutRequest is not fresh",
            f"It was issued {abs(skew):.0f} s {when}; this IdP accepts requests within "
            f"{max_age_seconds} s of its clock ({now:%Y-%m-%dT%H:%M:%SZ}).",
            "Sign out at the SP again, and check both clocks (NTP). The window is the SP's "
            "'AuthnRequest clock window' in the admin, which logout requests share.",
        )
    if request.not_on_or_after is not None and now >= request.not_on_or_after:
        raise SamlError(
            "The LogoutRequest has expired",
            f"Its NotOnOrAfter ({request.not_on_or_after:%Y-%m-%dT%H:%M:%SZ}) has passed.",
            "Sign out at the SP again; check both clocks if this repeats.",
        )


def new_id() -> str:
    return "_" + secrets.token_hex(20)


def _instant_text(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _message(
    local_name: str, message_id: str, issuer: str, destination: str, now
) -> etree._Element:
    root = etree.Element(
        f"{{{c.SAMLP}}}{local_name}",
        {
            "ID": message_id,
            "Version": "2.0",
            "IssueInstant": _instant_text(now),
            "Destination": destination,
        },
        nsmap={"samlp": c.SAMLP, "saml": c.SAML},
    )
    etree.SubElement(root, f"{{{c.SAML}}}Issuer").text = issuer
    return root


def build_request(
    message_id: str,
    issuer: str,
    destination: str,
    name_id: NameID,
    session_index: str,
    now: datetime.datetime,
    lifetime: datetime.timedelta = datetime.timedelta(minutes=5),
) -> etree._Element:
    """A LogoutRequest naming the user as the assertion did (NameID, SessionIndex)."""
    root = _message("LogoutRequest", message_id, issuer, destination, now)
    root.set("NotOnOrAfter", _instant_text(now + lifetime))
    root.set("Reason", "urn:oasis:names:tc:SAML:2.0:logout:user")
    element = etree.SubElement(root, f"{{{c.SAML}}}NameID")
    if name_id.format:
        element.set("Format", name_id.format)
    if name_id.sp_name_qualifier:
        element.set("SPNameQualifier", name_id.sp_name_qualifier)
    element.text = name_id.value
    if session_index:
        etree.SubElement(root, f"{{{c.SAMLP}}}SessionIndex").text = session_index
    return root


def build_response(
    message_id: str,
    issuer: str,
    destination: str,
    in_response_to: str,
    now: datetime.datetime,
    status: str = c.STATUS_SUCCESS,
    sub_status: str = "",
    message: str = "",
) -> etree._Element:
    """A LogoutResponse; a partial logout is Success with PartialLogout inside, as
    SimpleSAMLphp and Shibboleth answer it."""
    root = _message("LogoutResponse", message_id, issuer, destination, now)
    root.set("InResponseTo", in_response_to)
    status_element = etree.SubElement(root, f"{{{c.SAMLP}}}Status")
    code = etree.SubElement(status_element, f"{{{c.SAMLP}}}StatusCode", {"Value": status})
    if sub_status:
        etree.SubElement(code, f"{{{c.SAMLP}}}StatusCode", {"Value": sub_status})
    if message:
        etree.SubElement(status_element, f"{{{c.SAMLP}}}StatusMessage").text = message
    return root
