"""The local stand-in for AWS's federation endpoint (https://signin.aws.amazon.com/federation).

A custom identity broker turns temporary credentials into a console sign-in URL in two
requests, as AWS documents ("Enable custom identity broker access to the AWS console"):

  GET /aws/federation?Action=getSigninToken&SessionDuration=S&Session={"sessionId": KEY,
      "sessionKey": SECRET, "sessionToken": TOKEN}          -> {"SigninToken": "..."}
  GET /aws/federation?Action=login&Issuer=URL&Destination=URL&SigninToken=...

Here getSigninToken accepts only credentials the local STS issued, unexpired, with their
own secret and session token; the sign-in token is good once and for 15 minutes, as
AWS's, and only its digest is stored. `login` ends on a page that shows the session the
console would open (role, session name, account, expiry) instead of a console, and
never follows Destination (that would make fedmock an open redirect).

AWS answers a refused request with HTTP 400 and an HTML page that says little; the
local endpoint answers 400 too, with fedmock's page (what, why, how to fix it) and the
same words in the X-Fedmock-Explanation header for scripts.

Both actions are GET, as AWS's documentation sends them. getSigninToken is also answered to
a form POST (Action, SessionDuration and Session in an application/x-www-form-urlencoded
body), as AWS's endpoint answers it: AWS's own Toolkit for JetBrains posts it
(AwsConsoleUrlFactory.kt). fedmock's broker and `fedmock console-url` post, so the secret
key and session token stay out of access logs, which record a GET's query string. There
is no cookie-borne state to protect, so no CSRF token (as for the Query door at /aws/).
"""

import datetime
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from idp import audit, clock
from idp.broker import Refusal
from idp.models import AuditEvent

from . import views
from .models import IssuedCredential, Role, SigninToken

TOKEN_LIFETIME = datetime.timedelta(minutes=15)  # AWS: "valid for 15 minutes"
CONSOLE_MIN, CONSOLE_MAX = 900, 43200  # SessionDuration, as AWS documents it
# Without SessionDuration a role's console session lasts an hour here. AWS documents the
# range, not this default; a federation token's session lasts as long as its credentials.
CONSOLE_DEFAULT = 3600
SESSION_MAX_CHARS = 16 * 1024  # a session token is about 1 KiB; the JSON is refused above this
FIELDS = ("sessionId", "sessionKey", "sessionToken")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class FederationError(Refusal):
    """A refused request: rendered by error.html (title, detail, hint), status 400."""

    default_status = 400


# --- pure checks ----------------------------------------------------------------------


@dataclass(frozen=True)
class SessionCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str


def parse_session(text: str | None) -> SessionCredentials:
    """The Session parameter: a JSON object of three non-empty strings, nothing else."""
    hint = (
        'pass Session={"sessionId": ACCESS_KEY_ID, "sessionKey": SECRET_ACCESS_KEY, '
        '"sessionToken": SESSION_TOKEN}, URL-encoded, from AssumeRole* or GetFederationToken'
    )
    if not text:
        raise FederationError("No session", "the Session parameter is missing", hint)
    if len(text) > SESSION_MAX_CHARS:
        raise FederationError(
            "Malformed session",
            f"the Session parameter is {len(text)} characters long; credentials need "
            f"far fewer than {SESSION_MAX_CHARS}",
            hint,
        )
    try:
        session = json.loads(text)
    except ValueError as error:
        raise FederationError(
            "Malformed session", f"the Session parameter is not JSON ({error})", hint
        ) from None
    if not isinstance(session, dict):
        raise FederationError("Malformed session", "the Session parameter is not an object", hint)
    # Keys, secrets and tokens are printable ASCII; a JSON "\u0000" would otherwise reach
    # the database, and PostgreSQL refuses a NUL in a query.
    missing = [
        name
        for name in FIELDS
        if not isinstance(session.get(name), str)
        or not session[name]
        or not session[name].isprintable()
    ]
    if missing:
        raise FederationError(
            "Malformed session",
            f"the Session object lacks {', '.join(missing)} (each a non-empty string of "
            "printable characters)",
            hint,
        )
    unknown = sorted(set(session) - set(FIELDS))
    if unknown:
        raise FederationError(
            "Malformed session", f"the Session object has unknown keys: {', '.join(unknown)}", hint
        )
    return SessionCredentials(*(session[name] for name in FIELDS))


def parse_session_duration(text: str | None, action: str) -> int | None:
    if text is None:
        return None
    if action == "GetFederationToken":
        raise FederationError(
            "SessionDuration not allowed",
            "these credentials come from GetFederationToken; AWS's federation endpoint "
            "refuses SessionDuration for them",
            "leave SessionDuration out: the console session lasts as long as the credentials",
        )
    if not text.isdigit() or not CONSOLE_MIN <= int(text) <= CONSOLE_MAX:
        raise FederationError(
            "Invalid SessionDuration",
            f"SessionDuration {text[:20]!r} is not a whole number of seconds from "
            f"{CONSOLE_MIN} to {CONSOLE_MAX}",
            f"pass SessionDuration between {CONSOLE_MIN} (15 minutes) and {CONSOLE_MAX} "
            "(12 hours), or leave it out",
        )
    return int(text)


