"""What AWS reads from a SAML response: attribute names, and the checks of docs/aws-saml-rules.md.

Every check is a pure function that returns Findings. A finding carries the
rule id (R1…R20, or SAML for protocol problems that are not AWS's own), a
severity, and a message that quotes AWS's error text where it is known and
then names the fix. The checks go further than moto, which verifies nothing.

The package has three seams: `names` (attribute URIs, ARNs, endpoints and
condition keys), `release` (checks of what a release holds and where it goes)
and `response` (the whole-response checker for responses from any IdP), which
`layout` (what a signature covers, read as C14N reads it) and `decryption`
(the SP's key, for R14) serve.
Callers use `from idp.saml import aws` and the names re-exported here.
"""

from .findings import Finding, error, warning
from .names import (
    ACCEPTED_NAMEID_FORMATS,
    ACCESS_CONTROL_PREFIX,
    ATTRIBUTE_PREFIX,
    AUDIENCE,
    AUDIENCES,
    PRINCIPAL_TAG_PREFIX,
    PROFILE_AWS,
    PROFILE_IDENTITY_CENTER,
    ROLE,
    ROLE_SESSION_NAME,
    SAML2_NAMEID_PREFIX,
    SESSION_DURATION,
    SIGNIN_ACS,
    SINGLE_NAMES,
    SOURCE_IDENTITY,
    TRANSITIVE_TAG_KEYS,
    RolePair,
    condition_keys,
    name_qualifier,
    only_role,
    parse_role,
    parse_roles,
    profile_for_audience,
    provider_arn,
    role_pairs,
    sub_type,
)
from .release import (
    MAX_TAGS,
    check_algorithms,
    check_attribute,
    check_attribute_name,
    check_endpoints,
    check_name_id,
    check_partition,
    check_release,
    check_transport,
)
from .response import (
    MAX_ENCODED_RESPONSE,
    NS,
    REDEEM_WITHIN,
    WITHOUT_METADATA,
    check_response,
    check_response_with_metadata,
    decode_response,
    read_release,
)

__all__ = [
    "ACCEPTED_NAMEID_FORMATS",
    "ACCESS_CONTROL_PREFIX",
    "ATTRIBUTE_PREFIX",
    "AUDIENCE",
    "AUDIENCES",
    "MAX_ENCODED_RESPONSE",
    "MAX_TAGS",
    "NS",
    "PRINCIPAL_TAG_PREFIX",
    "PROFILE_AWS",
    "PROFILE_IDENTITY_CENTER",
    "REDEEM_WITHIN",
    "ROLE",
    "ROLE_SESSION_NAME",
    "SAML2_NAMEID_PREFIX",
    "SESSION_DURATION",
    "SIGNIN_ACS",
    "SINGLE_NAMES",
    "SOURCE_IDENTITY",
    "TRANSITIVE_TAG_KEYS",
    "WITHOUT_METADATA",
    "Finding",
    "RolePair",
    "check_algorithms",
    "check_attribute",
    "check_attribute_name",
    "check_endpoints",
    "check_name_id",
    "check_partition",
    "check_release",
    "check_response",
    "check_response_with_metadata",
    "check_transport",
    "condition_keys",
    "decode_response",
    "error",
    "name_qualifier",
    "only_role",
    "parse_role",
    "parse_roles",
    "profile_for_audience",
    "provider_arn",
    "read_release",
    "role_pairs",
    "sub_type",
    "warning",
]
