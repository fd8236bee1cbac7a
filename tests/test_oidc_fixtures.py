"""Fixtures for web identity: `oidc_clients:` (secrets given in clear, stored hashed, never
dumped), `iam: oidc_providers:` (`url: fedmock` and `{fedmock-oidc}` in trust policies),
and the demo's web-identity loop: a GitHub-shaped token through boto3 and the local STS."""

import io
import json

import boto3
import pytest
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError
from django.contrib.auth.hashers import check_password
from django.core.management import call_command

from idp import fixtures, keys
from idp.fixtures import oidc_clients
from idp.models import LoadedFixture, SigningKey
from idp.oidc.models import Client
from idp.sts import jwks, state
from idp.sts.models import OidcProvider, Role

APP = {
    "client_id": "ci-app",
    "name": "CI app",
    "redirect_uris": ["http://127.0.0.1:8080/callback"],
    "grant_types": ["authorization-code", "client-credentials"],
    "allowed_scopes": ["openid", "groups"],
    "client_secret": "ci-app-secret",
}
ISSUER = "http://127.0.0.1:8000/oidc"


@pytest.fixture(autouse=True)
def base_url(settings):
    settings.IDP_BASE_URL = "http://127.0.0.1:8000"


def load(data: dict, **options):
    return fixtures.load(data, source="test.yaml", **options)


def client(client_id: str = "ci-app") -> Client:
    return Client.objects.get(client_id=client_id)


# --- oidc_clients ---


@pytest.mark.django_db
def test_a_client_is_stored_with_a_hashed_secret_and_reloads_unchanged():
    load({"oidc_clients": [APP]})
    row = client()
    assert row.client_secret != "ci-app-secret" and check_password(
        "ci-app-secret", row.client_secret
    )
    assert row.redirect_uris == "http://127.0.0.1:8080/callback"
    assert (row.client_type, row.algorithm, row.authorization_grant_type) == (
        "confidential",
        "RS256",
        "authorization-code",
    )
    assert (row.grant_types, row.allowed_scopes) == (APP["grant_types"], APP["allowed_scopes"])
    saved = (row.client_secret, row.updated)
    load({"oidc_clients": [APP]})
    assert (client().client_secret, client().updated) == saved  # idempotent: no write
    # The copy a reset re-applies holds the hash, never the secret in clear.
    stored = LoadedFixture.objects.get().data["oidc_clients"]
    assert stored == [
        {**{k: v for k, v in APP.items() if k != "client_secret"}, "client_secret_hash": saved[0]}
    ]
    assert "ci-app-secret" not in json.dumps(LoadedFixture.objects.get().data)


@pytest.mark.django_db
def test_a_changed_secret_replaces_and_an_omitted_one_keeps():
    load({"oidc_clients": [APP]})
    load({"oidc_clients": [{**APP, "client_secret": "rotated"}]})
    assert check_password("rotated", client().client_secret)
    without = {k: v for k, v in APP.items() if k != "client_secret"}
    load({"oidc_clients": [{**without, "name": "Renamed"}]})
    assert client().name == "Renamed" and check_password("rotated", client().client_secret)
    load({"oidc_clients": [{"client_id": "fresh", "grant_types": ["client-credentials"]}]})
    fresh = client("fresh")  # a random secret nobody knows: the API's …/secret shows a new one
    assert fresh.client_secret and fresh.client_type == "confidential"
    assert fresh.allowed_scopes == ["openid", "profile", "email"] and fresh.redirect_uris == ""


@pytest.mark.django_db
def test_reset_restores_clients_and_prune_follows_the_section():
    load({"oidc_clients": [APP]})
    row = client()
    row.client_secret, row.name = "changed-by-hand", "Hand"
    row.save()
    Client.objects.create(
        client_id="extra", client_type="public", redirect_uris="http://127.0.0.1/cb"
    )
    fixtures.reset()
    assert client().name == "CI app" and check_password("ci-app-secret", client().client_secret)
    assert not Client.objects.filter(client_id="extra").exists()  # named nowhere: pruned
    # Without the section, a load (even with prune) leaves the clients alone, as iam: does.
    load({"users": []}, prune=True)
    assert Client.objects.filter(client_id="ci-app").exists()
    load({"oidc_clients": []}, prune=True)
    assert not Client.objects.exists()


