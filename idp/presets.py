"""Ready-made service providers and rule sets: data, not code branches.

`ensure_aws_preset` takes the ServiceProvider model class, so the data
migration can pass its historical model and `seed_demo` the current one.
"""

from dataclasses import dataclass, field

from django.db import transaction

from .saml import aws
from .saml import constants as c

URI = c.ATTRNAME_URI
BASIC = c.ATTRNAME_BASIC


def _aws_rule(order: int, name: str, **rule) -> dict:
    return {
        "order": order,
        "attribute_name": aws.ATTRIBUTE_PREFIX + name,
        "name_format": URI,
        "friendly_name": name,
        **rule,
    }


SESSION_NAME_FROM_EMAIL = _aws_rule(
    20, "RoleSessionName", source="attribute", source_attribute="email"
)

AWS_PRESET_RULES = [
    _aws_rule(
        10,
        "Role",
        description="Role from AWS-<account>-<role> groups",
        source="group_regex",
        group_pattern=r"^AWS-(?P<account>\d{12})-(?P<role>[\w+=,.@-]+)$",
        value="arn:aws:iam::{account}:role/{role},arn:aws:iam::{account}:saml-provider/{provider}",
    ),
    SESSION_NAME_FROM_EMAIL,
    _aws_rule(30, "SessionDuration", source="literal", value="3600"),
    _aws_rule(
        40, "PrincipalTag:department", source="attribute", source_attribute="attr.department"
    ),
    _aws_rule(
        41, "PrincipalTag:costCenter", source="attribute", source_attribute="attr.costCenter"
    ),
]


# The preset SP's own settings; `ensure_aws_preset` and the aws-preset rule set share them.
AWS_PRESET_SETTINGS = {
    "profile": "aws",
    "nameid_format": c.NAMEID_PERSISTENT,
    "nameid_source": "persistent",
}


@dataclass(frozen=True)
class RuleSet:
    title: str
    description: str
    rules: list[dict]
    sp_settings: dict = field(default_factory=dict)


RULE_SETS = {
    # The way back after another rule set replaced the preset's rules (SessionDuration
    # and the PrincipalTags exist only here).
    "aws-preset": RuleSet(
        "AWS preset",
        "The rules fedmock's AWS preset ships with: Role from AWS-<account>-<role> groups "
        "(role ARN first), RoleSessionName the e-mail, SessionDuration 3600 and the "
        "department and costCenter session tags; persistent opaque NameID. AWS takes no "
        "single logout: a logout round skips it (the console session lasts until it expires).",
        AWS_PRESET_RULES,
        AWS_PRESET_SETTINGS,
    ),
    "aws-adfs": RuleSet(
        "AWS, ADFS-style groups",
        "As the AWS guide for ADFS sets it up: NameID is the account name (persistent), "
        "RoleSessionName the e-mail, and Role comes from AD groups AWS-<account>-<role> "
        "through a RegExReplace, provider ARN first.",
        [
            _aws_rule(
                10,
                "Role",
                description="ADFS RegExReplace over AWS-<account>-<role> groups",
                source="group_regex",
                group_pattern=r"^AWS-(?<account>\d{12})-(?<role>[\w+=,.@-]+)$",
                value="arn:aws:iam::${account}:saml-provider/${provider},"
                "arn:aws:iam::${account}:role/${role}",
            ),
            SESSION_NAME_FROM_EMAIL,
        ],
        {"profile": "aws", "nameid_format": c.NAMEID_PERSISTENT, "nameid_source": "username"},
    ),
    "aws-okta": RuleSet(
        "AWS, Okta-style groups",
        "As Okta's AWS app does it: a group filter with Okta's (?{{name}}…) captures, "
        "matching aws_<account>_<role> (and AWS-<account>-<role>), into provider-first Role "
        "values; RoleSessionName is the Okta user name (the e-mail).",
        [
            _aws_rule(
                10,
                "Role",
                description="Okta group filter aws_<account>_<role>",
                source="group_regex",
                group_pattern=r"(?i)^aws[_-](?{{accountid}}\d{12})[_-](?{{role}}[a-zA-Z0-9+=,.@\-_]+)$",
                value="arn:aws:iam::${accountid}:saml-provider/${provider},"
                "arn:aws:iam::${accountid}:role/${role}",
            ),
            SESSION_NAME_FROM_EMAIL,
        ],
        {"profile": "aws", "nameid_format": c.NAMEID_EMAIL, "nameid_source": "email"},
    ),
    "aws-identity-center": RuleSet(
        "AWS IAM Identity Center",
        "NameID is the e-mail in emailAddress format, equal to the provisioned user name "
        "(R19); department and costCenter go out as AccessControl attributes for ABAC (R20). "
        "It takes no single logout from an external IdP: a logout round skips it.",
        [
            _aws_rule(
                10,
                "AccessControl:department",
                source="attribute",
                source_attribute="attr.department",
            ),
            _aws_rule(
                11,
                "AccessControl:costCenter",
                source="attribute",
                source_attribute="attr.costCenter",
            ),
        ],
        {"profile": "identity_center", "nameid_format": c.NAMEID_EMAIL, "nameid_source": "email"},
    ),
    "generic": RuleSet(
        "Generic",
        "For any SAML application: email, givenName, sn and every group the user is in.",
        [
            {
                "order": 10,
                "attribute_name": "email",
                "source": "attribute",
                "source_attribute": "email",
            },
            {
                "order": 20,
                "attribute_name": "givenName",
                "source": "attribute",
                "source_attribute": "first_name",
            },
            {
                "order": 30,
                "attribute_name": "sn",
                "source": "attribute",
                "source_attribute": "last_name",
            },
            {
                "order": 40,
                "attribute_name": "groups",
                "source": "attribute",
                "source_attribute": "groups",
            },
        ],
        {"profile": "generic"},
    ),
}
for _rule in RULE_SETS["generic"].rules:
    _rule.update(name_format=BASIC, friendly_name=_rule["attribute_name"])


