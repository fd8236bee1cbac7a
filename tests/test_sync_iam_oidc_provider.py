"""sync_iam_oidc_provider against the local IAM over HTTP (boto3, the standard credential
chain), AddClientIDToOpenIDConnectProvider at the local IAM, and the thumbprint of an
https issuer's TLS chain (a local TLS server with a root, an intermediate and a leaf)."""

import datetime
import hashlib
import io
import ssl
import threading

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.management import CommandError, call_command

from idp.iam import SyncError
from idp.management.commands import sync_iam_oidc_provider as command
from idp.sts import state
from idp.sts.models import OidcProvider

ACCOUNT = "123456789012"
ZEROS = "0" * 40
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def local_aws(idp_url, monkeypatch, tmp_path):
    """The standard credential chain, pointed at nothing but these variables."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCOUNT)  # the local IAM: this account's root
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    state.forget()
    yield idp_url + "/aws/"
    state.forget()


def sync(endpoint: str, *options: str) -> str:
    out = io.StringIO()
    call_command("sync_iam_oidc_provider", "--endpoint-url", endpoint, *options, stdout=out)
    return out.getvalue().strip()


def provider() -> OidcProvider:
    return OidcProvider.objects.get(account_id=ACCOUNT)


def test_creates_then_adds_client_ids_then_is_up_to_date(idp_url, local_aws):
    name = idp_url.removeprefix("http://") + "/oidc"
    arn = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{name}"
    assert sync(local_aws) == f"Created IAM OIDC provider {arn} (issuer {idp_url}/oidc)"
    row = provider()
    assert (row.issuer, row.client_ids, row.thumbprints) == (
        idp_url + "/oidc",
        ["sts.amazonaws.com"],
        [ZEROS],  # http: the placeholder
    )
    said = sync(local_aws, "--client-id", "demo-app", "--client-id", "sts.amazonaws.com")
    assert said.startswith(f"Updated IAM OIDC provider {arn}: added client IDs demo-app (")
    assert provider().client_ids == ["sts.amazonaws.com", "demo-app"]
    assert sync(local_aws, "--client-id", "demo-app").startswith(
        f"IAM OIDC provider {arn} is up to date"
    )
    assert provider().client_ids == ["sts.amazonaws.com", "demo-app"]  # none is removed
    said = sync(local_aws, "--thumbprint", "A" * 40, "--thumbprint", "b" * 40)
    assert said.startswith(f"Updated IAM OIDC provider {arn}: replaced its thumbprints")
    assert provider().thumbprints == ["a" * 40, "b" * 40]


def test_an_explicit_account_skips_the_caller_lookup(local_aws):
    said = sync(local_aws, "--account-id", ACCOUNT)
    assert said.startswith(f"Created IAM OIDC provider arn:aws:iam::{ACCOUNT}:oidc-provider/")
    parser = command.Command().create_parser("manage.py", "sync_iam_oidc_provider")
    assert parser.parse_args(["--account", ACCOUNT]).account_id == ACCOUNT  # the brief's name


FAILURES = {
    "IAM refuses six thumbprints": (
        [arg for i in range(6) for arg in ("--thumbprint", str(i) * 40)],
        "AWS refused (InvalidInput): Thumbprint list must contain fewer than 5 entries.",
    ),
    "nothing listens there": (
        ["--endpoint-url", "http://127.0.0.1:9/aws/"],
        "Could not reach AWS:",
    ),
    "not an endpoint": (["--endpoint-url", "not a url"], "Could not reach AWS:"),
    "an unknown profile": (["--profile", "nobody"], "name a profile from ~/.aws/config."),
}


@pytest.mark.parametrize(("options", "words"), FAILURES.values(), ids=FAILURES)
def test_failures_are_one_line(local_aws, options, words):
    with pytest.raises(CommandError) as excinfo:
        sync(local_aws, *options)
    message = str(excinfo.value)
    assert words in message and "\n" not in message, message
    assert not OidcProvider.objects.exists()


def test_no_credentials_is_one_line(local_aws, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(CommandError, match=r"^No AWS credentials .*pass --profile\.$"):
        sync(local_aws)


@pytest.mark.parametrize(
    ("option", "value"),
    [("--thumbprint", "abc"), ("--thumbprint", "g" * 40), ("--client-id", "")],
)
def test_bad_arguments_are_refused_before_any_call(option, value):
    with pytest.raises(CommandError, match="thumbprint|client ID"):
        call_command("sync_iam_oidc_provider", option, value)


# --- AddClientIDToOpenIDConnectProvider at the local IAM ---


def test_add_client_id_at_the_local_iam(local_aws):
    iam = boto3.client(
        "iam",
        endpoint_url=local_aws,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
    )
    arn = iam.create_open_id_connect_provider(
        Url="https://token.actions.githubusercontent.com", ClientIDList=["a"]
    )["OpenIDConnectProviderArn"]
    iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="b")
    iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="b")
    got = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    assert got["ClientIDList"] == ["a", "b"]  # idempotent, as IAM documents
    for client_id in [f"c{i}" for i in range(98)]:
        state.add_oidc_client_id(arn, client_id)
    refusals = {
        "a 101st client ID": (arn, "one-more", "LimitExceeded"),
        "an unknown provider": (arn + "x", "b", "NoSuchEntity"),
        "a client ID too long": (arn, "x" * 256, "ValidationError"),
    }
    for arn_given, client_id, code in refusals.values():
        with pytest.raises(ClientError) as excinfo:
            iam.add_client_id_to_open_id_connect_provider(
                OpenIDConnectProviderArn=arn_given, ClientID=client_id
            )
        assert excinfo.value.response["Error"]["Code"] == code
    assert len(OidcProvider.objects.get().client_ids) == 100
    iam.close()


# --- the thumbprint of an https issuer ---

CHAINS = {
    "server, intermediate, root": ([b"leaf", b"inter", b"root"], b"inter"),
    "two intermediates: the top one": ([b"leaf", b"i1", b"i2", b"root"], b"i2"),
    "no intermediate: the server's": ([b"leaf", b"root"], b"leaf"),
    "self-signed": ([b"self"], b"self"),
}


@pytest.mark.parametrize(("chain", "expected"), CHAINS.values(), ids=CHAINS)
def test_the_top_intermediate(chain, expected):
    assert command.top_intermediate(chain) == expected


def _certificate(subject: str, key, issuer_name: str, issuer_key, *, ca: bool, san=None):
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture
def tls_issuer(tmp_path, monkeypatch):
    """A TLS server on 127.0.0.1 that sends its certificate and one intermediate; the root
    is trusted through SSL_CERT_FILE, as a system store would be."""
    import ipaddress

    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(3)]
    root = _certificate("Test Root", keys[0], "Test Root", keys[0], ca=True)
    inter = _certificate("Test Intermediate", keys[1], "Test Root", keys[0], ca=True)
    leaf = _certificate(
        "127.0.0.1",
        keys[2],
        "Test Intermediate",
        keys[1],
        ca=False,
        san=[x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    pem = lambda cert: cert.public_bytes(serialization.Encoding.PEM)  # noqa: E731
    (tmp_path / "root.pem").write_bytes(pem(root))
    (tmp_path / "chain.pem").write_bytes(pem(leaf) + pem(inter))
    (tmp_path / "key.pem").write_bytes(
        keys[2].private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "root.pem"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "chain.pem", tmp_path / "key.pem")
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(connection, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{port}/oidc", inter.public_bytes(serialization.Encoding.DER)
    listener.close()
    thread.join(timeout=5)


def test_an_https_issuer_gets_its_top_intermediates_sha1(tls_issuer):
    issuer, intermediate = tls_issuer
    assert command.default_thumbprint(issuer) == hashlib.sha1(intermediate).hexdigest()  # noqa: S324


def test_an_http_issuer_gets_the_placeholder_and_an_unreachable_one_a_hint():
    assert command.default_thumbprint("http://127.0.0.1:8000/oidc") == ZEROS
    with pytest.raises(SyncError, match=r"give --thumbprint"):
        command.default_thumbprint("https://127.0.0.1:9/oidc", timeout=2)
