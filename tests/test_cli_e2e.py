"""The `fedmock` command end to end, as installed: live fedmock over HTTP, an STS over HTTP
(fedmock's own /aws/, and moto's ThreadedMotoServer), and the AWS CLI whose
credential_process is `fedmock credentials`. Every process runs with HOME, the AWS config
and the cache in tmp_path, so nothing of the machine's own AWS setup takes part."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from idp import identity
from idp.saml import aws
from idp.sts import state

from .api_support import staff, token_for

pytestmark = pytest.mark.django_db(transaction=True)

BIN = Path(sys.executable).parent
FEDMOCK = str(BIN / "fedmock")
AWS = str(BIN / "aws")
ADMIN = "arn:aws:iam::111122223333:role/Admin"
ALICE_ROLES = [
    "arn:aws:iam::111122223333:role/Admin",
    "arn:aws:iam::111122223333:role/ReadOnly",
    "arn:aws:iam::444455556666:role/Developer",
]


@pytest.fixture
def moto_sts(monkeypatch):
    # moto files an unsigned AssumeRoleWithSAML under its default account and looks the
    # caller up under the account of the role's key: one account for both (it runs in this
    # process, and reads the variable per request).
    monkeypatch.setenv("MOTO_ACCOUNT_ID", "111122223333")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def token(demo):
    return token_for(staff("minter", "idp.preview_signed_response"), scopes=["sign-on"])


@pytest.fixture
def env(tmp_path):
    """A clean environment: no AWS_* or FEDMOCK_* of the machine's, HOME in tmp_path."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FEDMOCK_"))}
    kept.pop("XDG_CACHE_HOME", None)
    return {
        **kept,
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "aws" / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws" / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def run(*command: str, env: dict, stdin: str = "", **extra_env: str):
    return subprocess.run(
        command,
        env={**env, **extra_env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_credentials_with_a_token_come_from_sts_and_then_from_the_cache(
    idp_url, token, moto_sts, env, tmp_path
):
    command = (FEDMOCK, "credentials", "--idp", idp_url, "--user", "alice", "--role", ADMIN)
    command += ("--sts-endpoint", moto_sts, "--format", "credential-process")
    first = run(*command, env=env, FEDMOCK_TOKEN=token)
    assert first.returncode == 0, first.stderr
    issued = json.loads(first.stdout)
    assert issued["Version"] == 1
    assert issued["AccessKeyId"].startswith("ASIA") and issued["SessionToken"]
    cached = list((tmp_path / ".cache" / "fedmock").iterdir())
    assert len(cached) == 1 and cached[0].stat().st_mode & 0o777 == 0o600

    # No token, no password and no terminal: only the cache can answer.
    second = run(*command, env=env)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout) == issued
    # ... and the cache is per user: bob has none.
    bob = run(*[("bob" if part == "alice" else part) for part in command], env=env)
    assert bob.returncode == 2 and "no password" in bob.stderr


def test_roles_lists_the_role_arns_of_alices_assertion(idp_url, token, env):
    answer = run(
        FEDMOCK, "roles", "--idp", idp_url, "--user", "alice", env=env, FEDMOCK_TOKEN=token
    )
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.split() == ALICE_ROLES


def test_a_role_alice_lacks_is_one_line_naming_the_idps_refusal(idp_url, token, moto_sts, env):
    other = "arn:aws:iam::111122223333:role/Nope"
    answer = run(
        FEDMOCK, "credentials", "--idp", idp_url, "--user", "alice", "--role", other,
        "--sts-endpoint", moto_sts, env=env, FEDMOCK_TOKEN=token,
    )  # fmt: skip
    assert answer.returncode == 1
    assert answer.stderr.count("\n") == 1 and "Traceback" not in answer.stderr
    assert "alice has no role arn:aws:iam::111122223333:role/Nope" in answer.stderr


def test_the_aws_cli_runs_fedmock_as_its_credential_process(idp_url, token, moto_sts, env):
    configured = run(
        FEDMOCK, "configure-profile", "fedmock-admin", "--idp", idp_url, "--user", "alice",
        "--role", ADMIN, "--sts-endpoint", moto_sts, "--region", "us-east-1", env=env,
    )  # fmt: skip
    assert configured.returncode == 0, configured.stderr
    config = Path(env["AWS_CONFIG_FILE"]).read_text()
    assert "[profile fedmock-admin]" in config and f"credential_process = {FEDMOCK} " in config

    identity = run(
        AWS, "sts", "get-caller-identity", "--profile", "fedmock-admin",
        "--endpoint-url", moto_sts, "--output", "json", env=env, FEDMOCK_TOKEN=token,
    )  # fmt: skip
    assert identity.returncode == 0, identity.stderr
    arn = json.loads(identity.stdout)["Arn"]
    assert arn.endswith(":assumed-role/Admin/alice@example.com"), arn


# --- with a password: SAML ECP at /saml/ecp/ --------------------------------------------


def test_credentials_with_a_password_sign_in_through_ecp(idp_url, demo, moto_sts, env):
    # bob, whose assertion holds one role: moto's STS cannot read an assertion with several
    # Role values (AWS can); alice's three wait for fedmock's own STS.
    answer = run(
        FEDMOCK, "credentials", "--idp", idp_url, "--user", "bob", "--account", "111122223333",
        "--role-name", "ReadOnly", "--sts-endpoint", moto_sts, "--password-stdin", "--no-cache",
        "--format", "env", env=env, stdin="bob\n",
    )  # fmt: skip
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.startswith("export AWS_ACCESS_KEY_ID=ASIA")


def test_roles_through_ecp_with_the_password_from_the_environment(idp_url, demo, env):
    answer = run(
        FEDMOCK, "roles", "--idp", idp_url, "--user", "bob", env=env, FEDMOCK_PASSWORD="bob"
    )
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.split() == ["arn:aws:iam::111122223333:role/ReadOnly"]


def test_a_wrong_password_is_one_line_naming_the_idps_refusal(idp_url, demo, env):
    answer = run(
        FEDMOCK, "roles", "--idp", idp_url, "--user", "alice", env=env, FEDMOCK_PASSWORD="wrong"
    )
    assert answer.returncode == 1
    assert answer.stderr.count("\n") == 1 and "Traceback" not in answer.stderr
    assert "HTTP 401" in answer.stderr, answer.stderr


# --- fedmock's own STS at /aws/ -----------------------------------------------------------

PROVIDER = "arn:aws:iam::111122223333:saml-provider/fedmock"


def trust_policy(**conditions: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "FedmockUsers",
                    "Effect": "Allow",
                    "Principal": {"Federated": PROVIDER},
                    # The demo's users carry session tags: TagSession too.
                    "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession"],
                    "Condition": {"StringEquals": {"SAML:aud": aws.SIGNIN_ACS, **conditions}},
                }
            ],
        }
    )