@pytest.mark.django_db
def test_missing_only_creates_and_keeps():
    load({"oidc_clients": [APP]})
    load({"oidc_clients": [{**APP, "name": "Other", "client_secret": "x"}]}, missing_only=True)
    assert client().name == "CI app" and check_password("ci-app-secret", client().client_secret)


@pytest.mark.django_db
def test_a_dump_holds_no_secret_and_loads_back():
    load(
        {
            "oidc_clients": [
                APP,
                {
                    "client_id": "spa",
                    "client_type": "public",
                    "redirect_uris": ["http://localhost:3000/cb"],
                },
            ]
        }
    )
    secret_hash = client().client_secret
    dumped = fixtures.dump()
    assert [c["client_id"] for c in dumped["oidc_clients"]] == ["ci-app", "spa"]
    text = fixtures.to_yaml(dumped)
    assert text.startswith(oidc_clients.DUMP_NOTE) and "secrets are not dumped" in text
    assert secret_hash not in text and "ci-app-secret" not in text
    assert "client_secret" not in text
    fixtures.load(yaml.safe_load(text), source="dump", prune=True)
    assert fixtures.dump() == dumped
    assert client().client_secret == secret_hash  # the dump kept the secret it did not hold


def refused(data: dict) -> str:
    before = list(Client.objects.values_list("client_id", flat=True))
    with pytest.raises(fixtures.FixtureError) as excinfo:
        load(data)
    assert list(Client.objects.values_list("client_id", flat=True)) == before
    return excinfo.value.detail


CLIENT_ERRORS = {
    "no client_id": ({"name": "x"}, "oidc_clients[0], client_id: must be text"),
    "a slash in the client_id": ({"client_id": "a/b"}, "client_id: use printable"),
    "an unknown key": ({**APP, "secret": "x"}, "oidc_clients[0], secret: unknown key"),
    "listed twice": (
        [APP, APP],
        "oidc_clients[1] (ci-app), client_id: 'ci-app' is already oidc_clients[0] (ci-app)",
    ),
    "a public client with a secret": (
        {**APP, "client_type": "public"},
        "(ci-app), client_secret: a public client has no secret",
    ),
    "secret and hash": (
        {**APP, "client_secret_hash": "md5$x$y"},
        "client_secret: give client_secret or client_secret_hash",
    ),
    "not a hash": (
        {"client_id": "x", "client_secret_hash": "plain"},
        "client_secret_hash: not a hash",
    ),
    "an unknown grant": (
        {**APP, "grant_types": ["implicit"]},
        "(ci-app), grant_types: Unknown grant implicit",
    ),
    "an unknown scope": ({**APP, "allowed_scopes": ["admin"]}, "allowed_scopes: Unknown scope"),
    "a grant twice": (
        {**APP, "grant_types": ["client-credentials", "client-credentials"]},
        "grant_types[1]: 'client-credentials' is listed twice",
    ),
    "a blank in a redirect URI": (
        {**APP, "redirect_uris": ["http://a.example/cb http://b.example/cb"]},
        "redirect_uris[0]: a URI has no blanks",
    ),
    "a redirect URI of another scheme": (
        {**APP, "redirect_uris": ["ftp://a.example/cb"]},
        "(ci-app), redirect_uris:",
    ),
    "the code flow without a redirect URI": (
        {**APP, "redirect_uris": []},
        "redirect_uris: redirect_uris cannot be empty",
    ),
    "an unknown client type": ({**APP, "client_type": "secret"}, "client_type: Value 'secret'"),
    "a flag as text": ({**APP, "skip_authorization": "yes"}, "skip_authorization: must be true"),
    "a secret that YAML read as a number": ({**APP, "client_secret": 1234}, "must be text"),
    "the section not a list": ({"client_id": "x"}, "oidc_clients: must be a list"),
}


@pytest.mark.django_db
@pytest.mark.parametrize(("entry", "words"), CLIENT_ERRORS.values(), ids=CLIENT_ERRORS)
def test_a_bad_client_entry_is_named_and_nothing_is_written(entry, words):
    entries = entry if isinstance(entry, list) else [entry]
    if words.startswith("oidc_clients: must be a list"):
        entries = entry
    detail = refused({"oidc_clients": entries})
    assert words in detail, detail


