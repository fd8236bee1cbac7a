"""The federation endpoint's protocol, as AWS documents it for a custom identity broker.

  1. GET {federation}?Action=getSigninToken[&SessionDuration=S]&Session=<URL-encoded JSON
     {"sessionId": AccessKeyId, "sessionKey": SecretAccessKey, "sessionToken": SessionToken}>
     answers {"SigninToken": "..."} (good for 15 minutes, once);
  2. {federation}?Action=login&Issuer=<URL>&Destination=<console URL>&SigninToken=<token>
     is the URL the browser opens.

No Django here: `fedmock console-url` (idp/cli/) and the portal's broker share it.
The request in step 1 carries the secret key in its query string (AWS's protocol), so
no message here ever repeats that URL or an exception text that could hold it.
"""

import json
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

AWS_FEDERATION_URL = "https://signin.aws.amazon.com/federation"
AWS_CONSOLE_URL = "https://console.aws.amazon.com/"
EXPLANATION_HEADER = "X-Fedmock-Explanation"
TIMEOUT = (5, 20)  # connect, read: seconds


class SigninError(Exception):
    def __init__(self, title: str, detail: str, hint: str, status: int = 502):
        super().__init__(f"{title}: {detail}")
        self.title, self.detail, self.hint, self.status = title, detail, hint, status


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str

    def __repr__(self) -> str:  # a traceback or a log line never shows the secret
        return f"Credentials(access_key_id={self.access_key_id!r}, …)"


def _where(federation_url: str) -> str:
    parts = urlsplit(federation_url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def signin_token_query(credentials: Credentials, session_duration: int | None) -> str:
    session = json.dumps(
        {
            "sessionId": credentials.access_key_id,
            "sessionKey": credentials.secret_access_key,
            "sessionToken": credentials.session_token,
        }
    )
    query = {"Action": "getSigninToken"}
    if session_duration is not None:
        query["SessionDuration"] = str(session_duration)
    query["Session"] = session
    return urlencode(query)


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
    try:
        answer = requests.get(
            f"{federation_url}?{signin_token_query(credentials, session_duration)}",
            timeout=TIMEOUT,
            allow_redirects=False,
        )
    except requests.RequestException as error:
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
    return f"{federation_url}?{urlencode(query)}"
