"""SimpleSAMLphp 1.19 (Debian's `simplesamlphp`) behind a private Apache 2.4 + mod_php, for
`make bench`'s peer run: everything (ServerRoot, config, metadata, key, sessions, logs) lives
in one temporary directory that `stop()` removes; the system's Apache config and port 80 are
never touched. When run as root, Apache's children run as www-data.
"""

import datetime
import glob
import os
import pwd
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from bench.peer import BenchError, php_literal, render

TEMPLATES = Path(__file__).resolve().parent / "templates"
APACHE = "/usr/sbin/apache2"
SIMPLESAMLPHP_WWW = Path("/usr/share/simplesamlphp/www")
RUN_AS = "www-data"


def _php_module() -> str:
    found = sorted(glob.glob("/usr/lib/apache2/modules/libphp*.so"))
    if not found:
        raise BenchError("no mod_php: run `./scripts/install-system-deps bench`")
    return found[-1]


def _key_and_certificate(common_name: str) -> tuple[bytes, bytes]:
    """A fresh RSA-2048 key and a self-signed certificate, valid for a day either side."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, certificate.public_bytes(serialization.Encoding.PEM)


class SimpleSAMLphpServer:
    """One IdP with one user (`username`, password = username) whose attributes are
    `attributes` (name -> values), releasing `released` of them to `sp_entity_id`."""

    def __init__(
        self,
        root: Path,
        port: int,
        *,
        username: str,
        attributes: Mapping[str, Sequence[str]],
        sp_entity_id: str,
        sp_acs: str,
        processes: int = 24,
    ):
        self.root = root
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.username = username
        self.attributes = {"uid": [username], **{k: list(v) for k, v in attributes.items()}}
        self.released = list(attributes)
        self.sp_entity_id = sp_entity_id
        self.sp_acs = sp_acs
        self.processes = processes
        self.certificate_pem = b""
        self.process: subprocess.Popen | None = None

    # --- set-up ------------------------------------------------------------------------

    def write(self) -> None:
        if not SIMPLESAMLPHP_WWW.is_dir() or not Path(APACHE).exists():
            raise BenchError(
                "SimpleSAMLphp or Apache is missing: run `./scripts/install-system-deps bench`"
            )
        for folder in (
            "config",
            "metadata",
            "cert",
            "log",
            "data",
            "tmp",
            "sessions",
            "logs",
            "run",
            "htdocs",
            "probe",
        ):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        key_pem, self.certificate_pem = _key_and_certificate(f"SimpleSAMLphp bench {self.url}")
        (self.root / "cert" / "idp.key").write_bytes(key_pem)
        (self.root / "cert" / "idp.crt").write_bytes(self.certificate_pem)
        php = {
            "CERT_DIR": str(self.root / "cert") + "/",
            "LOG_DIR": str(self.root / "log") + "/",
            "DATA_DIR": str(self.root / "data") + "/",
            "TEMP_DIR": str(self.root / "tmp"),
            "METADATA_DIR": str(self.root / "metadata") + "/",
            "SESSION_DIR": str(self.root / "sessions"),
            "SECRET_SALT": secrets.token_hex(32),
            "ADMIN_PASSWORD": secrets.token_hex(16),
            "USER_PASSWORD": f"{self.username}:{self.username}",
            "USER_ATTRIBUTES": self.attributes,
            "SP_ENTITY_ID": self.sp_entity_id,
            "SP_ACS": self.sp_acs,
            "RELEASED_ATTRIBUTES": self.released,
        }
        php = {name: php_literal(value) for name, value in php.items()}
        files = {
            "config/config.php": (
                "config.php",
                "CERT_DIR LOG_DIR DATA_DIR TEMP_DIR "
                "METADATA_DIR SESSION_DIR SECRET_SALT ADMIN_PASSWORD",
            ),
            "config/authsources.php": ("authsources.php", "USER_PASSWORD USER_ATTRIBUTES"),
            "metadata/saml20-idp-hosted.php": ("saml20-idp-hosted.php", ""),
            "metadata/saml20-sp-remote.php": (
                "saml20-sp-remote.php",
                "SP_ENTITY_ID SP_ACS RELEASED_ATTRIBUTES",
            ),
        }
        for target, (template, names) in files.items():
            text = (TEMPLATES / template).read_text()
            (self.root / target).write_text(render(text, {n: php[n] for n in names.split()}))
        shutil.copy(TEMPLATES / "opcache.php", self.root / "probe" / "opcache.php")
        as_root = os.geteuid() == 0
        apache = render(
            (TEMPLATES / "apache2.conf").read_text(),
            {
                "SERVER_ROOT": str(self.root),
                "PORT": str(self.port),
                "RUN_AS": f"User {RUN_AS}\nGroup {RUN_AS}" if as_root else "",
                "PHP_MODULE": _php_module(),
                "PROCESSES": str(self.processes),
                "MAX_PROCESSES": str(self.processes + 16),
            },
        )
        (self.root / "apache2.conf").write_text(apache)
        if as_root:  # the children (www-data) read the config and key, write sessions and logs
            user = pwd.getpwnam(RUN_AS)
            os.chown(self.root, user.pw_uid, user.pw_gid)
            for folder, _, names in os.walk(self.root):
                for name in (folder, *(os.path.join(folder, n) for n in names)):
                    os.chown(name, user.pw_uid, user.pw_gid)
        os.chmod(self.root, 0o755)
        (self.root / "cert" / "idp.key").chmod(0o600)

    def start(self, timeout: float = 60) -> "SimpleSAMLphpServer":
        self.write()
        check = subprocess.run(
            [APACHE, "-f", str(self.root / "apache2.conf"), "-t"],
            capture_output=True,
            text=True,
        )
        if check.returncode != 0:
            raise BenchError(f"Apache refuses the bench config: {check.stderr.strip()}")
        self.process = subprocess.Popen(
            [APACHE, "-f", str(self.root / "apache2.conf"), "-DFOREGROUND"],
            stdout=(self.root / "logs" / "stdout.log").open("w"),
            stderr=subprocess.STDOUT,
            # Its own process group: prefork's parent, when it stops, sends SIGTERM to its
            # whole group, which would otherwise be the bench's and make's.
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                probe = requests.get(self.url + "/bench-probe/opcache.php", timeout=10)
            except requests.RequestException:
                time.sleep(0.2)
                continue
            if probe.ok:
                return self
            break  # Apache answers, but not with the probe: its error log says why
        log = self.error_log_tail()
        self.stop()
        raise BenchError(f"Apache with SimpleSAMLphp did not start: {log}")

    def stop(self, remove: bool = True) -> None:
        if self.process is not None:
            self.process.terminate()  # SIGTERM: the parent stops its children, then itself
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            self.process = None
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)

    def error_log_tail(self, lines: int = 5) -> str:
        texts = []
        for log in (self.root / "logs" / "error.log", self.root / "logs" / "stdout.log"):
            if log.exists():
                texts += log.read_text(errors="replace").strip().splitlines()[-lines:]
        return " | ".join(texts) or "(no log)"

    # --- use ---------------------------------------------------------------------------

    @property
    def idp_initiated_url(self) -> str:
        return f"{self.url}/simplesaml/saml2/idp/SSOService.php?spentityid={self.sp_entity_id}"

    def opcache(self) -> dict:
        return requests.get(self.url + "/bench-probe/opcache.php", timeout=30).json()

    def sign_in(self) -> requests.Session:
        """A new signed-in session, through the login form as a browser would; its first
        IdP-initiated sign-on answers with the auto-submit form."""
        session = requests.Session()
        login = session.get(self.idp_initiated_url, timeout=30)
        state = parse_qs(urlsplit(login.url).query).get("AuthState")
        if login.status_code != 200 or not state:
            raise BenchError(
                f"SimpleSAMLphp showed no login form (HTTP {login.status_code} at {login.url}): "
                f"{self.error_log_tail()}"
            )
        answer = session.post(
            login.url.split("?")[0],
            data={"username": self.username, "password": self.username, "AuthState": state[0]},
            timeout=30,
        )
        if not re.search(r'name="SAMLResponse"', answer.text):
            raise BenchError(
                f"SimpleSAMLphp's sign-in did not end in a SAMLResponse form (HTTP "
                f"{answer.status_code} at {answer.url}): {self.error_log_tail()}"
            )
        return session
