"""Token faults (idp.oidc.tokens.FAULTS): each breaks one thing, the pure STS check refuses
it with the declared code and message, and boto3 hears the same from the local STS, with
fedmock's explanation; the mint audits a faulty token as such."""

import datetime
import io
import json
import warnings
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from django.core.management import CommandError, call_command
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

from idp import keys
from idp.models import AuditEvent, SigningKey
from idp.oidc import issue, tokens
from idp.oidc import jwks as oidc_jwks
from idp.sts import errors, jwks, state, web_identity

from .api_support import Api, assert_refusal, staff, token_for

JWT = SigningKey.Use.JWT
ACCOUNT = "123456789012"
NOW = datetime.datetime(2026, 5, 1, 12, 0, tzinfo=datetime.UTC)
ISSUER = "https://issuer.example/oidc"
KEY = RSAKey.generate_key(2048, parameters={"kid": "active"})
CLAIMS = {"sub": "repo:acme/app:ref:refs/heads/main", "aud": "sts.amazonaws.com"}


def header(token: str) -> dict:
    return jws.extract_compact(token.encode()).protected


def mint(fault: str | None) -> tokens.Minted:
    broken = tokens.FAULTS[fault] if fault else None
    return tokens.mint(CLAIMS, KEY, "active", issuer=ISSUER, now=NOW, lifetime=300, fault=broken)


def verifies(token: str, key_set: dict) -> bool:
    try:
        jwt.decode(token, KeySet.import_key_set(key_set), algorithms=["RS256"])
    except (JoseError, ValueError):
        return False
    return True


PUBLISHED = {"keys": [KEY.as_dict(private=False)]}
# fault -> (header alg, header kid is the active one, the claims that differ from a good
# token's, verifies against the published key set)
SHAPES = {
    "expired": ("RS256", True, {"iat", "nbf", "exp"}, True),
    "wrong-audience": ("RS256", True, {"aud"}, True),
    "wrong-issuer": ("RS256", True, {"iss"}, True),
    "unknown-kid": ("RS256", False, set(), False),
    "alg-none": ("none", True, set(), False),
    "another-key": ("RS256", True, set(), False),
}


def test_every_fault_has_a_shape_test():
    assert set(SHAPES) == set(tokens.FAULTS)


@pytest.mark.parametrize("name", SHAPES)
def test_each_fault_breaks_one_thing(name):
    alg, active_kid, changed, good_signature = SHAPES[name]
    good, broken = mint(None), mint(name)
    assert broken.fault == name and good.fault is None
    assert header(broken.token)["alg"] == alg
    assert (header(broken.token)["kid"] == "active") is active_kid
    assert broken.kid == header(broken.token)["kid"]
    differing = {
        claim
        for claim in good.claims.keys() | broken.claims.keys()
        if claim != "jti" and good.claims.get(claim) != broken.claims.get(claim)
    }
    assert differing == changed
    assert verifies(broken.token, PUBLISHED) is good_signature
    assert verifies(good.token, PUBLISHED)


def test_expired_ends_a_minute_before_now_with_a_consistent_window():
    claims = mint("expired").claims
    assert claims["exp"] == int(NOW.timestamp()) - tokens.EXPIRED_FOR
    assert claims["exp"] - claims["iat"] == 300 and claims["nbf"] == claims["iat"]
    assert mint("expired").expires_at == NOW - datetime.timedelta(seconds=60)


def test_alg_none_is_joserfcs_unsecured_form_with_an_empty_signature():
    token = mint("alg-none").token
    assert token.endswith(".") and token.count(".") == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        registry = jws.JWSRegistry(algorithms=["none"])
        assert json.loads(jws.deserialize_compact(token, None, registry=registry).payload)


def test_unknown_kid_and_another_key_sign_with_one_throwaway_key_per_process():
    unknown, another = mint("unknown-kid"), mint("another-key")
    public = tokens.throwaway_key().as_dict(private=False)
    assert unknown.kid == tokens.throwaway_key().thumbprint() != KEY.thumbprint()
    assert verifies(unknown.token, {"keys": [{**public, "kid": unknown.kid}]})
    assert verifies(another.token, {"keys": [{**public, "kid": "active"}]})
    assert tokens.throwaway_key() is tokens.throwaway_key()


def test_an_unknown_fault_is_refused_with_the_names():
    with pytest.raises(tokens.TokenError, match="Pick one of expired, wrong-audience"):
        tokens.fault_named("tampered")


# --- the pure STS check: the declared code and message --------------------------------

PROVIDER = web_identity.Provider(ISSUER, ("sts.amazonaws.com",), "arn:provider")


@pytest.mark.parametrize("name", [n for n in tokens.FAULTS if n != "wrong-issuer"])
def test_the_sts_check_refuses_each_fault_as_declared(name):
    fault = tokens.FAULTS[name]
    with pytest.raises(errors.StsError) as excinfo:
        web_identity.validate(
            mint(name).token,
            provider=PROVIDER,
            jwks=PUBLISHED,
            now=NOW,
            duration_seconds=None,
            role_max_session_duration=3600,
        )
    error = excinfo.value
    assert error.code == fault.aws_code
    now, exp = int(NOW.timestamp()), int(NOW.timestamp()) - tokens.EXPIRED_FOR
    assert error.message == fault.aws_message.format(now=now, exp=exp)
    assert error.explanation


