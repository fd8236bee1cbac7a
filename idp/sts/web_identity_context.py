"""The trust-policy context of an AssumeRoleWithWebIdentity request, from a token's claims.

Pure: the claims (already decoded, verified or not: that is the caller's business) in,
the provider's name, the condition keys and the actions the policy must allow out. No
Django, no clock, no JOSE. Kept apart from idp/sts/web_identity.py (the STS's token
validation) so that the STS and the explainer (`manage.py explain_web_identity`) build
one and the same context.

The keys are AWS's (IAM User Guide, "Available keys for AWS web identity federation"
and "Pass session tags using AssumeRoleWithWebIdentity"): the provider's name is the
issuer URL without `https://` and without a trailing slash (`token.actions.
githubusercontent.com`, `oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE`), and it prefixes
the claims AWS maps:

- `<provider>:sub` is the `sub` claim;
- `<provider>:aud` is the `azp` claim when the token has one, else `aud`; then
  `<provider>:oaud` is `aud` ("if azp is set, aud maps to oaud");
- `<provider>:amr` is the `amr` claim, a multivalued key (ForAnyValue/ForAllValues);
- session tags come from the `https://aws.amazon.com/tags` claim (`principal_tags`,
  `transitive_tag_keys`) as aws:RequestTag/*, aws:TagKeys and sts:TransitiveTagKeys,
  and then sts:TagSession must be allowed too.

An `aud` list of several values becomes a multivalued key (AWS accepts the token when
one audience is a client ID of the provider; it documents no context for the list),
so the evaluator compares each value and says so.
"""

from collections.abc import Mapping
from dataclasses import dataclass

ACTION = "sts:AssumeRoleWithWebIdentity"
TAGS_CLAIM = "https://aws.amazon.com/tags"

ContextValue = str | list[str]


@dataclass(frozen=True)
class WebIdentityContext:
    provider: str  # the issuer as IAM names the provider: host and path, no scheme
    context: Mapping[str, ContextValue]
    actions: tuple[str, ...]
    notes: tuple[str, ...] = ()  # claims that are there but not what AWS expects


def provider_name(issuer: str) -> str:
    """`https://token.actions.githubusercontent.com/` -> `token.actions.githubusercontent.com`."""
    name = issuer.strip()
    for scheme in ("https://", "http://"):
        if name.lower().startswith(scheme):
            name = name[len(scheme) :]
            break
    return name.rstrip("/")


def _value(claim: object) -> ContextValue | None:
    if isinstance(claim, str):
        return claim
    if isinstance(claim, list) and all(isinstance(item, str) for item in claim):
        return claim[0] if len(claim) == 1 else list(claim)
    if isinstance(claim, bool | int | float):
        return str(claim).lower() if isinstance(claim, bool) else str(claim)
    return None


def web_identity_context(
    claims: Mapping[str, object], *, provider_arn: str | None = None
) -> WebIdentityContext:
    """The condition keys a trust policy sees for a token with these claims."""
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not issuer.strip():
        raise ValueError("the token has no iss claim, so it names no provider")
    provider = provider_name(issuer)
    context: dict[str, ContextValue] = {}
    notes: list[str] = []
    for claim in ("sub", "amr"):
        if claim in claims:
            value = _value(claims[claim])
            if value is None:
                notes.append(f"The {claim} claim is {claims[claim]!r}, not a string: ignored.")
            else:
                context[f"{provider}:{claim}"] = (
                    [value] if claim == "amr" and isinstance(value, str) else value
                )
    audience = _value(claims.get("aud"))
    authorized = _value(claims.get("azp"))
    if authorized is not None:
        context[f"{provider}:aud"] = authorized
        if audience is not None:
            context[f"{provider}:oaud"] = audience
    elif audience is not None:
        context[f"{provider}:aud"] = audience
    if provider_arn:
        context["aws:FederatedProvider"] = provider_arn
    actions = [ACTION]
    tags_claim = claims.get(TAGS_CLAIM)
    if isinstance(tags_claim, Mapping):
        tags = {}
        for key, values in (tags_claim.get("principal_tags") or {}).items():
            value = _value(values)
            if isinstance(value, str):
                tags[key] = value
            else:
                notes.append(f"Session tag {key!r} must have one string value, not {values!r}.")
        if tags:
            context["aws:TagKeys"] = list(tags)
            context.update({f"aws:RequestTag/{key}": value for key, value in tags.items()})
            actions.append("sts:TagSession")
        transitive = tags_claim.get("transitive_tag_keys")
        if isinstance(transitive, list) and transitive:
            context["sts:TransitiveTagKeys"] = [str(key) for key in transitive]
    return WebIdentityContext(provider, context, tuple(actions), tuple(notes))
