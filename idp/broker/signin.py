"""The federation endpoint's protocol, as AWS documents it for a custom identity broker.

  1. Action=getSigninToken[&SessionDuration=S]&Session=<URL-encoded JSON
     {"sessionId": AccessKeyId, "sessionKey": SecretAccessKey, "sessionToken": SessionToken}>
     answers {"SigninToken": "..."} (good for 15 minutes, once);
  2. {federation}?Action=login&Issuer=<URL>&Destination=<console URL>&SigninToken=<token>
     is the URL the browser opens.

AWS's guide sends step 1 as a GET, which puts the secret key and session token in the
query string, and so in every access log on the way. AWS's endpoint also takes it as a
form POST (AWS's own Toolkit for JetBrains posts it: AwsConsoleUrlFactory.kt), and so
does fedmock's /aws/federation, so step 1 is a POST here. The exception is GovCloud,
whose endpoint that toolkit says does not take the POST yet: there it stays a GET.

No Django here: `fedmock console-url` (idp/cli/) and the portal's broker share it. No
message here ever repeats the request or an exception text that could hold the secret.
"""

import json
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from . import Refusal

AWS_FEDERATION_URL = "https://signin.aws.amazon.com/federation"
AWS_CONSOLE_URL = "https://console.aws.amazon.com/"
EXPLANATION_HEADER = "X-Fedmock-Explanation"
TIMEOUT = (5, 20)  # connect, read: seconds


class SigninError(Refusal):
    pass


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str

    def __repr__(self) -> str:  # a traceback or a log line never shows the secret
        return f"Credentials(access_key_id={self.access_key_id!r}, …)"


def _where(federation_url: str) -> str:
    try:
        parts = urlsplit(federation_url)
    except ValueError:  # e.g. "http://[::1": an unclosed IPv6 bracket
        return repr(federation_url[:100])
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


# Hosts whose federation endpoint takes getSigninToken as a GET only (see above).
GET_ONLY_HOST_SUFFIXES = ("amazonaws-us-gov.com",)


def signin_token_form(credentials: Credentials, session_duration: int | None) -> dict[str, str]:
    session = json.dumps(
        {
            "sessionId": credentials.access_key_id,
            "sessionKey": credentials.secret_access_key,
            "sessionToken": credentials.session_token,
        }
    )
    form = {"Action": "getSigninToken"}
    if session_duration is not None:
        form["SessionDuration"] = str(session_duration)
    form["Session"] = session
    return form


def posts_signin_token(federation_url: str) -> bool:
    host = (urlsplit(federation_url).hostname or "").lower()
    return not host.endswith(GET_ONLY_HOST_SUFFIXES)


def _with_query(url: str, query: dict[str, str]) -> str:
    return f"{url}{'&' if urlsplit(url).query else '?'}{urlencode(query)}"


def get_signin_token(
    federation_url: str, credentials: Credentials, session_duration: int | None = None
) -> str:
    import requests

    where = _where(federation_url)
    if not credentials.session_token:
        raise SigninError(
            "Not temporary credentials",
            "the credentials have no session token; the federation endpoint takes only "
            "temporary credentials (AssumeRole, AssumeRoleWith*, GetFederationToken)",
            "assume a role first, or use `fedmock credentials`' cached session",
            status=400,
        )
    form = signin_token_form(credentials, session_duration)
    try:
        if posts_signin_token(federation_url):
            answer = requests.post(
                federation_url, data=form, timeout=TIMEOUT, allow_redirects=False
            )
        else:
            answer = requests.get(
                _with_query(federation_url, form), timeout=TIMEOUT, allow_redirects=False
            )
    except (requests.RequestException, ValueError) as error:
        # Not str(error): urllib3 repeats the URL, and with it the secret key.
        raise SigninError(
            "Federation endpoint unreachable",
            f"{where} did not answer ({type(error).__name__})",
            "check the federation URL; a single sync gunicorn worker cannot call its own "
            "/aws/federation (run with WEB_CONCURRENCY=2 or more)",
        ) from None
    if answer.status_code != 200:
        explanation = answer.headers.get(EXPLANATION_HEADER, "")
        raise SigninError(
            f"getSigninToken refused (HTTP {answer.status_code})",
            f"{where} refused the credentials" + (f": {explanation}" if explanation else ""),
            "check that the credentials are current and that SessionDuration is 900-43200 "
            "(and absent for GetFederationToken credentials)",
        )
    try:
        token = answer.json()["SigninToken"]
        if not isinstance(token, str) or not token:
            raise ValueError("not a non-empty string")
    except (ValueError, KeyError, TypeError):
        raise SigninError(
            "Unexpected federation answer",
            f"{where} answered HTTP 200 without a SigninToken in JSON",
            "check that the federation URL is a federation endpoint",
        ) from None
    return token


def login_url(federation_url: str, token: str, *, issuer: str, destination: str) -> str:
    query = {"Action": "login"}
    if issuer:
        query["Issuer"] = issuer
    query["Destination"] = destination
    query["SigninToken"] = token
    return _with_query(federation_url, query)
