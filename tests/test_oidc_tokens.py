"""Web-identity tokens: presets' shapes, verification against /oidc/jwks, command errors."""

import datetime
import io
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet, RSAKey

from idp import keys
from idp.models import AuditEvent, SigningKey
from idp.oidc import tokens

JWT = SigningKey.Use.JWT
NOW = datetime.datetime(2026, 5, 1, 12, 0, tzinfo=datetime.UTC)


@pytest.fixture
def jwt_key(signing_key):
    key, _ = keys.ensure_active_key(JWT)
    keys.forget_cached_keys()
    return key


def mint(*args) -> str:
    out = io.StringIO()
    call_command("mint_web_identity_token", *args, "--now", NOW.isoformat(), stdout=out)
    return out.getvalue().strip()


def verified(client, token: str) -> tuple[dict, dict]:
    key_set = KeySet.import_key_set(client.get("/oidc/jwks").json())
    decoded = jwt.decode(token, key_set, algorithms=["RS256"])
    return decoded.header, decoded.claims


GITHUB = [
    (["--repo", "acme/app"], "repo:acme/app:ref:refs/heads/main", {"event_name": "push"}),
    (
        ["--repo", "acme/app", "--ref", "refs/tags/v1"],
        "repo:acme/app:ref:refs/tags/v1",
        {"ref_type": "tag"},
    ),
    (
        ["--repo", "acme/app", "--environment", "prod"],
        "repo:acme/app:environment:prod",
        {"environment": "prod"},
    ),
    (
        ["--repo", "acme/app", "--pull-request"],
        "repo:acme/app:pull_request",
        {"event_name": "pull_request"},
    ),
]


@pytest.mark.parametrize(("args", "sub", "some"), GITHUB)
def test_github_tokens_verify_and_have_githubs_shape(client, jwt_key, settings, args, sub, some):
    settings.IDP_BASE_URL = "https://idp.example.test"
    header, claims = verified(client, mint("--preset", "github", *args))
    assert (
        header["alg"] == "RS256"
        and header["kid"] == client.get("/oidc/jwks").json()["keys"][0]["kid"]
    )
    assert claims["sub"] == sub and claims["aud"] == "sts.amazonaws.com"
    assert claims["iss"] == "https://idp.example.test/oidc"
    assert claims["repository"] == "acme/app" and claims["repository_owner"] == "acme"
    assert claims["job_workflow_ref"].startswith("acme/app/.github/workflows/")
    assert claims["iat"] == int(NOW.timestamp()) and claims["exp"] == claims["iat"] + 300
    assert some.items() <= claims.items()
    assert ("environment" in claims) == ("--environment" in args)


def test_eks_and_gitlab_shapes(client, jwt_key):
    _, eks = verified(
        client, mint("--preset", "eks", "--namespace", "ci", "--service-account", "deployer")
    )
    assert eks["sub"] == "system:serviceaccount:ci:deployer" and eks["aud"] == "sts.amazonaws.com"
    assert eks["kubernetes.io"]["namespace"] == "ci"
    assert eks["kubernetes.io"]["serviceaccount"]["name"] == "deployer"
    assert eks["exp"] - eks["iat"] == 86400
    _, gitlab = verified(client, mint("--preset", "gitlab", "--repo", "group/sub/project"))
    assert gitlab["sub"] == "project_path:group/sub/project:ref_type:branch:ref:main"
    assert gitlab["namespace_path"] == "group/sub" and gitlab["project_path"] == "group/sub/project"


def test_overrides_and_extra_claims(client, jwt_key):
    token = mint(
        "--sub",
        "custom",
        "--aud",
        "my-aud",
        "--claim",
        "team=ops",
        "--claim",
        "n:=[1,2]",
        "--lifetime",
        "60",
    )
    _, claims = verified(client, token)
    assert claims["sub"] == "custom" and claims["aud"] == "my-aud"
    assert claims["team"] == "ops" and claims["n"] == [1, 2] and claims["exp"] - claims["iat"] == 60


