"""AWS's STS and IAM errors, as data: each code's HTTP status, and AWS's own words.

A client of the local STS (botocore, the AWS CLI, an SDK) branches on the code
and shows the message, so both are AWS's: the codes and statuses come from the
STS and IAM models that botocore ships (its `error` metadata) and from AWS's
page of common Query-API errors; the messages from the IAM User Guide's
"Troubleshoot SAML federation" page and the errors real AWS answers. Where AWS
documents no wording, the message is fedmock's, and `Message.source` is empty,
so a test or a reader can tell the two apart.

AWS says nothing more than the message. fedmock adds `explanation`: which check
failed, with the values it compared. The door (idp/sts/views.py) renders the
code, message and status as AWS's XML error, and the explanation in a header
and the audit log; no AWS client reads either.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from .. import scenarios


@dataclass(frozen=True)
class ErrorCode:
    code: str
    status: int
    sender_fault: bool
    meaning: str  # AWS's description of the code (botocore's model or the common-errors page)


def _codes(*codes: ErrorCode) -> dict[str, ErrorCode]:
    return {code.code: code for code in codes}


# The statuses are botocore's, not guesses: ExpiredTokenException (an expired SAML
# assertion or web identity token) is 400 in the STS model, while ExpiredToken (the
# caller's own temporary credentials have expired) is a common error with 403.
CODES = _codes(
    # STS (botocore's sts/2011-06-15 model)
    ErrorCode(
        "InvalidIdentityToken",
        400,
        True,
        "The identity token that was passed could not be validated by AWS.",
    ),
    ErrorCode("ExpiredTokenException", 400, True, "The token that was passed is expired."),
    ErrorCode(
        "IDPRejectedClaim",
        403,
        True,
        "The identity provider (IdP) reported that authentication failed.",
    ),
    ErrorCode("IDPCommunicationError", 400, True, "The identity provider could not be reached."),
    ErrorCode("MalformedPolicyDocument", 400, True, "The policy document was malformed."),
    ErrorCode(
        "PackedPolicyTooLarge",
        400,
        True,
        "The packed size of the session policies and session tags combined was too large.",
    ),
    ErrorCode(
        "RegionDisabledException", 403, True, "STS is not activated in the requested region."
    ),
    # IAM (botocore's iam/2010-05-08 model)
    ErrorCode("NoSuchEntity", 404, True, "The request referenced a resource that does not exist."),
    ErrorCode("EntityAlreadyExists", 409, True, "The resource to create already exists."),
    ErrorCode("LimitExceeded", 409, True, "The request would exceed the account's limits."),
    ErrorCode("InvalidInput", 400, True, "An invalid or out-of-range value was supplied."),
    ErrorCode("DeleteConflict", 409, True, "The resource still has subordinate entities."),
    ErrorCode("ConcurrentModification", 409, True, "Another request changed the object."),
    ErrorCode("UnmodifiableEntity", 400, True, "A service-linked role cannot be changed."),
    ErrorCode("ServiceFailure", 500, False, "The request failed for an unknown reason."),
    # Common to every Query API (AWS's "Common Errors" page)
    ErrorCode("AccessDenied", 403, True, "You do not have sufficient access."),
    ErrorCode("ValidationError", 400, True, "The input fails to satisfy a constraint."),
    ErrorCode("InvalidParameterValue", 400, True, "A parameter's value is invalid."),
    ErrorCode("InvalidParameterCombination", 400, True, "Parameters that cannot go together."),
    ErrorCode("MissingParameter", 400, True, "A required parameter is missing."),
    ErrorCode("InvalidAction", 400, True, "The action or operation is not known."),
    ErrorCode("InvalidQueryParameter", 400, True, "The query string is malformed."),
    ErrorCode("MalformedQueryString", 404, True, "The query string has a syntax error."),
    ErrorCode("IncompleteSignature", 400, True, "The request signature is incomplete."),
    ErrorCode("InvalidClientTokenId", 403, True, "The access key ID does not exist."),
    ErrorCode("SignatureDoesNotMatch", 403, True, "The request signature does not match."),
    ErrorCode("MissingAuthenticationToken", 403, True, "The request is not signed."),
    ErrorCode("ExpiredToken", 403, True, "The security token in the request is expired."),
    ErrorCode("RequestExpired", 400, True, "The request reached the service too late."),
    ErrorCode("Throttling", 400, True, "The request was denied due to request throttling."),
    ErrorCode("InternalFailure", 500, False, "An unknown error, exception or failure."),
    ErrorCode("ServiceUnavailable", 503, False, "The request failed: a temporary failure."),
)


class StsError(Exception):
    """A refusal as AWS gives it (code, message, status), and fedmock's explanation of it.

    `status` and `sender_fault` default to the code's, from CODES; an unknown code
    is a 400 sender fault. `explanation` is fedmock's own account, line by line:
    the check or statement that failed and the values it compared.
    """

    def __init__(
        self,
        code: str,
        message: str,
        explanation: Iterable[str] = (),
        *,
        status: int | None = None,
        sender_fault: bool | None = None,
    ):
        known = CODES.get(code)
        self.code = code
        self.message = message
        self.explanation = tuple(explanation)
        self.status = status if status is not None else (known.status if known else 400)
        if sender_fault is None:
            sender_fault = known.sender_fault if known else self.status < 500
        self.sender_fault = sender_fault
        super().__init__(f"{code}: {message}")

    def explained(self, *lines: str) -> "StsError":
        """The same error with more lines of explanation (a door adds what it knows)."""
        return StsError(
            self.code,
            self.message,
            (*self.explanation, *lines),
            status=self.status,
            sender_fault=self.sender_fault,
        )

    def __repr__(self) -> str:
        return f"StsError({self.code!r}, {self.message!r}, status={self.status})"


# --- AWS's words ------------------------------------------------------------------

TROUBLESHOOT_SAML = "IAM User Guide: Troubleshoot SAML federation with IAM"
CONFIGURE_ASSERTIONS = "IAM User Guide: Configure SAML assertions for the authentication response"
OBSERVED = "AWS's answers, as clients report them"
VALIDATION_FORMAT = "AWS's constraint messages (the format of every Query API's ValidationError)"


@dataclass(frozen=True)
class Message:
    """One of AWS's error texts; `text` may hold {placeholders} that `error` fills."""

    code: str
    text: str
    source: str  # where AWS's words come from; "" for fedmock's (AWS documents none)

    def error(self, *explanation: str, **values: object) -> StsError:
        # Only a text with placeholders is formatted: AWS's patterns hold braces ({2,64}).
        return StsError(self.code, self.text.format(**values) if values else self.text, explanation)


