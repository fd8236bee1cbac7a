"""AssumeRoleWithSAML through boto3, and AWS's refusals as one line naming the fix."""

from datetime import UTC, datetime

from .errors import CliError

# What to do about each of AWS's AssumeRoleWithSAML errors (R17), in the user's terms.
FIXES = {
    "InvalidIdentityToken": "the IdP metadata IAM holds does not match the assertion "
    "(a rotated key IAM never received?): run `manage.py sync_iam_provider`, or check the "
    "Issuer and audience",
    "ExpiredTokenException": "the assertion is outside its time window: check both clocks "
    "(and fedmock's clock offset), then run again",
    "IDPRejectedClaim": "the IdP refused or the assertion's claims are wrong: check the user's "
    "roles and the RoleSessionName attribute",
    "AccessDenied": "the role's trust policy does not let this provider or user assume it: "
    "check its Principal (the SAML provider), Action (sts:AssumeRoleWithSAML, and "
    "sts:TagSession if tags are sent) and SAML:* conditions",
    "ValidationError": "check --duration (900 seconds up to the role's maximum) and the ARNs",
    "MalformedPolicyDocument": "the session policy is not valid JSON policy",
    "PackedPolicyTooLarge": "send fewer or shorter session tags",
    "RegionDisabledException": "activate STS in this region, or pass another --region",
    "InvalidParameterValue": "check the ARNs and --duration",
}
EXPLANATION_HEADER_PREFIX = "x-fedmock-"


def default_endpoint_label(region: str | None) -> str:
    return f"aws:{region or 'default'}"


def _iso(moment) -> str:
    if isinstance(moment, datetime):
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(moment)


def assume_role_with_saml(
    saml_response: str,
    role_arn: str,
    principal_arn: str,
    *,
    endpoint: str | None,
    region: str | None,
    duration: int | None,
) -> dict:
    """The Credentials (Expiration as ISO 8601 text) and the assumed role's ARN."""
    import boto3
    import botocore.exceptions
    from botocore import UNSIGNED
    from botocore.config import Config

    where = endpoint or "AWS STS"
    try:
        session = boto3.session.Session(region_name=region)
        client = session.client(
            "sts",
            # The request carries the assertion, not AWS credentials: unsigned, as AWS
            # documents AssumeRoleWithSAML, so no profile's credentials are looked up (the
            # one calling us may be that profile).
            region_name=session.region_name or "us-east-1",
            endpoint_url=endpoint,
            config=Config(
                signature_version=UNSIGNED,
                connect_timeout=10,
                read_timeout=60,
                retries={"max_attempts": 2, "mode": "standard"},
            ),
        )
        request = {
            "RoleArn": role_arn,
            "PrincipalArn": principal_arn,
            "SAMLAssertion": saml_response,
        }
        if duration is not None:
            request["DurationSeconds"] = duration
        answer = client.assume_role_with_saml(**request)
    except botocore.exceptions.ClientError as error:
        raise refusal(error.response, where) from error
    except botocore.exceptions.ParamValidationError as error:
        raise CliError("ValidationError (boto3)", str(error), "check --duration", 2) from error
    except botocore.exceptions.EndpointConnectionError as error:
        raise CliError(
            "STS unreachable",
            f"{where}: {error}",
            "check --sts-endpoint (fedmock's own STS is {idp}/aws/)",
        ) from error
    except botocore.exceptions.BotoCoreError as error:
        raise CliError(f"STS call failed ({type(error).__name__})", str(error), "") from error
    credentials = dict(answer["Credentials"])
    credentials["Expiration"] = _iso(credentials["Expiration"])
    return {
        "Credentials": credentials,
        "AssumedRoleArn": answer.get("AssumedRoleUser", {}).get("Arn", ""),
    }


def refusal(response: dict, where: str) -> CliError:
    error = response.get("Error", {})
    code = error.get("Code") or "Unknown"
    message = error.get("Message") or ""
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    # fedmock's local STS adds what AWS never says: which check or condition failed.
    explanation = "; ".join(
        value
        for name, value in sorted(headers.items())
        if name.startswith(EXPLANATION_HEADER_PREFIX)
    )
    fix = FIXES.get(code, "see AWS's documentation of AssumeRoleWithSAML for this code")
    if explanation:
        fix = f"{fix} (fedmock explains: {explanation})"
    return CliError(f"{code} from {where}", message or code, fix)
