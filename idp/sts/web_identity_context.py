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
  `<provider>:oaud` is `aud` ("When the azp field is set, the aud field matches the
  oaud condition key");
- `<provider>:amr` is the `amr` claim, a multivalued key (ForAnyValue/ForAllValues);
- session tags come from the `https://aws.amazon.com/tags` claim (`principal_tags`,
  `transitive_tag_keys`) as aws:RequestTag/*, aws:TagKeys and sts:TransitiveTagKeys,
  and then sts:TagSession must be allowed too;
- the source identity comes from the `https://aws.amazon.com/source_identity` claim
  ("Monitor and control actions taken with assumed roles") as sts:SourceIdentity, and
  then sts:SetSourceIdentity must be allowed too.

The `:aud` rule is the one above and nothing else, for the STS and the explainer alike:
the token's own claim, never the provider's client ID it matched (that is only STS's
`Audience` answer). An `aud` list of several values (and no azp) becomes a multivalued
key: AWS accepts such a token when one audience is a client ID of the provider and
documents no context for the list, so fedmock keeps every value and the evaluator
compares each and says so. An azp avoids the question, as AWS's guide advises for
hybrid apps.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from idp.saml import aws

ACTION = "sts:AssumeRoleWithWebIdentity"
TAGS_CLAIM = "https://aws.amazon.com/tags"
SOURCE_IDENTITY_CLAIM = "https://aws.amazon.com/source_identity"

ContextValue = str | list[str]


@dataclass(frozen=True)
class WebIdentityContext:
    provider: str  # the issuer as IAM names the provider: host and path, no scheme
    context: Mapping[str, ContextValue]
    actions: tuple[str, ...]
    notes: tuple[str, ...] = ()  # claims that are there but not what AWS expects


@dataclass(frozen=True)
class SessionClaims:
    """What a token asks of the session: tags, transitive keys and a source identity.
    `problems` are AWS's rules the claims break (the STS refuses such a token; the
    explainer lists them)."""

    tags: Mapping[str, str]
    transitive_tag_keys: tuple[str, ...]
    source_identity: str | None
    tag_problems: tuple[str, ...] = ()
    source_identity_problems: tuple[str, ...] = ()

    @property
    def problems(self) -> tuple[str, ...]:
        return (*self.tag_problems, *self.source_identity_problems)


def session_claims(claims: Mapping[str, object]) -> SessionClaims:
    """The session tags and source identity of a token, checked by AWS's rules (the same
    checks as the SAML attributes': idp.saml.aws.check_attribute)."""
    problems: list[str] = []
    tags: dict[str, str] = {}
    transitive: tuple[str, ...] = ()
    tags_claim = claims.get(TAGS_CLAIM)
    if tags_claim is not None and not isinstance(tags_claim, Mapping):
        problems.append(f"The {TAGS_CLAIM} claim is {tags_claim!r}, not a JSON object.")
    elif isinstance(tags_claim, Mapping):
        principal = tags_claim.get("principal_tags") or {}
        if not isinstance(principal, Mapping):
            problems.append(f"principal_tags is {principal!r}, not a JSON object.")
            principal = {}
        for key, values in principal.items():
            # AWS's example gives each tag a list of one value; a bare string is read too.
            value = values[0] if isinstance(values, list) and len(values) == 1 else values
            if not isinstance(value, str):
                problems.append(f"Session tag {key!r} must have one string value, not {values!r}.")
                continue
            found = aws.check_attribute(aws.PRINCIPAL_TAG_PREFIX + str(key), (value,))
            problems += [finding.message for finding in found]
            tags[str(key)] = value
        if len(principal) > aws.MAX_TAGS:
            problems.append(f"{len(principal)} session tags; AWS allows at most {aws.MAX_TAGS}.")
        seen: dict[str, str] = {}
        for key in tags:
            if (other := seen.setdefault(key.lower(), key)) != key:
                problems.append(
                    f"Session tag keys {other!r} and {key!r} differ only in case; AWS compares "
                    "keys case-insensitively, so they clash."
                )
        keys = tags_claim.get("transitive_tag_keys") or []
        if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
            problems.append(f"transitive_tag_keys is {keys!r}, not a list of strings.")
        else:
            transitive = tuple(keys)
            for key in transitive:
                if key.lower() not in seen:
                    problems.append(
                        f"transitive_tag_keys names {key!r}, which principal_tags does not "
                        f"hold (it holds {sorted(tags) or 'none'})."
                    )
    source_identity = claims.get(SOURCE_IDENTITY_CLAIM)
    source_problems: list[str] = []
    if source_identity is not None:
        if isinstance(source_identity, str):
            found = aws.check_attribute(aws.SOURCE_IDENTITY, (source_identity,))
            source_problems += [finding.message for finding in found]
        else:
            source_problems.append(
                f"The {SOURCE_IDENTITY_CLAIM} claim is {source_identity!r}, not a string."
            )
            source_identity = None
    return SessionClaims(tags, transitive, source_identity, tuple(problems), tuple(source_problems))


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
    session = session_claims(claims)
    notes += [f"AWS refuses this token: {problem}" for problem in session.problems]
    if session.tags:
        context["aws:TagKeys"] = list(session.tags)
        context.update({f"aws:RequestTag/{key}": value for key, value in session.tags.items()})
    if session.transitive_tag_keys:
        context["sts:TransitiveTagKeys"] = list(session.transitive_tag_keys)
    if session.tags or session.transitive_tag_keys:
        actions.append("sts:TagSession")
    if session.source_identity is not None:
        context["sts:SourceIdentity"] = session.source_identity
        actions.append("sts:SetSourceIdentity")
    return WebIdentityContext(provider, context, tuple(actions), tuple(notes))
