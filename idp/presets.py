"""Ready-made service providers: data, not code branches.

Functions take the ServiceProvider model class, so the data migration can pass
its historical model and `seed_demo` the current one.
"""

from .saml import aws
from .saml import constants as c

AWS_ROLE_FROM_GROUPS = {
    "kind": "group_regex",
    "attribute_name": aws.ROLE,
    "name_format": c.ATTRNAME_URI,
    "friendly_name": "Role",
    "group_pattern": r"^AWS-(?P<account>\d{12})-(?P<role>[\w+=,.@-]+)$",
    "value_template": "arn:aws:iam::{account}:role/{role},"
    "arn:aws:iam::{account}:saml-provider/{provider}",
}
AWS_SESSION_NAME_FROM_EMAIL = {
    "kind": "user_value",
    "attribute_name": aws.ROLE_SESSION_NAME,
    "name_format": c.ATTRNAME_URI,
    "friendly_name": "RoleSessionName",
    "source": "email",
}


def ensure_aws_preset(service_provider_model) -> None:
    """AWS sign-in (urn:amazon:webservices) with Role from AWS-<account>-<role> groups."""
    sp, created = service_provider_model.objects.get_or_create(
        entity_id=aws.AUDIENCE,
        defaults={
            "name": "AWS",
            "profile": "aws",
            "iam_provider_name": "fedmock",
            "nameid_format": c.NAMEID_PERSISTENT,
            "nameid_source": "persistent",
            "sign_assertion": True,
            "sign_response": True,
        },
    )
    if not created:
        return
    sp.endpoints.create(location=aws.SIGNIN_ACS, index=0, is_default=True)
    sp.rules.create(order=10, **AWS_ROLE_FROM_GROUPS)
    sp.rules.create(order=20, **AWS_SESSION_NAME_FROM_EMAIL)