def _aws_words(scenario_text: str) -> str:
    # The scenario catalogue quotes some texts with their code ("InvalidIdentityToken: ...").
    return scenario_text.split(": ", 1)[1] if ": " in scenario_text else scenario_text


_SESSION_NAME_PATTERN = "[a-zA-Z_0-9+=,.@-]{2,64}"

# AssumeRoleWithSAML
SIGNATURE_INVALID = Message(
    "InvalidIdentityToken", _aws_words(scenarios.SIGNATURE_INVALID), TROUBLESHOOT_SAML
)
SESSION_NAME_REQUIRED = Message(
    "InvalidIdentityToken", _aws_words(scenarios.SESSION_NAME_REQUIRED), TROUBLESHOOT_SAML
)
SESSION_NAME_INVALID = Message(
    "InvalidIdentityToken",
    f"RoleSessionName in AuthnResponse must match {_SESSION_NAME_PATTERN}",
    TROUBLESHOOT_SAML,
)
SOURCE_IDENTITY_INVALID = Message(
    "InvalidIdentityToken",
    f'Source Identity must match {_SESSION_NAME_PATTERN} and not begin with "aws:"',
    TROUBLESHOOT_SAML,
)
# The troubleshooting page shows this text under AWSOpenIdDiscoveryService's own
# code (AuthSamlInvalidSamlResponseException); STS's clients receive it as
# InvalidIdentityToken (the SDKs' InvalidIdentityTokenException).
ISSUER_MISMATCH = Message(
    "InvalidIdentityToken", "Issuer not present in specified provider", TROUBLESHOOT_SAML
)
PROVIDER_NOT_FOUND = Message(
    "InvalidIdentityToken", "Specified provider doesn't exist", TROUBLESHOOT_SAML
)
AUDIENCE_MISSING = Message("InvalidIdentityToken", scenarios.AUDIENCE, TROUBLESHOOT_SAML)
# R12: AWS's words for both time limits; the code is STS's for an expired token.
RESPONSE_EXPIRED = Message("ExpiredTokenException", scenarios.EXPIRED, TROUBLESHOOT_SAML)
REDEEM_WITHIN = Message("ExpiredTokenException", scenarios.REDEEM, OBSERVED)
NOT_AUTHORIZED = Message("AccessDenied", "Not authorized to perform {action}", TROUBLESHOOT_SAML)
DURATION_ABOVE_ROLE_MAX = Message(
    "ValidationError",
    "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
    TROUBLESHOOT_SAML,
)
ARN_INVALID = Message("ValidationError", "Request ARN is invalid", OBSERVED)
PACKED_POLICY_TOO_LARGE = Message(
    "PackedPolicyTooLarge",
    "Packed policy consumes {percent}% of allotted space, please use smaller policy.",
    OBSERVED,
)
# What AWS documents no words for: fedmock's, with the code STS uses for the kind of fault.
NOT_A_RESPONSE = Message("InvalidIdentityToken", "Invalid SAML response: {reason}", "")
RECIPIENT_INVALID = Message(
    "InvalidIdentityToken", "Response does not contain a valid Recipient", ""
)
DESTINATION_INVALID = Message("InvalidIdentityToken", "Response Destination is invalid", "")
NOT_YET_VALID = Message("InvalidIdentityToken", "Response is not yet valid", "")
IDP_REJECTED = Message("IDPRejectedClaim", "The identity provider reported a failure", "")
SESSION_DURATION_INVALID = Message(
    "InvalidIdentityToken", "SessionDuration in AuthnResponse must be from 900 to 43200", ""
)
TAGS_INVALID = Message(
    "InvalidIdentityToken", "Invalid session tags in AuthnResponse: {reason}", ""
)

