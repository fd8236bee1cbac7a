"""A SAMLResponse for AWS without a browser: SAML ECP with a password, or the API with a token.

ECP (SAML V2.0 Profiles §4.2, the Enhanced Client or Proxy): the client is its own
service provider's agent. AWS sign-in speaks no PAOS, so, as awscli-login and the
Shibboleth ECP clients do for AWS, the client writes the AuthnRequest that AWS's SP would
have sent (issuer urn:amazon:webservices, ACS https://signin.aws.amazon.com/saml, PAOS
binding), posts it in a SOAP envelope to the IdP's SOAP endpoint with HTTP Basic
authentication, and takes the samlp:Response out of the answer's SOAP body. The profile
says the ECP must check the ecp:Response header's AssertionConsumerServiceURL against the
SP's; here that SP's URL is the one we asked for.
"""

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime

from .errors import CliError

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
ECP = "urn:oasis:names:tc:SAML:2.0:profiles:SSO:ecp"
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
PAOS_BINDING = "urn:oasis:names:tc:SAML:2.0:bindings:PAOS"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
FEDMOCK_FAULT = "urn:fedmock:soap-fault"  # fedmock's fault detail: title, detail, hint
ECP_PATH = "/saml/ecp/"
SIGN_ONS_PATH = "/api/v1/sign-ons"
TIMEOUT = (10, 60)  # connect, read: a sign-on signs; a hung IdP must not hang the shell


@dataclass(frozen=True)
class Assertion:
    saml_response: str  # base64, as STS takes it
    roles: tuple  # RolePair (idp.saml.aws), in the assertion's order


def ecp_authn_request(now: datetime, request_id: str | None = None) -> bytes:
    from idp.saml import aws

    request_id = request_id or "_" + uuid.uuid4().hex
    instant = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f'<S:Envelope xmlns:S="{SOAP_ENV}"><S:Body>'
        f'<samlp:AuthnRequest xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" ID="{request_id}" '
        f'Version="2.0" IssueInstant="{instant}" '
        f'AssertionConsumerServiceURL="{aws.SIGNIN_ACS}" ProtocolBinding="{PAOS_BINDING}">'
        f"<saml:Issuer>{aws.AUDIENCE}</saml:Issuer>"
        "</samlp:AuthnRequest></S:Body></S:Envelope>"
    ).encode()


def _idp_unreachable(url: str, error: Exception) -> CliError:
    return CliError(
        "IdP unreachable",
        f"{url}: {type(error).__name__}",
        "check --idp (is `make run` serving there?)",
    )


def _refusal(response, url: str, login: bool) -> CliError:
    """The IdP's own words if it sent its JSON error shape or a SOAP fault."""
    title = f"IdP refused (HTTP {response.status_code})"
    message, hint = response.reason or "", ""
    try:
        body = response.json()
        if isinstance(body, dict):
            title = f"{body.get('title') or title} (HTTP {response.status_code})"
            message = str(body.get("message") or message)
            hint = str(body.get("hint") or "")
    except ValueError:
        fault, fault_hint = _soap_fault(response.content)
        if fault:
            message, hint = fault, fault_hint
    if response.status_code == 401 and login:
        hint = hint or "check the user name and FEDMOCK_PASSWORD (or the password you typed)"
    elif response.status_code == 401:
        hint = hint or "FEDMOCK_TOKEN is unknown, revoked or expired: issue a new one"
    elif response.status_code == 404 and login:
        hint = hint or f"this IdP has no ECP endpoint at {url}; use FEDMOCK_TOKEN instead"
    elif response.status_code == 429:
        hint = hint or "too many failed logins: wait for the lockout to end"
    return CliError(title, message or url, hint)


def _soap_fault(content: bytes) -> tuple[str, str]:
    """(message, hint) from a SOAP 1.1 Fault: fedmock's detail block if present, else
    faultstring; ("", "") if the content is no fault."""
    from idp.saml.bindings import parse_xml
    from idp.saml.errors import SamlError

    try:
        root = parse_xml(content, "The SOAP answer")
    except SamlError:
        return "", ""
    fault = root.find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
    if fault is None:
        return "", ""
    problem = f".//{{{FEDMOCK_FAULT}}}"
    title = fault.findtext(problem + "title") or fault.findtext("faultstring") or "SOAP fault"
    detail = fault.findtext(problem + "detail") or ""
    message = f"{title}: {detail}" if detail else title
    return " ".join(message.split()), " ".join((fault.findtext(problem + "hint") or "").split())


