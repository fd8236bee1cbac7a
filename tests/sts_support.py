"""What the local STS's end-to-end tests share: the demo's ARNs and its trust policy."""

import json

from idp.sts import state

ACCOUNT = "111122223333"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/Admin"
READ_ONLY = f"arn:aws:iam::{ACCOUNT}:role/ReadOnly"
PROVIDER = f"arn:aws:iam::{ACCOUNT}:saml-provider/fedmock"
SIGNIN = "https://signin.aws.amazon.com/saml"


def trust_policy(actions=("sts:AssumeRoleWithSAML", "sts:TagSession"), **conditions) -> str:
    """The demo's trust policy (its users carry session tags, so TagSession is allowed too),
    with other actions or more StringEquals conditions."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "FedmockSignIn",
                    "Effect": "Allow",
                    "Principal": {"Federated": PROVIDER},
                    "Action": list(actions),
                    "Condition": {"StringEquals": {"SAML:aud": SIGNIN, **conditions}},
                }
            ],
        }
    )


def stored_copy(provider_arn: str) -> str:
    """The IAM provider's metadata but for validUntil, which moves at midnight UTC."""
    return state.undated(state.provider_metadata(provider_arn).decode())
