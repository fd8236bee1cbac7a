"""Web-identity tokens: the claims a CI system or a cluster would put in its OIDC token,
signed with our JWT key. Pure: no Django, no clock; `now` and the key are passed in.

Presets are data: each names its default audience and lifetime and builds the claims
GitHub Actions, EKS (IRSA) or GitLab CI would issue for the given repository, ref or
service account, so trust policies written for them (`token.actions.githubusercontent.com:sub`
and so on) can be tried against the local STS.

Token faults are data too (FAULTS, as idp/scenarios.py is for SAML responses): each breaks
one thing a verifier must check (time, audience, issuer, key, algorithm, signature) and
says what AWS's STS answers, so a test suite can prove its own verifier refuses the same.
"""

import datetime
import functools
import re
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import RSAKey

ALGORITHM = "RS256"
AWS_AUDIENCE = "sts.amazonaws.com"
MAX_LIFETIME = 86400  # STS refuses nothing shorter; longer than a day is a mistake here
# The issue times mint() takes (see there): exp, even moved back by the expired fault or
# forward by MAX_LIFETIME, is then a positive NumericDate that datetime can hold.
EARLIEST = datetime.datetime(1970, 1, 2, tzinfo=datetime.UTC)
LATEST = datetime.datetime(9999, 12, 30, tzinfo=datetime.UTC)


class TokenError(ValueError):
    """Options that cannot make a token; title/detail/hint as the house's refusals."""

    def __init__(self, title: str, detail: str, hint: str = ""):
        super().__init__(f"{title}. {detail}" + (f" {hint}" if hint else ""))
        self.title, self.detail, self.hint = title, detail, hint


@dataclass(frozen=True)
class Options:
    """What the caller chose; each preset reads the fields it knows."""

    repo: str = ""
    ref: str = ""
    environment: str = ""
    pull_request: bool = False
    namespace: str = "default"
    service_account: str = "default"
    actor: str = "octocat"


@dataclass(frozen=True)
class Minted:
    token: str
    claims: dict
    kid: str  # the header's kid (with unknown-kid, a kid /oidc/jwks does not publish)
    expires_at: datetime.datetime
    fault: str | None = None  # the token fault it was broken by, if any


@dataclass(frozen=True)
class Preset:
    name: str
    build: Callable[[Options], dict]
    audience: str = AWS_AUDIENCE
    lifetime: int = 300
    claim_names: tuple[str, ...] = field(default=())


_GITHUB_REPO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_GITLAB_PROJECT = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+")
_REF = re.compile(r"refs/(heads|tags)/[^\s:]+")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


def _need(pattern: re.Pattern, value: str, what: str, example: str) -> str:
    if not pattern.fullmatch(value):
        raise TokenError(f"Bad {what}", f"{value!r} is not a {what}.", f"Give one like {example}.")
    return value


def _github(o: Options) -> dict:
    repo = _need(_GITHUB_REPO, o.repo or "acme/app", "GitHub repository", "acme/app")
    owner = repo.split("/")[0]
    if o.pull_request and o.environment:
        raise TokenError(
            "Conflicting options",
            "A token's sub names an environment or a pull request, not both.",
            "Drop --pull-request or --environment.",
        )
    if o.pull_request:
        ref = o.ref or "refs/pull/1/merge"
        sub, event = f"repo:{repo}:pull_request", "pull_request"
    else:
        ref = _need(_REF, o.ref or "refs/heads/main", "Git ref", "refs/heads/main")
        event = "push"
        sub = (
            f"repo:{repo}:environment:{o.environment}"
            if o.environment
            else f"repo:{repo}:ref:{ref}"
        )
    ref_type = "tag" if ref.startswith("refs/tags/") else "branch"
    workflow_ref = f"{repo}/.github/workflows/deploy.yml@{ref}"
    claims = {
        "sub": sub,
        "repository": repo,
        "repository_owner": owner,
        "repository_id": "1",
        "repository_owner_id": "1",
        "repository_visibility": "private",
        "actor": o.actor,
        "actor_id": "1",
        "ref": ref,
        "ref_type": ref_type,
        "ref_protected": "false",
        "event_name": event,
        "workflow": "deploy",
        "workflow_ref": workflow_ref,
        "job_workflow_ref": workflow_ref,
        "run_id": "1",
        "run_number": "1",
        "run_attempt": "1",
        "runner_environment": "github-hosted",
        "head_ref": "feature" if o.pull_request else "",
        "base_ref": "main" if o.pull_request else "",
    }
    if o.environment:
        claims["environment"] = o.environment
    return claims