def test_tokens_from_a_retired_key_no_longer_verify(client, jwt_key):
    token = mint("--preset", "github")
    staged = keys.stage(use=JWT)
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
    keys.activate(staged.fingerprint, now=later)
    keys.retire(jwt_key.fingerprint, now=later + datetime.timedelta(days=1))
    keys.forget_cached_keys()
    with pytest.raises(Exception):  # noqa: B017  joserfc: no key with that kid
        verified(client, token)
    header, _ = verified(client, mint("--preset", "github"))
    assert header["kid"] == RSAKey.import_key(keys.active_key(JWT).private_key).thumbprint()


def test_minting_is_audited(jwt_key):
    mint("--preset", "github", "--repo", "acme/app")
    event = AuditEvent.objects.get(flow="web-identity")
    assert event.sp_entity_id == "sts.amazonaws.com" and event.outcome == "sent"
    assert "sub=repo:acme/app:ref:refs/heads/main" in event.detail


ERRORS = [
    (["--preset", "github", "--repo", "not a repo"], "Bad GitHub repository"),
    (["--preset", "github", "--ref", "main"], "Bad Git ref"),
    (["--preset", "github", "--environment", "p", "--pull-request"], "not both"),
    (["--preset", "eks", "--namespace", "Bad_NS"], "Bad Kubernetes namespace"),
    (["--preset", "gitlab", "--repo", "solo"], "Bad GitLab project path"),
    ([], "needs a sub"),
    (["--sub", "x", "--claim", "exp=1"], "Reserved claim"),
    (["--sub", "x", "--claim", "novalue"], "not NAME=VALUE"),
    (["--sub", "x", "--claim", "n:={"], "not JSON"),
    (["--sub", "x", "--lifetime", "0"], "seconds from 1"),
    (["--sub", "x", "--lifetime", "999999"], "seconds from 1"),
    (["--preset", "azure"], "invalid choice"),
]


@pytest.mark.parametrize(("args", "words"), ERRORS)
def test_command_errors_are_one_line(jwt_key, args, words):
    with pytest.raises(CommandError, match=words) as caught:
        mint(*args)
    assert "\n" not in str(caught.value)


def test_no_jwt_key_names_the_command(signing_key):
    keys.forget_cached_keys()
    with pytest.raises(CommandError, match="ensure_signing_key"):
        mint("--sub", "x")


def test_bad_now_is_one_line_without_a_traceback(tmp_path):
    root = Path(__file__).parent.parent
    result = subprocess.run(
        [sys.executable, str(root / "manage.py"), "mint_web_identity_token", "--now", "2026-01-01"],
        capture_output=True,
        text=True,
        cwd=root,
        env={
            "PATH": "/usr/bin:/bin",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db'}",
            "SECRET_KEY": "t",
            "IDP_CERTS_DIR": str(tmp_path),
        },
    )
    assert result.returncode != 0 and "time zone" in result.stderr
    assert "Traceback" not in result.stderr


def test_mint_is_pure_and_checks_its_arguments():
    key = RSAKey.generate_key(2048)
    minted = tokens.mint({"sub": "s"}, key, "k1", issuer="https://i/oidc", now=NOW, lifetime=10)
    decoded = jwt.decode(minted.token, key, algorithms=["RS256"])
    assert decoded.header["kid"] == "k1" and minted.expires_at == NOW + datetime.timedelta(
        seconds=10
    )
    with pytest.raises(BadSignatureError):
        jwt.decode(minted.token, RSAKey.generate_key(2048), algorithms=["RS256"])
    with pytest.raises(tokens.TokenError, match="time zone"):
        tokens.mint({"sub": "s"}, key, "k", issuer="i", now=NOW.replace(tzinfo=None), lifetime=1)
    with pytest.raises(tokens.TokenError, match="Unknown preset"):
        tokens.preset_claims("azure", tokens.Options())
