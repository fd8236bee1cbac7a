"""fedmock's own issuer (/oidc) and its local STS, end to end with boto3: tokens minted by
idp.oidc are accepted by AssumeRoleWithWebIdentity, and a JWT key rollover
(stage, activate, retire) goes through the STS's JWKS cache as AWS's would."""

import datetime
import json
import time

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from django.utils import timezone

from idp import keys
from idp.models import SigningKey
from idp.oidc import issue, tokens
from idp.sts import jwks, state, web_identity
from idp.sts.web_identity_context import TAGS_CLAIM, web_identity_context

JWT = SigningKey.Use.JWT
ACCOUNT = "123456789012"
MAIN = "repo:acme/app:ref:refs/heads/main"
LATER = datetime.timedelta(days=1)


# --- the JWKS cache: an unknown kid refetches once, rate-limited (a fake fetcher) ---


class Fetcher:
    """Answers the JWKS sets in turn (the last one forever) and counts the fetches."""

    def __init__(self, *sets: list[str]):
        self.sets, self.calls = list(sets), 0

    def __call__(self, issuer: str) -> dict:
        kids = self.sets[min(self.calls, len(self.sets) - 1)]
        self.calls += 1
        return {"keys": [{"kty": "RSA", "kid": kid} for kid in kids]}


def kids(answer: dict) -> list[str]:
    return [key["kid"] for key in answer["keys"]]


@pytest.fixture
def cache():
    jwks.forget()
    yield
    jwks.forget()


T0 = 1000.0
# (steps of (seconds after T0, the token's kid), the JWKS each fetch answers,
#  the kids seen by the last step, how many fetches in all)
CASES = {
    "known kid: one fetch, then the cache": ([(0, "a"), (10, "a"), (299, "a")], [["a"]], ["a"], 1),
    "no kid given: the cache": ([(0, None), (10, None)], [["a"]], ["a"], 1),
    "TTL over: fetched again": ([(0, "a"), (300, "a")], [["a"], ["a"]], ["a"], 2),
    "new kid: one early refetch finds it": (
        [(0, "a"), (5, "b"), (6, "b")],
        [["a"], ["a", "b"]],
        ["a", "b"],
        2,
    ),
    "a flood of unknown kids: one early refetch per 30 s": (
        [(0, "a"), (1, "x1"), (2, "x2"), (20, "x3"), (30.9, "x4")],
        [["a"]],
        ["a"],
        2,
    ),
    "after 30 s an unknown kid may refetch again": (
        [(0, "a"), (1, "x1"), (31, "x2"), (32, "x3")],
        [["a"], ["a"], ["a", "x2"]],
        ["a", "x2"],
        3,
    ),
    "a retired kid is served from the cache until the TTL": (
        [(0, "a"), (100, "a"), (299, "a"), (300, "a")],
        [["a", "b"], ["b"]],
        ["b"],
        2,
    ),
}


@pytest.mark.parametrize(("steps", "sets", "last", "fetches"), CASES.values(), ids=CASES)
def test_the_jwks_cache(cache, steps, sets, last, fetches):
    fetcher = Fetcher(*sets)
    for seconds, kid in steps:
        answer = jwks.keys_for("https://issuer.example", kid, now=T0 + seconds, fetcher=fetcher)
    assert kids(answer) == last
    assert fetcher.calls == fetches


def test_the_rate_limit_is_per_issuer(cache):
    fetcher = Fetcher(["a"])
    for issuer in ("https://one.example", "https://two.example"):
        jwks.keys_for(issuer, "a", now=T0, fetcher=fetcher)
        jwks.keys_for(issuer, "x", now=T0 + 1, fetcher=fetcher)
        jwks.keys_for(issuer, "y", now=T0 + 2, fetcher=fetcher)
    assert fetcher.calls == 4


def test_a_failing_early_refetch_is_rate_limited_too(cache):
    answers = iter([{"keys": [{"kid": "a"}]}])

    def fetcher(issuer):
        try:
            return next(answers)
        except StopIteration:
            raise web_identity.NO_KEY.error("the issuer is down") from None

    jwks.keys_for("https://issuer.example", "a", now=T0, fetcher=fetcher)
    with pytest.raises(Exception, match="retrieve verification key"):
        jwks.keys_for("https://issuer.example", "x", now=T0 + 1, fetcher=fetcher)
    again = jwks.keys_for("https://issuer.example", "y", now=T0 + 2, fetcher=fetcher)
    assert kids(again) == ["a"]  # no second fetch within 30 s: the cached set, refused later


# --- end to end: fedmock's /oidc issuer, the local IAM and STS, boto3 ---

pytestmark_e2e = pytest.mark.django_db(transaction=True)


@pytest.fixture
def aws(idp_url, demo):
    jwks.forget()
    state.forget()
    keys.ensure_active_key(JWT)
    made = []

    def make(service):
        made.append(
            boto3.client(
                service,
                endpoint_url=idp_url + "/aws/",
                region_name="us-east-1",
                aws_access_key_id=ACCOUNT,
                aws_secret_access_key="local",
                config=Config(retries={"max_attempts": 1}),
            )
        )
        return made[-1]

    yield make
    for client in made:
        client.close()
    jwks.forget()
    state.forget()


