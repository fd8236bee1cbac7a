"""AssumeRole with the broker's own credentials: boto3's standard chain, nothing stored.

boto3's default session finds them as any AWS tool does (AWS_ACCESS_KEY_ID/…, AWS_PROFILE
and ~/.aws, container and instance roles). Against fedmock's own STS, a process with
none uses LOCAL_ACCESS_KEY_ID, the local root of the demo account: the local STS checks
no secret for a long-term key (idp/sts/views.py), so `make run` needs no setup.

SourceIdentity: the broker asks for the username as SourceIdentity; a trust policy that
does not allow sts:SetSourceIdentity refuses that, and the broker asks once more without
it, so a role works either way and the session says whether it carries one.

Neither the broker's key nor its secret ever reaches a page, the audit or a log: the
refusals below name only the STS's code and message.
"""

import datetime
from dataclasses import dataclass

from . import Refusal
from .signin import Credentials

LOCAL_ACCESS_KEY_ID = "111122223333"  # any long-term key is an account's root locally
LOCAL_SECRET_ACCESS_KEY = "local"  # noqa: S105 - the local STS checks no secret
DURATION = 3600
REGION = "us-east-1"


class BrokerError(Refusal):
    pass


@dataclass(frozen=True)
class Brokered:
    credentials: Credentials
    expiration: datetime.datetime
    assumed_role_arn: str
    source_identity: str  # "" when the trust policy did not allow sts:SetSourceIdentity


def _client(endpoint: str | None, local: bool):
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    config = Config(connect_timeout=5, read_timeout=20, retries={"max_attempts": 1})
    region = session.region_name or REGION
    if local and session.get_credentials() is None:
        return session.client(
            "sts",
            region_name=region,
            endpoint_url=endpoint,
            aws_access_key_id=LOCAL_ACCESS_KEY_ID,
            aws_secret_access_key=LOCAL_SECRET_ACCESS_KEY,
            config=config,
        )
    return session.client("sts", region_name=region, endpoint_url=endpoint, config=config)


def _refusal(error, where: str) -> BrokerError:
    response = error.response
    code = response.get("Error", {}).get("Code") or "Unknown"
    message = response.get("Error", {}).get("Message") or code
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    explanation = headers.get("x-fedmock-explanation", "")
    hints = {
        "AccessDenied": "the role's trust policy must let fedmock's own principal assume it "
        '(Principal {"AWS": "<its account or ARN>"}, Action sts:AssumeRole)',
        "InvalidClientTokenId": "the broker's access key is unknown there (the local STS knows "
        "only the temporary keys it issued): give fedmock's process a long-term key",
    }
    return BrokerError(
        f"{code} from {where}",
        message + (f" (fedmock explains: {explanation})" if explanation else ""),
        hints.get(
            code, "check the broker's STS endpoint (IDP_BROKER_STS_ENDPOINT) and its credentials"
        ),
        status=403 if code == "AccessDenied" else 502,
    )


def assume_role(role_arn: str, session_name: str, *, endpoint: str | None, local: bool) -> Brokered:
    import botocore.exceptions

    where = endpoint or "AWS STS"
    client = None
    try:
        client = _client(endpoint, local)
        request = {
            "RoleArn": role_arn,
            "RoleSessionName": session_name,
            "DurationSeconds": DURATION,
        }
        try:
            answer = client.assume_role(**request, SourceIdentity=session_name)
            source_identity = session_name
        except botocore.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") != "AccessDenied":
                raise
            # Perhaps only sts:SetSourceIdentity is refused: without it, once.
            answer = client.assume_role(**request)
            source_identity = ""
    except botocore.exceptions.NoCredentialsError:
        raise BrokerError(
            "No broker credentials",
            "boto3's credential chain found no AWS credentials for fedmock's process",
            "give fedmock's process credentials (AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE), or point IDP_BROKER_STS_ENDPOINT at "
            "the local STS (local)",
        ) from None
    except botocore.exceptions.ClientError as error:
        raise _refusal(error, where) from None
    except botocore.exceptions.BotoCoreError as error:
        raise BrokerError(
            "STS unreachable",
            f"{where}: {type(error).__name__}",
            "check IDP_BROKER_STS_ENDPOINT; a single sync gunicorn worker cannot call its "
            "own /aws/ (run with WEB_CONCURRENCY=2 or more)",
        ) from None
    finally:
        if client is not None:
            client.close()  # no kept-alive connection outlives the request
    issued = answer["Credentials"]
    return Brokered(
        credentials=Credentials(
            issued["AccessKeyId"], issued["SecretAccessKey"], issued["SessionToken"]
        ),
        expiration=issued["Expiration"],
        assumed_role_arn=answer.get("AssumedRoleUser", {}).get("Arn", ""),
        source_identity=answer.get("SourceIdentity", source_identity),
    )