def _eks(o: Options) -> dict:
    namespace = _need(_DNS_LABEL, o.namespace, "Kubernetes namespace", "default")
    account = _need(_DNS_LABEL, o.service_account, "service account name", "my-app")
    return {
        "sub": f"system:serviceaccount:{namespace}:{account}",
        "kubernetes.io": {
            "namespace": namespace,
            "serviceaccount": {
                "name": account,
                "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, account)),
            },
            "pod": {"name": f"{account}-0", "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, namespace))},
        },
    }


def _gitlab(o: Options) -> dict:
    project = _need(_GITLAB_PROJECT, o.repo or "acme/app", "GitLab project path", "group/project")
    ref = _need(_REF, o.ref or "refs/heads/main", "Git ref", "refs/heads/main")
    ref_type = "tag" if ref.startswith("refs/tags/") else "branch"
    short = ref.split("/", 2)[2]
    claims = {
        "sub": f"project_path:{project}:ref_type:{ref_type}:ref:{short}",
        "namespace_id": "1",
        "namespace_path": project.rsplit("/", 1)[0],
        "project_id": "1",
        "project_path": project,
        "user_id": "1",
        "user_login": o.actor,
        "pipeline_id": "1",
        "pipeline_source": "push",
        "job_id": "1",
        "ref": short,
        "ref_type": ref_type,
        "ref_path": ref,
        "ref_protected": "true",
        "runner_environment": "gitlab-hosted",
    }
    if o.environment:
        claims["environment"] = o.environment
    return claims


PRESETS = {
    preset.name: preset
    for preset in (
        Preset("github", _github, lifetime=300),
        Preset("eks", _eks, lifetime=86400),
        Preset("gitlab", _gitlab, lifetime=300),
    )
}

# --- token faults -----------------------------------------------------------------------

# Where the broken values point: .invalid never resolves (RFC 2606).
WRONG_AUDIENCE = "https://wrong-audience.fedmock.invalid"
WRONG_ISSUER = "https://wrong-issuer.fedmock.invalid/oidc"
EXPIRED_FOR = 60  # seconds: an expired token's exp is this long before `now`


@dataclass(frozen=True)
class Signing:
    """How a token is signed: what mint() hands joserfc (or not, for alg none)."""

    header: dict
    key: RSAKey | None  # None: unsigned (alg none)


@dataclass(frozen=True)
class Fault:
    """A token broken on purpose. Each step is pure and optional: `claims` alters the
    claims about to be signed; `signing` the header and the key."""

    name: str
    breaks: str  # one sentence
    aws_code: str  # what AWS's STS (and the local one) answers
    aws_message: str  # its message: AWS's words where AWS documents them, else fedmock's
    rfc: str  # the rule a verifier enforces to refuse it
    # False: AWS documents no words for it; the message is fedmock's, under STS's code
    aws_words: bool = True
    claims: Callable[[dict, datetime.datetime], dict] | None = None
    signing: Callable[[Signing], Signing] | None = None


@functools.cache
def throwaway_key() -> RSAKey:
    """A key made once per process and never published: unknown-kid and another-key sign
    with it. 2048 bits, as the real keys, so only the key itself is wrong."""
    return RSAKey.generate_key(2048, private=True)


def _expired(claims: dict, now: datetime.datetime) -> dict:
    # The whole window moves back, so iat and nbf stay consistent: only exp is the fault.
    shift = claims["exp"] - int(now.timestamp()) + EXPIRED_FOR
    return {**claims, **{name: claims[name] - shift for name in ("iat", "nbf", "exp")}}


def _unknown_kid(signing: Signing) -> Signing:
    key = throwaway_key()
    return Signing({**signing.header, "kid": key.thumbprint()}, key)


def _another_key(signing: Signing) -> Signing:
    return replace(signing, key=throwaway_key())  # the active kid, another key's signature


def _alg_none(signing: Signing) -> Signing:
    return Signing({**signing.header, "alg": "none"}, None)


FAULTS = {
    fault.name: fault
    for fault in (
        Fault(
            "expired",
            f"exp is {EXPIRED_FOR} s before the issue time given (iat and nbf move back with "
            "it); signed by the active key.",
            "ExpiredTokenException",
            "Token expired: current date/time {now} must be before the expiration date/time {exp}",
            "RFC 7519 §4.1.4 (exp)",
            claims=_expired,
        ),
        Fault(
            "wrong-audience",
            f"aud is {WRONG_AUDIENCE}, no client ID of the IAM OIDC provider.",
            "InvalidIdentityToken",
            "Incorrect token audience",
            "RFC 7519 §4.1.3 (aud) and OIDC Core §3.1.3.7 step 3",
            claims=lambda claims, now: {**claims, "aud": WRONG_AUDIENCE},
        ),
        Fault(
            "wrong-issuer",
            f"iss is {WRONG_ISSUER}, not this issuer; signed by the active key.",
            "InvalidIdentityToken",
            "No OpenIDConnect provider found in your account for " + WRONG_ISSUER,
            "OIDC Core §3.1.3.7 step 2 (iss)",
            claims=lambda claims, now: {**claims, "iss": WRONG_ISSUER},
        ),
        Fault(
            "unknown-kid",
            "Signed by a throwaway key (made once per process); the header's kid is that "
            "key's thumbprint, which /oidc/jwks does not publish.",
            "InvalidIdentityToken",
            "Couldn't retrieve verification key from your identity provider,  please "
            "reference AssumeRoleWithWebIdentity documentation for requirements",
            "RFC 7515 §4.1.4 (kid) and OIDC Core §10.1.1",
            signing=_unknown_kid,
        ),
        Fault(
            "alg-none",
            "Unsigned: header alg none and an empty signature (RFC 7519 §6's unsecured "
            "JWT), with the active kid.",
            "InvalidIdentityToken",
            "The web identity token's signing algorithm is not supported",
            "RFC 8725 §3.1-3.2: a verifier accepts only the algorithms it expects",
            aws_words=False,
            signing=_alg_none,
        ),
        Fault(
            "another-key",
            "Signed by a throwaway key (made once per process) while the header names the "
            "active key's kid: the signature does not verify.",
            "InvalidIdentityToken",
            "The web identity token's signature is invalid",
            "RFC 7515 §5.2 (signature validation)",
            aws_words=False,
            signing=_another_key,
        ),
    )
}


def fault_named(name: str) -> Fault:
    fault = FAULTS.get(name)
    if fault is None:
        raise TokenError(
            "Unknown fault", f"{name!r} is not a token fault.", f"Pick one of {', '.join(FAULTS)}."
        )
    return fault


def _unsecured(header: dict, claims: dict) -> str:
    """RFC 7519 §6's unsecured JWT, built by joserfc's own `none` algorithm: the header,
    the payload and an empty signature. Nothing is signed; it is only the fault's shape."""
    with warnings.catch_warnings():
        # joserfc warns that `none` is deprecated: making such a token is the point here.
        warnings.simplefilter("ignore", SecurityWarning)
        return jwt.encode(header, claims, None, algorithms=["none"])


# For discovery's claims_supported: every claim some preset sets, plus the registered ones.
REGISTERED = ("iss", "sub", "aud", "iat", "nbf", "exp", "jti")


def claims_supported() -> list[str]:
    names = set(REGISTERED)
    for preset in PRESETS.values():
        names.update(preset.build(Options()))
    names.update(("environment",))
    return sorted(names)


def preset_claims(name: str, options: Options) -> dict:
    preset = PRESETS.get(name)
    if preset is None:
        raise TokenError(
            "Unknown preset", f"{name!r} is not a preset.", f"Pick one of {', '.join(PRESETS)}."
        )
    return {"aud": preset.audience, **preset.build(options)}


def default_lifetime(name: str | None) -> int:
    return PRESETS[name].lifetime if name in PRESETS else 3600


def mint(
    claims: dict,
    key: RSAKey,
    kid: str,
    *,
    issuer: str,
    now: datetime.datetime,
    lifetime: int,
    fault: Fault | None = None,
) -> Minted:
    """Sign `claims` with the registered time claims added; `iss` is ours, always (unless
    a fault breaks it on purpose)."""
    if not 1 <= lifetime <= MAX_LIFETIME:
        raise TokenError(
            "Bad lifetime",
            f"{lifetime} s is not between 1 and {MAX_LIFETIME} seconds.",
            "Give --lifetime in seconds, say 3600.",
        )
    if now.tzinfo is None:
        raise TokenError("Bad time", f"{now.isoformat()} has no time zone.", "End it with Z.")
    if not EARLIEST <= now <= LATEST:
        # Python's datetime ends in 9999 and a NumericDate before 1970 is negative: the
        # token's exp (and expires_at) must stay inside both.
        raise TokenError(
            "Bad time",
            f"{now.isoformat()} is not between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}.",
            "Give --now as a time in that range, say 2026-01-01T12:00:00Z.",
        )
    jti = claims.get("jti")
    if jti is not None and not isinstance(jti, str):
        raise TokenError(
            "Bad claim",
            f"jti is {jti!r}; RFC 7519 §4.1.7 makes it a string.",
            "Give --claim jti=VALUE, or leave it out for a fresh UUID.",
        )
    if not claims.get("sub"):
        raise TokenError(
            "No subject", "A web-identity token needs a sub.", "Give --sub or a preset."
        )
    issued = int(now.timestamp())
    expires_at = datetime.datetime.fromtimestamp(issued + lifetime, datetime.UTC)
    full = {
        **claims,
        "iss": issuer,
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime,
        "jti": claims.get("jti") or str(uuid.uuid4()),
    }
    signing = Signing({"alg": ALGORITHM, "kid": kid, "typ": "JWT"}, key)
    if fault is not None and fault.claims is not None:
        full = fault.claims(full, now)
        expires_at = datetime.datetime.fromtimestamp(full["exp"], datetime.UTC)
    if fault is not None and fault.signing is not None:
        signing = fault.signing(signing)
    if signing.key is None:
        token = _unsecured(signing.header, full)
    else:
        token = jwt.encode(signing.header, full, signing.key, algorithms=[ALGORITHM])
    return Minted(
        token, full, signing.header["kid"], expires_at, fault.name if fault is not None else None
    )


def faults_markdown_table() -> str:
    """The token faults as docs/scenarios.md shows them (a test keeps the two equal)."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    rows = [
        "| token fault | what it breaks | the STS answers | the rule a verifier enforces |",
        "|---|---|---|---|",
    ]
    for fault in FAULTS.values():
        words = "" if fault.aws_words else " (fedmock's words: AWS documents none)"
        rows.append(
            f"| `{fault.name}` | {cell(fault.breaks)} | {fault.aws_code}: "
            f"{cell(fault.aws_message)}{words} | {cell(fault.rfc)} |"
        )
    return "\n".join(rows) + "\n"