def check_credential(
    issued: IssuedCredential | None, sent: SessionCredentials, now: datetime.datetime
) -> IssuedCredential:
    """The issued credential the session names, if its secret and token match and it lives."""
    fix = "call AssumeRole (or GetFederationToken) at the local STS and pass what it returned"
    if issued is None:
        raise FederationError(
            "Unknown credentials",
            f"the local STS never issued the access key {sent.access_key_id[:32]!r}"
            + ("" if sent.access_key_id.startswith("ASIA") else " (a long-term key?)"),
            fix + "; the federation endpoint takes temporary credentials only",
        )
    secret_ok = hmac.compare_digest(
        sent.secret_access_key.encode(), issued.secret_access_key.encode()
    )
    token_ok = hmac.compare_digest(sent.session_token.encode(), issued.session_token.encode())
    if not (secret_ok and token_ok):
        wrong = " and ".join(
            name for name, ok in (("sessionKey", secret_ok), ("sessionToken", token_ok)) if not ok
        )
        raise FederationError(
            "Invalid credentials",
            f"the {wrong} sent with {issued.access_key_id} is not the one issued with it",
            fix + "; send the three values of one answer together",
        )
    if now >= issued.expires_at:
        raise FederationError(
            "Expired credentials",
            f"{issued.access_key_id} ({issued.arn}) expired at "
            f"{issued.expires_at:%Y-%m-%dT%H:%M:%SZ}; the IdP clock says {now:%Y-%m-%dT%H:%M:%SZ}",
            "get fresh credentials from the STS, then ask for a sign-in token at once",
        )
    return issued


def console_duration(requested: int | None, issued: IssuedCredential, now) -> int:
    if requested is not None:
        return requested
    if issued.action == "GetFederationToken":
        return max(int((issued.expires_at - now).total_seconds()), 0)
    return CONSOLE_DEFAULT


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_login_url(name: str, value: str | None, required: bool) -> str:
    if not value:
        if required:
            raise FederationError(
                f"No {name}",
                f"the {name} parameter is missing",
                f"pass {name}=https://console.aws.amazon.com/ (URL-encoded)"
                if name == "Destination"
                else f"pass {name}=the URL of your sign-in page",
            )
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(value) > 2048:
        raise FederationError(
            f"Invalid {name}",
            f"{name} {value[:80]!r} is not an http(s) URL of at most 2048 characters",
            f"pass {name} as an absolute URL, URL-encoded",
        )
    return value


# --- the door -------------------------------------------------------------------------


