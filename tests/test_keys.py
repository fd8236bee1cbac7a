"""The signing-key lifecycle: stage, activate, retire; import; expiry; metadata; IAM sync."""

import datetime
import io
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.checks import run_checks
from django.core.management import CommandError, call_command
from lxml import etree
from moto import mock_aws
from signxml import XMLVerifier

from idp import iam, identity, keys
from idp.models import SigningKey
from idp.saml import constants as c
from idp.saml import signing
from idp.saml.errors import SamlError

from .agents import certificate
from .heartbeats import beat

MD = {"md": c.MD, "ds": c.DS}
MICROSECOND = datetime.timedelta(microseconds=1)


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=out)
    return out.getvalue()


def published() -> list[str]:
    keys.forget_cached_keys()
    root = etree.fromstring(identity.metadata_xml())
    return ["".join(t.split()) for t in root.xpath("//ds:X509Certificate/text()", namespaces=MD)]


def certificate_pair(days_from: float, days_to: float) -> tuple[bytes, bytes]:
    """An RSA key and a certificate valid over the given days from now, as PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, certificate(key, days_from, days_to).encode()


def test_full_rollover(signing_key):
    first = keys.active_key()
    assert len(published()) == 1

    staged = keys.stage()
    assert staged.state == "next"
    assert len(published()) == 2
    assert keys.active_key().fingerprint == first.fingerprint  # next does not sign

    keys.activate()
    keys.forget_cached_keys()
    assert keys.active_key().fingerprint == staged.fingerprint
    assert len(published()) == 2  # the old key stays published until retired

    retired = keys.retire()
    assert retired.fingerprint == first.fingerprint
    assert published() == [keys.active_key().cert_base64]


def test_refusals(signing_key):
    with pytest.raises(keys.KeyLifecycleError, match="no next key"):
        keys.activate()
    with pytest.raises(keys.KeyLifecycleError, match="only active key"):
        keys.retire()
    with pytest.raises(keys.KeyLifecycleError, match="only active key"):
        keys.retire(signing_key.fingerprint)
    keys.stage()
    with pytest.raises(keys.KeyLifecycleError, match="already staged"):
        keys.stage()
    with pytest.raises(keys.KeyLifecycleError, match="matches no key"):
        keys.retire("ffffffff")


def test_a_staged_key_can_be_withdrawn(signing_key):
    staged = keys.stage()
    keys.retire(staged.fingerprint[:12])
    assert published() == [keys.active_key().cert_base64]


def test_activation_refuses_expired_and_future_keys(signing_key):
    key_pem, cert_pem = certificate_pair(-10, -1)
    expired = keys.stage(key_pem=key_pem, cert_pem=cert_pem)
    with pytest.raises(keys.KeyLifecycleError, match="expired"):
        keys.activate(now=expired.state_changed_at)
    keys.retire(expired.fingerprint)
    key_pem, cert_pem = certificate_pair(1, 30)
    future = keys.stage(key_pem=key_pem, cert_pem=cert_pem)
    with pytest.raises(keys.KeyLifecycleError, match="not valid before"):
        keys.activate(now=future.state_changed_at)


def test_import_key(db, key_pems, tmp_path):
    (tmp_path / "k.pem").write_bytes(key_pems[0])
    (tmp_path / "c.pem").write_bytes(key_pems[1])
    assert "as active" in run(
        "import_key", "--key", str(tmp_path / "k.pem"), "--cert", str(tmp_path / "c.pem")
    )
    other_key, other_cert = signing.generate_self_signed("other")
    (tmp_path / "k2.pem").write_bytes(other_key)
    (tmp_path / "c2.pem").write_bytes(other_cert)
    output = run(
        "import_key", "--key", str(tmp_path / "k2.pem"), "--cert", str(tmp_path / "c2.pem")
    )
    assert "as next" in output and "rotate_key activate" in output
    with pytest.raises(CommandError, match="already in the store"):
        run("import_key", "--key", str(tmp_path / "k.pem"), "--cert", str(tmp_path / "c.pem"))
    with pytest.raises(CommandError, match="does not belong"):
        run("import_key", "--key", str(tmp_path / "k.pem"), "--cert", str(tmp_path / "c2.pem"))
    with pytest.raises(CommandError, match="Cannot read"):
        run("import_key", "--key", "/no/such.pem", "--cert", str(tmp_path / "c.pem"))


def test_rotate_key_command_walks_the_rollover(signing_key):
    output = run("rotate_key", "stage")
    assert "is now next" in output
    assert "aws iam update-saml-provider --saml-provider-arn" in output
    output = run("rotate_key", "activate")
    assert "is now active" in output and "rotate_key retire" in output
    output = run("rotate_key", "retire")
    assert "is now retired" in output
    status = run("rotate_key", "status")
    assert status.count("retired") == 1 and "signs" in status
    with pytest.raises(CommandError, match="no next key"):
        run("rotate_key", "activate")


def test_rotate_key_no_wait_names_the_worker_behind(signing_key):
    run("rotate_key", "stage")
    beat(4242, key_sets={})  # live, and has loaded nothing
    with pytest.raises(CommandError, match="web-1 pid 4242 has no saml keys loaded"):
        run("rotate_key", "activate", "--no-wait")


@pytest.mark.parametrize(
    ("days", "check_id"), [(400, None), (20, "fedmock.W002"), (-1, "fedmock.E001")]
)
def test_expiry_check(db, days, check_id):
    keys.store_key(*certificate_pair(days - 500, days), "active")
    ids = [message.id for message in run_checks(tags=["fedmock"])]
    assert ids == ([check_id] if check_id else [])


def test_missing_key_is_a_warning(db):
    assert [m.id for m in run_checks(tags=["fedmock"])] == ["fedmock.W001"]


def test_admin_shows_days_left_and_drives_the_rollover(client, demo):
    client.login(username="admin", password="admin")
    page = client.get("/admin/idp/signingkey/").content.decode()
    assert "days left" in page.lower() and "Stage a new key" in page
    client.post("/admin/idp/signingkey/stage/")
    staged = SigningKey.objects.get(state="next")
    client.post(
        "/admin/idp/signingkey/",
        {"action": "activate_key", "_selected_action": [staged.pk]},
    )
    staged.refresh_from_db()
    assert staged.state == "active"
    old = SigningKey.objects.exclude(pk=staged.pk).get()
    response = client.post(
        "/admin/idp/signingkey/",
        {"action": "retire_key", "_selected_action": [staged.pk]},
        follow=True,
    )
    assert f"Key {staged.fingerprint} signs" in response.content.decode()
    client.post("/admin/idp/signingkey/", {"action": "retire_key", "_selected_action": [old.pk]})
    old.refresh_from_db()
    assert old.state == "retired"


def test_metadata_validity_and_signature(signing_key, settings):
    # validUntil is IDP_METADATA_VALID_DAYS out (tests/test_issue12_metadata.py), capped
    # by the first key's expiry, which this long a window reaches.
    settings.IDP_METADATA_VALID_DAYS = 36500
    root = etree.fromstring(identity.metadata_xml())
    assert root.get("cacheDuration") == "PT1H"
    assert root.get("validUntil") == signing_key.not_valid_after.strftime("%Y-%m-%dT%H:%M:%SZ")
    signed = identity.metadata_xml(signed=True)
    verified = XMLVerifier().verify(signed, x509_cert=keys.active_key().cert_pem, id_attribute="ID")
    assert verified.signed_xml.get("entityID") == root.get("entityID")
    assert etree.fromstring(signed)[0].tag == f"{{{c.DS}}}Signature"


def test_signed_metadata_over_http(client, signing_key):
    assert b"<ds:Signature" in client.get("/saml/metadata/?signed=1").content
    assert b"<ds:Signature" not in client.get("/saml/metadata/").content


# --- IAM sync --------------------------------------------------------------------


@pytest.fixture
def aws_credentials(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)


@mock_aws
def test_sync_creates_then_updates_the_provider(signing_key, aws_credentials):
    output = run("sync_iam_provider", "--name", "fedmock")
    assert output.startswith("Created IAM SAML provider arn:aws:iam::123456789012:saml-provider/")
    keys.stage()
    output = run("sync_iam_provider", "--name", "fedmock", "--account-id", "123456789012")
    assert output.startswith("Updated IAM SAML provider")
    document = boto3.client("iam").get_saml_provider(
        SAMLProviderArn="arn:aws:iam::123456789012:saml-provider/fedmock"
    )["SAMLMetadataDocument"]
    root = etree.fromstring(document.encode())
    assert len(root.xpath("//ds:X509Certificate", namespaces=MD)) == 2  # both during rollover


@mock_aws
def test_rotate_key_syncs_iam_after_each_step(signing_key, aws_credentials):
    run("sync_iam_provider", "--name", "corp")
    assert "Updated IAM SAML provider" in run("rotate_key", "stage", "--sync-iam", "corp")
    document = boto3.client("iam").get_saml_provider(
        SAMLProviderArn="arn:aws:iam::123456789012:saml-provider/corp"
    )["SAMLMetadataDocument"]
    assert document.count("X509Certificate>") == 4  # two certificates, open and close tags


def test_dry_run_prints_the_cli_commands(signing_key, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    output = run("sync_iam_provider", "--name", "fedmock", "--dry-run")
    assert "aws iam create-saml-provider --name fedmock --saml-metadata-document file://" in output
    assert "aws iam update-saml-provider --saml-provider-arn arn:aws:iam::<ACCOUNT_ID>" in output
    assert b"IDPSSODescriptor" in (tmp_path / "fedmock-metadata.xml").read_bytes()


def stubbed_iam(monkeypatch, *errors: tuple[str, str]):
    """An IAM client whose calls fail with the given AWS error codes, in order."""
    client = boto3.client(
        "iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stubber = Stubber(client)
    for method, code in errors:
        stubber.add_client_error(method, service_error_code=code, service_message=f"{code} here")
    stubber.activate()
    monkeypatch.setattr(boto3.Session, "client", lambda self, name, **kw: client)
    return stubber


@pytest.mark.parametrize(
    ("errors", "message"),
    [
        (
            [
                ("get_saml_provider", "NoSuchEntity"),
                ("create_saml_provider", "EntityAlreadyExists"),
            ],
            "AWS refused (EntityAlreadyExists)",
        ),
        (
            [("get_saml_provider", "NoSuchEntity"), ("create_saml_provider", "InvalidInput")],
            "AWS refused (InvalidInput)",
        ),
        (
            [("get_saml_provider", "NoSuchEntity"), ("create_saml_provider", "LimitExceeded")],
            "AWS refused (LimitExceeded)",
        ),
        ([("get_saml_provider", "AccessDenied")], "AWS refused (AccessDenied)"),
    ],
)
def test_aws_errors_become_one_line(signing_key, monkeypatch, errors, message):
    stubbed_iam(monkeypatch, *errors)
    with pytest.raises(CommandError) as error:
        run("sync_iam_provider", "--name", "fedmock", "--account-id", "111122223333")
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_update_of_a_vanished_provider_is_one_line(signing_key, monkeypatch):
    stubber = stubbed_iam(monkeypatch)
    stubber.add_response("get_saml_provider", {"SAMLMetadataDocument": "x" * 1000})
    stubber.add_client_error("update_saml_provider", service_error_code="NoSuchEntity")
    with pytest.raises(CommandError, match=r"AWS refused \(NoSuchEntity\)"):
        run("sync_iam_provider", "--name", "fedmock", "--account-id", "111122223333")


def test_missing_credentials_exit_1_with_one_line(tmp_path, key_pems):
    """As an operator sees it: a separate process, no credentials, no traceback."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "IDP_CERTS_DIR": str(tmp_path / "certs"),
        "SECRET_KEY": "test",
    }
    root = Path(__file__).parent.parent
    manage = [sys.executable, str(root / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, cwd=root)
    subprocess.run(
        [*manage, "ensure_signing_key"], env=env, check=True, cwd=root, capture_output=True
    )
    result = subprocess.run(
        [*manage, "sync_iam_provider", "--name", "fedmock"],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.strip().startswith("CommandError: No AWS credentials")
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_cli_commands_name_the_provider():
    create, update = iam.cli_commands("corp", "md.xml", "111122223333")
    assert (
        create == "aws iam create-saml-provider --name corp --saml-metadata-document file://md.xml"
    )
    assert "arn:aws:iam::111122223333:saml-provider/corp" in update


# --- found in review ------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("rotate_key", "stage", "--days", "-1"),
        ("rotate_key", "stage", "--days", "99999999"),
        ("sync_iam_provider", "--name", "a/b", "--dry-run"),
        ("rotate_key", "stage", "--sync-iam", "bad name"),
    ],
)
def test_bad_arguments_are_command_errors(signing_key, args):
    with pytest.raises(CommandError):
        run(*args)