@pytest.fixture
def role(idp_url, aws):
    issuer = idp_url + "/oidc"
    iam = aws("iam")
    provider = iam.create_open_id_connect_provider(Url=issuer, ClientIDList=["sts.amazonaws.com"])[
        "OpenIDConnectProviderArn"
    ]
    name = web_identity.Provider(issuer, ()).key  # IAM's name: localhost:PORT/oidc
    assert name == issuer.removeprefix("http://") and ":" in name
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {f"{name}:aud": "sts.amazonaws.com"},
                    "StringLike": {f"{name}:sub": "repo:acme/app:ref:refs/heads/main"},
                },
            }
        ],
    }
    return iam.create_role(RoleName="deploy", AssumeRolePolicyDocument=json.dumps(trust))["Role"][
        "Arn"
    ]


def github(**options) -> tokens.Minted:
    return issue.issue(preset="github", options=tokens.Options(repo="acme/app", **options))


def assume(aws, role, token):
    return aws("sts").assume_role_with_web_identity(
        RoleArn=role, RoleSessionName="ci", WebIdentityToken=token
    )


def refused(aws, role, token) -> dict:
    with pytest.raises(ClientError) as excinfo:
        assume(aws, role, token)
    return excinfo.value.response


def published(idp_url) -> list[str]:
    return kids(requests.get(idp_url + "/oidc/jwks", timeout=5).json())


@pytestmark_e2e
def test_a_main_token_from_our_issuer_assumes_the_role(idp_url, aws, role):
    minted = github()
    assert minted.claims["sub"] == MAIN and minted.claims["iss"] == idp_url + "/oidc"
    answer = assume(aws, role, minted.token)
    assert answer["SubjectFromWebIdentityToken"] == MAIN
    assert answer["Audience"] == "sts.amazonaws.com"
    assert answer["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/deploy/ci"


@pytestmark_e2e
def test_a_pull_request_token_is_refused_and_explained(aws, role):
    minted = github(pull_request=True)
    assert minted.claims["sub"] == "repo:acme/app:pull_request"
    response = refused(aws, role, minted.token)
    assert response["Error"]["Code"] == "AccessDenied"
    assert "Not authorized" in response["Error"]["Message"]
    explanation = response["ResponseMetadata"]["HTTPHeaders"]["x-fedmock-explanation"]
    assert ":sub" in explanation


@pytestmark_e2e
def test_a_jwt_key_rollover_through_the_sts_cache(idp_url, aws, role):
    old = github()
    assert published(idp_url) == [old.kid]
    assert assume(aws, role, old.token)  # the STS caches the JWKS with the old key only

    keys.stage(use=JWT)
    keys.forget_cached_keys()  # the workers' key refresh (IDP_KEY_REFRESH_SECONDS), now
    both = published(idp_url)
    assert len(both) == 2 and both[0] == old.kid
    new_kid = both[1]
    still = github()
    assert still.kid == old.kid
    assert assume(aws, role, still.token)

    # activate as tests/test_keys_jwt.py does: `now` past the propagation, no sleeping
    moment = timezone.now() + LATER
    keys.activate(use=JWT, now=moment)
    new = github()
    assert new.kid == new_kid != old.kid
    # the cached JWKS lacks new_kid: the STS refetches once early and accepts it
    assert assume(aws, role, new.token)["SubjectFromWebIdentityToken"] == MAIN
    assert assume(aws, role, old.token)  # the old key is still published

    keys.retire(use=JWT, now=moment + LATER)
    assert published(idp_url) == [new_kid]
    # The STS's cache still holds the old key (up to jwks.TTL); expire it with the
    # cache's own clock instead of waiting 300 s.
    issuer = idp_url + "/oidc"
    assert old.kid in kids(jwks.keys_for(issuer, old.kid))
    assert kids(jwks.keys_for(issuer, now=time.monotonic() + jwks.TTL)) == [new_kid]
    response = refused(aws, role, old.token)
    assert response["Error"]["Code"] == "InvalidIdentityToken"
    assert "Couldn't retrieve verification key" in response["Error"]["Message"]
    assert old.kid in response["ResponseMetadata"]["HTTPHeaders"]["x-fedmock-explanation"]
    assert assume(aws, role, github().token)


# --- one context builder for the STS and the explainer ---

TAGS = {"principal_tags": {"team": ["ci"]}, "transitive_tag_keys": ["team"]}
CLAIMS = {
    "plain": ({"sub": MAIN, "aud": "sts.amazonaws.com"}, ("sts:AssumeRoleWithWebIdentity",)),
    "azp and amr": (
        {"sub": MAIN, "aud": ["a", "sts.amazonaws.com"], "azp": "sts.amazonaws.com", "amr": "pwd"},
        ("sts:AssumeRoleWithWebIdentity",),
    ),
    "session tags": (
        {"sub": MAIN, "aud": "sts.amazonaws.com", TAGS_CLAIM: TAGS},
        ("sts:AssumeRoleWithWebIdentity", "sts:TagSession"),
    ),
}


@pytest.mark.parametrize(("claims", "actions"), CLAIMS.values(), ids=CLAIMS)
def test_the_sts_and_the_explainer_build_one_context(claims, actions):
    issuer = "https://token.actions.githubusercontent.com"
    arn = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
    validated = web_identity.ValidatedToken(
        provider=web_identity.Provider(issuer, ("sts.amazonaws.com",), arn),
        issuer=issuer,
        subject=MAIN,
        audience="sts.amazonaws.com",
        claims={**claims, "iss": issuer},
        duration_seconds=3600,
    )
    explained = web_identity_context({**claims, "iss": issuer}, provider_arn=arn)
    assert validated.policy_context() == dict(explained.context)
    assert validated.required_actions == explained.actions == actions