def test_a_wrong_issuer_is_refused_before_any_key_as_aws_does():
    # The door finds the provider by iss first (views.py): none exists for .invalid.
    assert web_identity.issuer_of(mint("wrong-issuer").token) == tokens.WRONG_ISSUER
    with pytest.raises(errors.StsError, match="does not match"):
        web_identity.validate(
            mint("wrong-issuer").token,
            provider=PROVIDER,
            jwks=PUBLISHED,
            now=NOW,
            duration_seconds=None,
            role_max_session_duration=3600,
        )


# --- the command and the API ----------------------------------------------------------


@pytest.fixture
def jwt_key(signing_key):
    key, _ = keys.ensure_active_key(JWT)
    keys.forget_cached_keys()
    return key


def test_the_command_mints_a_fault_and_says_so(jwt_key):
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "mint_web_identity_token",
        "--preset",
        "github",
        "--fault",
        "alg-none",
        "--now",
        NOW.isoformat(),
        stdout=out,
        stderr=err,
    )
    assert header(out.getvalue().strip())["alg"] == "none"
    assert "token fault alg-none" in err.getvalue()
    event = AuditEvent.objects.get(flow="web-identity")
    assert event.detail.startswith("FAULT alg-none: Unsigned")


def test_the_command_refuses_an_unknown_fault_in_one_line(jwt_key):
    with pytest.raises(CommandError, match="invalid choice: 'tampered'"):
        call_command("mint_web_identity_token", "--fault", "tampered")


def test_a_good_token_is_audited_without_a_fault(jwt_key):
    issue.issue(preset="github", options=tokens.Options(), now=NOW)
    assert "FAULT" not in AuditEvent.objects.get(flow="web-identity").detail


@pytest.mark.django_db(transaction=True)
def test_the_api_mints_a_fault(idp_url, jwt_key):
    api = Api(idp_url, token_for(staff("root", superuser=True)))
    answer = api.post(
        "/api/v1/web-identity-tokens",
        {"preset": "github", "fault": "another-key", "now": "2026-05-01T12:00:00Z"},
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["fault"] == "another-key"
    assert body["kid"] == header(body["token"])["kid"] == oidc_jwks.signing_jwk()[1]
    assert not verifies(body["token"], api.get("/oidc/jwks").json())
    refusal = assert_refusal(
        api.post("/api/v1/web-identity-tokens", {"preset": "github", "fault": "tampered"}), 400
    )
    assert "fault" in json.dumps(refusal)


# --- end to end: fedmock's issuer, the local STS, boto3 -------------------------------


@pytest.fixture
def sts(idp_url, demo):
    jwks.forget()
    state.forget()
    keys.ensure_active_key(JWT)
    keys.forget_cached_keys()
    made = []

    def client(service):
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

    issuer = idp_url + "/oidc"
    iam = client("iam")
    provider = iam.create_open_id_connect_provider(Url=issuer, ClientIDList=["sts.amazonaws.com"])
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider["OpenIDConnectProviderArn"]},
                "Action": "sts:AssumeRoleWithWebIdentity",
            }
        ],
    }
    role = iam.create_role(RoleName="ci", AssumeRolePolicyDocument=json.dumps(trust))
    yield client("sts"), role["Role"]["Arn"]
    for made_client in made:
        made_client.close()
    jwks.forget()
    state.forget()


# fault -> what the explanation header must name
EXPLAINED = {
    "expired": "exp ",
    "wrong-audience": "wrong-audience.fedmock.invalid",
    "wrong-issuer": "has no OIDC provider for https://wrong-issuer.fedmock.invalid/oidc",
    "unknown-kid": "thumbprints are not checked",
    "alg-none": "header alg 'none'",
    "another-key": "does not verify",
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", EXPLAINED)
def test_boto3_hears_each_fault_from_the_local_sts(sts, name):
    client, role = sts
    good = issue.issue(preset="github", options=tokens.Options())
    assert client.assume_role_with_web_identity(
        RoleArn=role, RoleSessionName="ci", WebIdentityToken=good.token
    )["Credentials"]
    minted = issue.issue(preset="github", options=tokens.Options(), fault=name)
    with pytest.raises(ClientError) as excinfo:
        client.assume_role_with_web_identity(
            RoleArn=role, RoleSessionName="ci", WebIdentityToken=minted.token
        )
    fault, response = tokens.FAULTS[name], excinfo.value.response
    assert response["Error"]["Code"] == fault.aws_code
    if name == "expired":
        assert response["Error"]["Message"].startswith("Token expired: current date/time ")
    else:
        assert response["Error"]["Message"] == fault.aws_message
    assert EXPLAINED[name] in response["ResponseMetadata"]["HTTPHeaders"]["x-fedmock-explanation"]
    minted_event = AuditEvent.objects.get(flow="web-identity", response_id=minted.claims["jti"])
    assert minted_event.detail.startswith(f"FAULT {name}: ")
    refused = AuditEvent.objects.get(flow="sts", outcome=AuditEvent.Outcome.REFUSED)
    assert refused.detail.startswith(f"{fault.aws_code}: ")


# --- docs/scenarios.md shows the faults as the data holds them ------------------------

DOC = Path(__file__).resolve().parent.parent / "docs" / "scenarios.md"
DOC_START = "<!-- generated from idp.oidc.tokens.faults_markdown_table()"
DOC_END = "<!-- end of the generated token table -->"


def test_the_doc_table_is_the_faults():
    table = DOC.read_text().split(DOC_START, 1)[1].split("\n", 1)[1].split(DOC_END, 1)[0]
    assert table == tokens.faults_markdown_table(), (
        "docs/scenarios.md is out of date: paste idp.oidc.tokens.faults_markdown_table() "
        "between the token table's markers"
    )
    assert len(table.splitlines()) == 2 + len(tokens.FAULTS)
