"""Push the IdP metadata to an IAM SAML provider with boto3: create it, or update it."""

import contextlib
from dataclasses import dataclass

import boto3
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

# What each AWS error means for someone syncing fedmock's metadata (R17).
AWS_ERROR_HINTS = {
    "EntityAlreadyExists": "a SAML provider with this name exists but could not be updated; "
    "check --account-id",
    "NoSuchEntity": "the SAML provider vanished while it was being updated; run the sync again",
    "InvalidInput": "IAM refused the metadata; check it with `manage.py export_metadata`",
    "LimitExceeded": "the account has too many SAML providers, or this provider too many keys; "
    "delete unused ones",
    "AccessDenied": "the credentials may not call iam:CreateSAMLProvider / UpdateSAMLProvider",
}


class SyncError(Exception):
    """One line that says what went wrong and what to do."""


@dataclass(frozen=True)
class SyncResult:
    action: str  # "created" or "updated"
    arn: str


def provider_arn(account_id: str, name: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account_id}:saml-provider/{name}"


def cli_commands(name: str, metadata_path: str, account_id: str = "<ACCOUNT_ID>") -> list[str]:
    """What an operator runs by hand: create the first time, update after."""
    return [
        f"aws iam create-saml-provider --name {name} "
        f"--saml-metadata-document file://{metadata_path}",
        f"aws iam update-saml-provider --saml-provider-arn {provider_arn(account_id, name)} "
        f"--saml-metadata-document file://{metadata_path}",
    ]


def iam_client(*, account_id: str, region: str, endpoint_url: str, profile: str):
    """boto3's IAM client from the standard credential chain, and the account it acts in
    (STS's GetCallerIdentity when none is given). Call it inside aws_errors()."""
    session = boto3.Session(profile_name=profile or None, region_name=region or "us-east-1")
    iam = session.client("iam", endpoint_url=endpoint_url or None)
    if not account_id:
        sts = session.client("sts", endpoint_url=endpoint_url or None)
        account_id = sts.get_caller_identity()["Account"]
    return iam, account_id


@contextlib.contextmanager
def aws_errors(hints: dict[str, str]):
    """botocore's errors as one SyncError line each, with the hint for an AWS error code."""
    try:
        yield
    except ClientError as error:
        code = error.response["Error"]["Code"]
        message = error.response["Error"].get("Message", "")
        hint = hints.get(code, "see the AWS error above")
        raise SyncError(f"AWS refused ({code}): {message} — {hint}.") from error
    except (NoCredentialsError, PartialCredentialsError) as error:
        raise SyncError(
            f"No AWS credentials ({error}): set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or "
            "pass --profile."
        ) from error
    except ProfileNotFound as error:
        raise SyncError(f"{error}: name a profile from ~/.aws/config.") from error
    except NoRegionError as error:
        raise SyncError(f"{error}: pass --region.") from error
    except (BotoCoreError, ValueError) as error:  # botocore: ValueError("Invalid endpoint")
        raise SyncError(
            f"Could not reach AWS: {error}. Check --endpoint-url and the network."
        ) from error


def sync_provider(
    name: str,
    metadata: str,
    *,
    account_id: str = "",
    region: str = "",
    endpoint_url: str = "",
    profile: str = "",
) -> SyncResult:
    with aws_errors(AWS_ERROR_HINTS):
        iam, account_id = iam_client(
            account_id=account_id, region=region, endpoint_url=endpoint_url, profile=profile
        )
        arn = provider_arn(account_id, name)
        try:
            iam.get_saml_provider(SAMLProviderArn=arn)
        except ClientError as error:
            if error.response["Error"]["Code"] != "NoSuchEntity":
                raise
            created = iam.create_saml_provider(SAMLMetadataDocument=metadata, Name=name)
            return SyncResult("created", created["SAMLProviderArn"])
        updated = iam.update_saml_provider(SAMLMetadataDocument=metadata, SAMLProviderArn=arn)
        return SyncResult("updated", updated["SAMLProviderArn"])