def _uri_rule(order: int, friendly_name: str, name: str, **rule) -> dict:
    return {
        "order": order,
        "attribute_name": name,
        "name_format": URI,
        "friendly_name": friendly_name,
        **rule,
    }


OID = "urn:oid:"
SUBJECT_ID = "urn:oasis:names:tc:SAML:attribute:subject-id"
PAIRWISE_ID = "urn:oasis:names:tc:SAML:attribute:pairwise-id"

# The names of pysaml2's saml2/attributemaps/saml_uri.py, which Shibboleth's stock
# attribute-map.xml shares: the eduPerson and SAML V2.0 Subject Identifier profiles.
RULE_SETS["saml-uri"] = RuleSet(
    "Standard URI names (Shibboleth, SimpleSAMLphp, mellon)",
    "urn:oid names with NameFormat uri, as stock SPs map them: mail, givenName, sn, "
    "displayName, eduPersonPrincipalName (user name@scope), eduPersonAffiliation (member), "
    "isMemberOf (every group), and the SAML subject-id and pairwise-id (opaque@scope, "
    "the scope being the IdP's host).",
    [
        _uri_rule(
            10,
            "mail",
            OID + "0.9.2342.19200300.100.1.3",
            source="attribute",
            source_attribute="email",
        ),
        _uri_rule(
            20, "givenName", OID + "2.5.4.42", source="attribute", source_attribute="first_name"
        ),
        _uri_rule(30, "sn", OID + "2.5.4.4", source="attribute", source_attribute="last_name"),
        _uri_rule(
            40,
            "displayName",
            OID + "2.16.840.1.113730.3.1.241",
            source="template",
            value="{first_name} {last_name}",
        ),
        _uri_rule(
            50,
            "eduPersonPrincipalName",
            OID + "1.3.6.1.4.1.5923.1.1.1.6",
            source="template",
            value="{username}@{scope}",
        ),
        _uri_rule(
            60,
            "eduPersonAffiliation",
            OID + "1.3.6.1.4.1.5923.1.1.1.1",
            source="literal",
            value="member",
        ),
        _uri_rule(
            70,
            "isMemberOf",
            OID + "1.3.6.1.4.1.5923.1.5.1.1",
            source="attribute",
            source_attribute="groups",
        ),
        _uri_rule(80, "subject-id", SUBJECT_ID, source="template", value="{subject_id}"),
        _uri_rule(90, "pairwise-id", PAIRWISE_ID, source="template", value="{pairwise_id}"),
    ],
    {"profile": "generic"},
)


# What an SP imported without a rule set gets (registry, fixtures).
DEFAULT_RULE_SET = "generic"


def ensure_aws_preset(service_provider_model) -> None:
    """AWS sign-in (urn:amazon:webservices) with the demo's rules; left alone if it exists."""
    sp, created = service_provider_model.objects.get_or_create(
        entity_id=aws.AUDIENCE,
        defaults={
            "name": "AWS",
            **AWS_PRESET_SETTINGS,
            "check_policy": "block",
            "iam_provider_name": "fedmock",
            "sign_assertion": True,
            "sign_response": True,
        },
    )
    if not created:
        return
    sp.endpoints.create(location=aws.SIGNIN_ACS, index=0, is_default=True)
    for rule in AWS_PRESET_RULES:
        sp.rules.create(**rule)


@transaction.atomic
def apply_rule_set(sp, name: str) -> list:
    """Replace the SP's own rules (global ones stay) with a ready-made set."""
    rule_set = RULE_SETS[name]
    for setting, value in rule_set.sp_settings.items():
        setattr(sp, setting, value)
    sp.full_clean()
    sp.save()
    sp.rules.all().delete()
    created = []
    for spec in rule_set.rules:
        rule = sp.rules.model(service_provider=sp, **spec)
        rule.full_clean()
        rule.save()
        created.append(rule)
    return created