# AssumeRole, GetFederationToken, GetCallerIdentity and the request's own credentials
NOT_AUTHORIZED_ON = Message(
    "AccessDenied",
    "User: {caller} is not authorized to perform: {action} on resource: {resource}",
    OBSERVED,
)
FEDERATION_WITH_SESSION = Message(
    "AccessDenied", "Cannot call GetFederationToken with session credentials", OBSERVED
)
CREDENTIALS_EXPIRED = Message(
    "ExpiredToken", "The security token included in the request is expired", OBSERVED
)
CREDENTIALS_INVALID = Message(
    "InvalidClientTokenId", "The security token included in the request is invalid.", OBSERVED
)
SIGNATURE_MISMATCH = Message(
    "SignatureDoesNotMatch",
    "The request signature we calculated does not match the signature you provided. Check "
    "your AWS Secret Access Key and signing method. Consult the service documentation for "
    "details.",
    OBSERVED,
)
MISSING_AUTHENTICATION = Message(
    "MissingAuthenticationToken", "Request is missing Authentication Token", OBSERVED
)
UNKNOWN_ACTION = Message(
    "InvalidAction", "Could not find operation {action} for version {version}", OBSERVED
)

# IAM
ROLE_NOT_FOUND = Message("NoSuchEntity", "The role with name {name} cannot be found.", OBSERVED)
ROLE_EXISTS = Message("EntityAlreadyExists", "Role with name {name} already exists.", OBSERVED)
PROVIDER_NO_SUCH_ENTITY = Message("NoSuchEntity", "SAMLProvider {arn} not found", "")
PROVIDER_EXISTS = Message("EntityAlreadyExists", "SAMLProvider {name} already exists", "")
LIMIT_EXCEEDED = Message("LimitExceeded", "Cannot exceed quota for {quota}: {limit}", OBSERVED)
METADATA_UNPARSEABLE = Message("InvalidInput", "Could not parse metadata", TROUBLESHOOT_SAML)
POLICY_SYNTAX = Message("MalformedPolicyDocument", "Syntax errors in policy.", OBSERVED)
POLICY_PROHIBITED_FIELD = Message(
    "MalformedPolicyDocument", "Has prohibited field {field}", OBSERVED
)
POLICY_INVALID_PRINCIPAL = Message(
    "MalformedPolicyDocument", "Invalid principal in policy: {principal}", OBSERVED
)
POLICY_TRUST_ACTIONS = Message(
    "MalformedPolicyDocument",
    "AssumeRole policy may only specify STS AssumeRole actions.",
    OBSERVED,
)


def constraint(
    value: object,
    member: str,
    rule: str,
    explanation: Iterable[str] = (),
    *,
    sensitive: bool = False,
) -> StsError:
    """A ValidationError in AWS's format for a parameter that breaks the API model.

    `member` is the parameter in lower camel case, as AWS names it ('durationSeconds');
    `rule` the constraint ('Member must have value greater than or equal to 900'). A
    sensitive member (the SAMLAssertion) is named without its value.
    """
    shown = "" if sensitive else (" null" if value is None else f" '{value}'")
    return StsError(
        "ValidationError",
        f"1 validation error detected: Value{shown} at '{member}' failed to satisfy "
        f"constraint: {rule}",
        explanation,
    )