@pytest.fixture
def local_sts(demo, idp_url, env, tmp_path):
    """fedmock's /aws/ with the provider fedmock holding this live IdP's metadata, Admin open
    to the demo's users and ReadOnly to bob's NameID alone; set with the AWS CLI (any key
    is the demo's account there). Create, or update what is there: the demo fixture may
    already hold the provider (with the metadata of another base URL) and the roles."""
    state.forget()
    endpoint = idp_url + "/aws/"
    keys = {"AWS_ACCESS_KEY_ID": "111122223333", "AWS_SECRET_ACCESS_KEY": "local"}
    keys["AWS_DEFAULT_REGION"] = "us-east-1"  # the v1 CLI reads no AWS_REGION

    def iam(*command: str) -> subprocess.CompletedProcess:
        return run(AWS, "iam", *command, "--endpoint-url", endpoint, env=env, **keys)

    def ensure(create: list[str], update: list[str]) -> None:
        made = iam(*create)
        if made.returncode and "EntityAlreadyExists" in made.stderr:
            made = iam(*update)
        assert made.returncode == 0, made.stderr

    metadata = tmp_path / "metadata.xml"
    metadata.write_bytes(identity.metadata_xml())
    ensure(
        ["create-saml-provider", "--name", "fedmock", "--saml-metadata-document", f"file://{metadata}"],
        ["update-saml-provider", "--saml-provider-arn", PROVIDER]
        + ["--saml-metadata-document", f"file://{metadata}"],
    )  # fmt: skip
    for name, policy in (
        ("Admin", trust_policy()),
        ("ReadOnly", trust_policy(**{"SAML:sub": "bob"})),
    ):
        document = tmp_path / f"{name}.json"
        document.write_text(policy)
        ensure(
            ["create-role", "--role-name", name, "--assume-role-policy-document", f"file://{document}"],
            ["update-assume-role-policy", "--role-name", name, "--policy-document", f"file://{document}"],
        )  # fmt: skip
    yield endpoint
    state.forget()


def test_the_aws_cli_gets_alices_identity_from_fedmocks_own_sts(idp_url, local_sts, env):
    """The README's walkthrough: a password, ECP, the local STS, the AWS CLI."""
    configured = run(
        FEDMOCK, "configure-profile", "fedmock-admin", "--idp", idp_url, "--user", "alice",
        "--role", ADMIN, "--sts-endpoint", local_sts, "--region", "us-east-1", env=env,
    )  # fmt: skip
    assert configured.returncode == 0, configured.stderr
    identity_ = run(
        AWS, "sts", "get-caller-identity", "--profile", "fedmock-admin",
        "--endpoint-url", local_sts, "--output", "text", "--query", "Arn",
        env=env, FEDMOCK_PASSWORD="alice",
    )  # fmt: skip
    assert identity_.returncode == 0, identity_.stderr
    assert identity_.stdout.strip() == (
        "arn:aws:sts::111122223333:assumed-role/Admin/alice@example.com"
    )


def test_a_trust_policy_refusal_at_fedmocks_sts_is_one_line_with_awss_code_and_the_cause(
    idp_url, local_sts, token, env
):
    answer = run(
        FEDMOCK, "credentials", "--idp", idp_url, "--user", "alice",
        "--role", "arn:aws:iam::111122223333:role/ReadOnly", "--sts-endpoint", local_sts,
        env=env, FEDMOCK_TOKEN=token,
    )  # fmt: skip
    assert answer.returncode == 1 and answer.stdout == ""
    line = answer.stderr
    assert line.count("\n") == 1 and "Traceback" not in line
    assert line.startswith(f"fedmock: AccessDenied from {local_sts}: Not authorized to perform ")
    assert "fedmock explains:" in line and "SAML:sub" in line, line