def response_from_soap(content: bytes) -> bytes:
    """The samlp:Response in the SOAP body, serialised, after the profile's checks."""
    from lxml import etree

    from idp.saml import aws
    from idp.saml.bindings import parse_xml
    from idp.saml.errors import SamlError

    try:
        root = parse_xml(content, "The IdP's ECP answer")
    except SamlError as error:
        raise CliError("Not a SOAP answer", error.detail or error.title, "") from error
    if root.tag != f"{{{SOAP_ENV}}}Envelope":
        raise CliError("Not a SOAP answer", f"the root element is {root.tag}", "")
    header = root.find(f"{{{ECP}}}Response")
    if header is None:
        header = root.find(f"{{{SOAP_ENV}}}Header/{{{ECP}}}Response")
    consumer = header.get("AssertionConsumerServiceURL") if header is not None else None
    if consumer is not None and consumer != aws.SIGNIN_ACS:
        # The profile's one defence against an IdP answering for another SP.
        raise CliError(
            "ECP consumer mismatch",
            f"the IdP addressed the response to {consumer}, not {aws.SIGNIN_ACS}",
            "check the IdP's registration of urn:amazon:webservices",
        )
    response = root.find(f"{{{SOAP_ENV}}}Body/{{{SAMLP}}}Response")
    if response is None:
        fault, hint = _soap_fault(content)
        raise CliError("IdP refused the login", fault or "the SOAP body holds no Response", hint)
    status = response.find(f"{{{SAMLP}}}Status/{{{SAMLP}}}StatusCode")
    value = status.get("Value") if status is not None else None
    if value != SUCCESS:
        inner = status.find(f"{{{SAMLP}}}StatusCode") if status is not None else None
        detail = response.findtext(f"{{{SAMLP}}}Status/{{{SAMLP}}}StatusMessage") or ""
        code = inner.get("Value") if inner is not None else value
        raise CliError(
            "IdP refused the login",
            f"SAML status {code}{': ' + detail if detail else ''}",
            "",
        )
    # Exclusive C14N ignores the SOAP namespace that serialising carries along, so the
    # signature still verifies over the re-serialised element.
    return etree.tostring(response)


def by_ecp(idp: str, user: str, password: str, now: datetime) -> bytes:
    import requests

    url = idp.rstrip("/") + ECP_PATH
    try:
        answer = requests.post(
            url,
            data=ecp_authn_request(now),
            auth=(user, password),
            headers={
                "Content-Type": "text/xml; charset=utf-8",
                "SOAPAction": "http://www.oasis-open.org/committees/security",
                "Accept": "text/xml, application/vnd.paos+xml",
            },
            timeout=TIMEOUT,
            allow_redirects=False,
        )
    except requests.RequestException as error:
        raise _idp_unreachable(url, error) from error
    if answer.status_code != 200:
        raise _refusal(answer, url, login=True)
    return response_from_soap(answer.content)


def by_api(idp: str, user: str, token: str, role_arn: str | None) -> bytes:
    import requests

    from idp.saml import aws

    url = idp.rstrip("/") + SIGN_ONS_PATH
    body = {"user": user, "sp": aws.AUDIENCE}
    if role_arn:
        body["role"] = role_arn
    try:
        answer = requests.post(
            url,
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT,
            allow_redirects=False,
        )
    except requests.RequestException as error:
        raise _idp_unreachable(url, error) from error
    if answer.status_code != 201:
        raise _refusal(answer, url, login=False)
    try:
        return base64.b64decode(answer.json()["saml_response"], validate=True)
    except (ValueError, KeyError, TypeError) as error:
        raise CliError(
            "Not fedmock's API", f"{url} answered without a saml_response", ""
        ) from error


def roles_in(response_xml: bytes) -> tuple:
    """The Role attribute's pairs, as AWS reads them (either order within a value)."""
    from idp.saml import aws
    from idp.saml.bindings import parse_xml
    from idp.saml.errors import SamlError

    try:
        root = parse_xml(response_xml, "The SAMLResponse")
    except SamlError as error:
        raise CliError("Unreadable SAMLResponse", error.detail or error.title, "") from error
    if root.find(f"{{{SAML}}}EncryptedAssertion") is not None:
        raise CliError(
            "Encrypted assertion",
            "the assertion is encrypted, so its Role attribute cannot be read here",
            "pass --role ARN, or turn encryption off for urn:amazon:webservices",
        )
    values = [
        value.text or ""
        for attribute in root.iter(f"{{{SAML}}}Attribute")
        if attribute.get("Name") == aws.ROLE
        for value in attribute.iter(f"{{{SAML}}}AttributeValue")
    ]
    return tuple(aws.parse_roles(values))


def get_assertion(
    idp: str,
    user: str,
    *,
    password: str | None,
    token: str | None,
    role_arn: str | None,
    now: datetime,
) -> Assertion:
    if password is not None:
        xml = by_ecp(idp, user, password, now)
    else:
        xml = by_api(idp, user, token or "", role_arn)
    return Assertion(base64.b64encode(xml).decode("ascii"), roles_in(xml))