# --- iam: oidc_providers ---

ROLE = {
    "name": "Deploy",
    "account": "111122223333",
    "trust_policy": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {
                    "Federated": "arn:aws:iam::111122223333:oidc-provider/{fedmock-oidc}"
                },
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {"{fedmock-oidc}:aud": "sts.amazonaws.com"}},
            }
        ],
    },
}


@pytest.mark.django_db
def test_url_fedmock_and_the_placeholder_follow_idp_base_url(settings):
    data = {
        "iam": {
            "oidc_providers": [
                {"url": "fedmock", "account": "111122223333", "client_ids": ["sts.amazonaws.com"]},
                {
                    "url": "https://token.actions.githubusercontent.com",
                    "client_ids": ["sts.amazonaws.com"],
                    "thumbprints": ["6938FD4D98BAB03FAADB97B34396831E3780AEA1"],
                },
            ],
            "roles": [ROLE],
        }
    }
    load(data)
    ours = OidcProvider.objects.get(url="127.0.0.1:8000/oidc")
    assert (ours.issuer, ours.client_ids, ours.thumbprints) == (ISSUER, ["sts.amazonaws.com"], [])
    github = OidcProvider.objects.get(url="token.actions.githubusercontent.com")
    assert github.thumbprints == ["6938fd4d98bab03faadb97b34396831e3780aea1"]  # as IAM keeps it
    trust = json.loads(Role.objects.get(name="Deploy").trust_policy)["Statement"][0]
    assert trust["Principal"]["Federated"] == (
        "arn:aws:iam::111122223333:oidc-provider/127.0.0.1:8000/oidc"
    )
    assert trust["Condition"]["StringEquals"] == {"127.0.0.1:8000/oidc:aud": "sts.amazonaws.com"}
    # The stored copy keeps the words, so a reset under another base URL resolves anew.
    stored = LoadedFixture.objects.get().data["iam"]
    assert stored["oidc_providers"][0]["url"] == "fedmock"
    assert "{fedmock-oidc}" in json.dumps(stored["roles"])
    settings.IDP_BASE_URL = "http://localhost:9000"
    fixtures.reset()
    assert set(OidcProvider.objects.values_list("url", flat=True)) == {
        "localhost:9000/oidc",
        "token.actions.githubusercontent.com",
    }
    assert "localhost:9000/oidc:aud" in Role.objects.get(name="Deploy").trust_policy


@pytest.mark.django_db
def test_providers_are_replaced_pruned_and_dumped():
    load({"iam": {"oidc_providers": [{"url": "fedmock", "client_ids": ["a", "b"]}]}})
    state.add_oidc_client_id("arn:aws:iam::111122223333:oidc-provider/127.0.0.1:8000/oidc", "c")
    load({"iam": {"oidc_providers": [{"url": "fedmock", "client_ids": ["b"]}]}})
    assert OidcProvider.objects.get().client_ids == ["b"]  # replaced, as the file says
    dumped = fixtures.dump()["iam"]["oidc_providers"]
    assert dumped == [
        {"url": ISSUER, "account": "111122223333", "client_ids": ["b"], "thumbprints": []}
    ]
    fixtures.load(fixtures.dump(), source="dump", prune=True)
    assert fixtures.dump()["iam"]["oidc_providers"] == dumped
    load({"iam": {"oidc_providers": []}}, prune=True)
    assert not OidcProvider.objects.exists()
    assert "iam" not in fixtures.dump()