def escaped(text: str) -> str:
    """Control characters as \\xNN: PostgreSQL refuses a NUL in the audit's text."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match[0]):02x}", text)


def _refusal(request: HttpRequest, error: FederationError, action: str) -> HttpResponse:
    audit.record(
        flow="federation",
        username="",
        sp_entity_id=f"federation:{escaped(action[:100]) or '(no action)'}"[:1024],
        request_id="",
        roles=[],
        outcome=AuditEvent.Outcome.REFUSED,
        detail=f"{error.title}: {error.detail}",
    )
    response = render(request, "error.html", {"error": error}, status=error.status)
    response[views.EXPLANATION_HEADER] = views.one_line(
        (f"{error.title}: {error.detail}", f"Fix: {error.hint}")
    )
    response["Cache-Control"] = "no-store"
    return response


def _parameters(request: HttpRequest):
    """A GET's query, or a POST's form body (a POST's query string is not read)."""
    if request.method != "POST":
        return request.GET
    try:
        return request.POST
    except (RequestDataTooBig, SuspiciousOperation) as error:
        raise FederationError(
            "Request too large",
            f"Django refused the form body ({type(error).__name__})",
            "send Action, SessionDuration and Session only, form-encoded",
            status=413 if isinstance(error, RequestDataTooBig) else 400,
        ) from None


@csrf_exempt
@require_http_methods(["GET", "POST"])
def endpoint(request: HttpRequest) -> HttpResponse:
    action = request.GET.get("Action", "")
    try:
        parameters = _parameters(request)
        action = parameters.get("Action", "")
        if "\x00" in request.META.get("QUERY_STRING", "") or any(
            "\x00" in name or "\x00" in value
            for name, values in parameters.lists()
            for value in values
        ):
            raise FederationError(
                "Malformed request", "a parameter holds a NUL character", "remove it"
            )
        if action == "getSigninToken":
            return _get_signin_token(parameters)
        if action == "login":
            if request.method == "POST":
                raise FederationError(
                    "login is a GET",
                    "Action=login came as a POST; the browser opens the login URL",
                    "send the browser to the federation URL with Action=login, Issuer, "
                    "Destination and SigninToken in the query",
                )
            return _login(request)
        raise FederationError(
            "Unknown action",
            f"Action {action[:40]!r} is not one the federation endpoint answers"
            if action
            else "the Action parameter is missing",
            "pass Action=getSigninToken (with Session) or Action=login (with SigninToken, "
            "Issuer and Destination)",
        )
    except FederationError as error:
        return _refusal(request, error, action)


def _get_signin_token(parameters) -> HttpResponse:
    sent = parse_session(parameters.get("Session"))
    now = clock.now()
    issued = check_credential(
        IssuedCredential.objects.filter(access_key_id=sent.access_key_id).first(), sent, now
    )
    requested = parse_session_duration(parameters.get("SessionDuration"), issued.action)
    token = secrets.token_urlsafe(48)
    SigninToken.objects.create(
        digest=digest(token),
        credential=issued,
        issued_at=now,
        expires_at=now + TOKEN_LIFETIME,
        session_duration=console_duration(requested, issued, now),
    )
    audit.record(
        flow="federation",
        username=issued.arn[:150],
        sp_entity_id="federation:getSigninToken",
        request_id="",
        roles=[],
        outcome=AuditEvent.Outcome.SENT,
        detail=f"sign-in token for {issued.access_key_id} ({issued.arn})",
    )
    response = JsonResponse({"SigninToken": token})
    response["Cache-Control"] = "no-store"
    return response


def _claim(token: str, now: datetime.datetime) -> SigninToken:
    """The token's row, marked used by this request alone (one UPDATE decides a race)."""
    fix = "ask for a new one (Action=getSigninToken) and follow the login URL once, at once"
    row = SigninToken.objects.select_related("credential").filter(digest=digest(token)).first()
    if row is None:
        raise FederationError(
            "Unknown sign-in token", "the federation endpoint never issued this SigninToken", fix
        )
    if row.used_at is not None:
        raise FederationError(
            "Sign-in token already used",
            f"this SigninToken signed in at {row.used_at:%Y-%m-%dT%H:%M:%SZ}; a token works once",
            fix,
        )
    if now >= row.expires_at:
        raise FederationError(
            "Sign-in token expired",
            f"this SigninToken expired at {row.expires_at:%Y-%m-%dT%H:%M:%SZ} (15 minutes after "
            f"it was issued); the IdP clock says {now:%Y-%m-%dT%H:%M:%SZ}",
            fix,
        )
    claimed = SigninToken.objects.filter(pk=row.pk, used_at__isnull=True).update(used_at=now)
    if not claimed:
        raise FederationError("Sign-in token already used", "another request used it first", fix)
    row.used_at = now
    return row


@dataclass(frozen=True)
class ConsoleSession:
    """What the console would show: shown on the page instead of a console."""

    arn: str
    role_arn: str
    session_name: str
    account_id: str
    source_identity: str
    action: str
    credentials_expire: datetime.datetime
    console_session_ends: datetime.datetime
    issuer: str
    destination: str


def _role_arn(issued: IssuedCredential) -> str:
    """assumed-role/NAME/SESSION names the role without its path; the local IAM has it."""
    parts = issued.arn.split(":", 5)
    if len(parts) < 6 or not parts[5].startswith("assumed-role/"):
        return ""
    name = parts[5].split("/")[1]
    role = Role.objects.filter(account_id=issued.account_id, name=name).first()
    return role.arn if role else f"arn:aws:iam::{issued.account_id}:role/{name}"


def _login(request: HttpRequest) -> HttpResponse:
    token = request.GET.get("SigninToken", "")
    if not token or len(token) > 1024:
        raise FederationError(
            "No sign-in token",
            "the SigninToken parameter is missing" if not token else "SigninToken is too long",
            "pass the SigninToken that Action=getSigninToken returned",
        )
    issuer = check_login_url("Issuer", request.GET.get("Issuer"), required=False)
    destination = check_login_url("Destination", request.GET.get("Destination"), required=True)
    now = clock.now()
    row = _claim(token, now)
    issued = row.credential
    session = ConsoleSession(
        arn=issued.arn,
        role_arn=_role_arn(issued),
        session_name=issued.arn.rsplit("/", 1)[-1],
        account_id=issued.account_id,
        source_identity=issued.source_identity,
        action=issued.action,
        credentials_expire=issued.expires_at,
        console_session_ends=now + datetime.timedelta(seconds=row.session_duration),
        issuer=issuer,
        destination=destination,
    )
    audit.record(
        flow="federation",
        username=issued.arn[:150],
        sp_entity_id="federation:login",
        request_id="",
        roles=[session.role_arn] if session.role_arn else [],
        outcome=AuditEvent.Outcome.SENT,
        detail=f"console session for {issued.arn} until "
        f"{session.console_session_ends:%Y-%m-%dT%H:%M:%SZ}",
    )
    response = render(request, "sts/federation_session.html", {"session": session})
    response["Cache-Control"] = "no-store"
    return response
