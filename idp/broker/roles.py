"""The roles a user may broker: the Role values their claim rules give at AWS, as for SAML.

The same evaluation as the portal's AWS tiles (idp/portal.py): every enabled AWS service
provider's rules over the user's directory entry, its Role attribute parsed into pairs.
The broker assumes only one of these, whatever a form or URL names.
"""

import re

from idp import cache, claims
from idp.models import ServiceProvider
from idp.saml import aws
from idp.saml.errors import SamlError

SESSION_NAME_MAX = 64  # RoleSessionName and SourceIdentity: [\w+=,.@-]{2,64}
_NOT_ALLOWED = re.compile(r"[^\w+=,.@-]", re.ASCII)


def brokerable(user, multi_factor: bool = False) -> tuple[aws.RolePair, ...]:
    """The user's role pairs over all enabled AWS SPs, each role once, in rule order. An SP
    that requires MFA gives its roles only to a multi-factor sign-in, as its assertions."""
    entry = cache.directory_entry(user)
    pairs: dict[str, aws.RolePair] = {}
    for sp in ServiceProvider.objects.filter(enabled=True).order_by("id"):
        if not sp.is_aws or (sp.require_mfa and not multi_factor):
            continue
        try:
            attributes = claims.evaluate(cache.rules_for(sp), entry, sp).attributes
        except SamlError:  # a misconfigured SP gives no roles; its portal tile says why
            continue
        values = next((a.values for a in attributes if a.name == aws.ROLE), ())
        for pair in aws.parse_roles(values):
            pairs.setdefault(pair.role_arn, pair)
    return tuple(pairs.values())


def allowed(role_arn: str, pairs: tuple[aws.RolePair, ...]) -> aws.RolePair | None:
    return next((pair for pair in pairs if pair.role_arn == role_arn), None)


def session_name(username: str) -> str:
    """The username in AWS's RoleSessionName pattern: other characters become '-', at
    least 2 characters and at most 64 (also a valid SourceIdentity)."""
    name = _NOT_ALLOWED.sub("-", username)[:SESSION_NAME_MAX]
    return name.ljust(2, "-")