def test_an_unusable_endpoint_is_one_line(signing_key, aws_credentials):
    with pytest.raises(CommandError, match="Could not reach AWS"):
        run(
            "sync_iam_provider",
            "--name",
            "fedmock",
            "--endpoint-url",
            "localhost:5000",
            "--account-id",
            "111122223333",
        )


def test_import_key_refuses_a_non_rsa_certificate(db, tmp_path):
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key_pem, _ = signing.generate_self_signed("rsa")
    (tmp_path / "k.pem").write_bytes(key_pem)
    (tmp_path / "c.pem").write_text(certificate(ed25519.Ed25519PrivateKey.generate()))
    with pytest.raises(CommandError, match="only RSA"):
        run("import_key", "--key", str(tmp_path / "k.pem"), "--cert", str(tmp_path / "c.pem"))


def test_import_key_refuses_an_expired_key_as_the_active_one(db, tmp_path):
    key_pem, cert_pem = certificate_pair(-10, -1)
    (tmp_path / "k.pem").write_bytes(key_pem)
    (tmp_path / "c.pem").write_bytes(cert_pem)
    with pytest.raises(CommandError, match="expired"):
        run("import_key", "--key", str(tmp_path / "k.pem"), "--cert", str(tmp_path / "c.pem"))


def test_a_broken_stored_key_stops_signing_instead_of_signing_with_an_old_key(signing_key):
    staged = keys.stage()
    keys.activate()
    staged = keys.signing_row()
    # Decrypts (the KEK is right) but is no key: the row itself is damaged.
    SigningKey.objects.filter(pk=staged.pk).update(
        private_key_encrypted=keys.encrypt_private_key(b"garbage")
    )
    keys.forget_cached_keys()
    with pytest.raises(SamlError, match="cannot be used"):
        keys.refresh_keys()
    with pytest.raises(SamlError) as refused:
        keys.active_key()
    assert refused.value.status == 503 and "rotate_key retire" in refused.value.hint