PROVIDER_ERRORS = {
    "no url": ({}, "iam.oidc_providers[0], url: must be text"),
    "plain http elsewhere": (
        {"url": "http://idp.example/oidc"},
        "iam.oidc_providers[0] (http://idp.example/oidc), url: ValidationError: Invalid Open "
        "ID Connect Provider URL",
    ),
    "a query": ({"url": "https://idp.example/oidc?x=1"}, "no user, query or fragment"),
    "a short thumbprint": (
        {"url": "fedmock", "thumbprints": ["abc"]},
        "(fedmock), thumbprints: ValidationError",
    ),
    "six thumbprints": (
        {"url": "fedmock", "thumbprints": [f"{i}" * 40 for i in range(6)]},
        "fewer than 5 entries",
    ),
    "a client ID as a number": ({"url": "fedmock", "client_ids": [123]}, "client_ids[0]: must be"),
    "a client ID too long": ({"url": "fedmock", "client_ids": ["x" * 256]}, "clientIDList"),
    "an account not quoted": ({"url": "fedmock", "account": 111122223333}, "account: must be 12"),
    "an unknown key": ({"url": "fedmock", "thumbprint": []}, "thumbprint: unknown key"),
}


@pytest.mark.django_db
@pytest.mark.parametrize(("entry", "words"), PROVIDER_ERRORS.values(), ids=PROVIDER_ERRORS)
def test_a_bad_provider_entry_is_named_and_nothing_is_written(entry, words):
    with pytest.raises(fixtures.FixtureError) as excinfo:
        load({"iam": {"oidc_providers": [entry]}})
    assert words in excinfo.value.detail, excinfo.value.detail
    assert not OidcProvider.objects.exists()


@pytest.mark.django_db
def test_the_same_issuer_twice_and_our_issuer_on_plain_http_elsewhere(settings):
    twice = [{"url": "fedmock"}, {"url": ISSUER + "/"}]
    with pytest.raises(fixtures.FixtureError, match="listed twice for account 111122223333"):
        load({"iam": {"oidc_providers": twice}})
    settings.IDP_BASE_URL = "http://fedmock.internal:8000"
    with pytest.raises(fixtures.FixtureError) as excinfo:
        load({"iam": {"oidc_providers": [{"url": "fedmock"}]}})
    assert "IDP_BASE_URL must be https://" in excinfo.value.hint
    assert not OidcProvider.objects.exists()


# --- the demo: its client, its provider and GitHubDeploy, end to end with boto3 ---

DEMO_ROLE = "arn:aws:iam::111122223333:role/GitHubDeploy"


@pytest.fixture
def sts(idp_url, demo):
    keys.ensure_active_key(SigningKey.Use.JWT)
    jwks.forget()
    state.forget()
    client = boto3.client(
        "sts",
        endpoint_url=idp_url + "/aws/",
        region_name="us-east-1",
        aws_access_key_id="111122223333",
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 1}),
    )
    yield client
    client.close()
    jwks.forget()
    state.forget()


def minted(*options: str) -> str:
    out = io.StringIO()
    call_command("mint_web_identity_token", "--preset", "github", *options, stdout=out)
    return out.getvalue().strip()


@pytest.mark.django_db(transaction=True)
def test_the_demo_loop_a_main_token_assumes_github_deploy(idp_url, sts):
    demo_app = client("demo-app")
    assert check_password("demo-app-secret", demo_app.client_secret)
    name = idp_url.removeprefix("http://") + "/oidc"
    provider = OidcProvider.objects.get(account_id="111122223333")
    assert (provider.url, provider.client_ids) == (name, ["sts.amazonaws.com", "demo-app"])
    answer = sts.assume_role_with_web_identity(
        RoleArn=DEMO_ROLE, RoleSessionName="ci", WebIdentityToken=minted()
    )
    assert answer["SubjectFromWebIdentityToken"] == "repo:acme/app:ref:refs/heads/main"
    assert answer["AssumedRoleUser"]["Arn"] == (
        "arn:aws:sts::111122223333:assumed-role/GitHubDeploy/ci"
    )
    assert answer["Provider"].endswith(name)


@pytest.mark.django_db(transaction=True)
def test_the_demo_loop_a_pull_request_token_is_refused(sts):
    with pytest.raises(ClientError) as excinfo:
        sts.assume_role_with_web_identity(
            RoleArn=DEMO_ROLE, RoleSessionName="ci", WebIdentityToken=minted("--pull-request")
        )
    error = excinfo.value.response
    assert error["Error"]["Code"] == "AccessDenied"
    assert (
        "repo:acme/app:pull_request"
        in error["ResponseMetadata"]["HTTPHeaders"]["x-fedmock-explanation"]
    )
