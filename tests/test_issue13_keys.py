"""Issue 13 part K: signing keys in the database, encrypted with IDP_KEY_ENCRYPTION_KEY.

Any host of one database signs with any published key; IDP_CERTS_DIR is only an import
and export format, and where keys from before were adopted from, once.
"""

import collections
import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.checks import run_checks
from django.core.management import CommandError, call_command
from lxml import etree
from signxml import XMLVerifier

from idp import identity, keys, watcher
from idp.models import SigningKey
from idp.saml import aws, signing
from idp.saml import constants as c
from idp.saml.errors import SamlError

ROOT = Path(__file__).parent.parent
NS = {"ds": c.DS}


def key_lines(status: str) -> list[str]:
    """`rotate_key status`'s key lines, without the workers' section after them."""
    return [line for line in status.splitlines() if line.split()[0] in ("saml", "jwt")]


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=out)
    return out.getvalue()


def w003() -> list:
    return [m for m in run_checks(tags=None) if m.id == "fedmock.W003"]


def published_certificates() -> list[str]:
    keys.forget_cached_keys()
    root = etree.fromstring(identity.metadata_xml())
    return ["".join(t.split()) for t in root.xpath("//ds:X509Certificate/text()", namespaces=NS)]


# --- two processes, two certs dirs, one database ---------------------------------------


def host(tmp_path: Path, name: str, kek: str) -> tuple[list[str], dict]:
    """A separate process as another host runs it: its own IDP_CERTS_DIR, the shared DB."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'shared.sqlite3'}",
        "IDP_CERTS_DIR": str(tmp_path / name / "certs"),
        "IDP_KEY_ENCRYPTION_KEY": kek,
        "SECRET_KEY": "shared",
        "IDP_BASE_URL": "http://idp.example",
    }
    return [sys.executable, str(ROOT / "manage.py")], env


def manage(tmp_path, name, kek, *args) -> subprocess.CompletedProcess:
    command, env = host(tmp_path, name, kek)
    return subprocess.run(
        [*command, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )


SIGN_METADATA = (
    "import sys; from idp import identity; sys.stdout.write(identity.metadata_xml(signed=True)"
    ".decode())"
)


def test_two_hosts_with_their_own_certs_dirs_sign_with_the_one_key_in_the_database(tmp_path):
    kek = Fernet.generate_key().decode()
    assert manage(tmp_path, "a", kek, "migrate", "-v0").returncode == 0
    created = manage(tmp_path, "a", kek, "ensure_signing_key")
    assert created.returncode == 0, created.stderr
    assert "Generated signing key" in created.stdout
    # Host b generates nothing, and has no file: it reads the key host a stored.
    again = manage(tmp_path, "b", kek, "ensure_signing_key")
    assert "Using signing key" in again.stdout and "Generated" not in again.stdout
    exported = manage(
        tmp_path,
        "a",
        kek,
        "export_key",
        created.stdout.split()[3],
        "--out",
        str(tmp_path / "export"),
    )
    assert exported.returncode == 0, exported.stderr
    (cert_path,) = (tmp_path / "export").glob("*.crt")
    for name in ("a", "b"):
        signed = manage(tmp_path, name, kek, "shell", "-v0", "-c", SIGN_METADATA)
        assert signed.returncode == 0, signed.stderr
        XMLVerifier().verify(
            signed.stdout.encode(), x509_cert=cert_path.read_text(), id_attribute="ID"
        )
    # The key never went to either host's disk: certs/ is an export format only.
    for name in ("a", "b"):
        assert not list((tmp_path / name).glob("certs/*"))
    # A third host with another KEK cannot decrypt it, and says so in one line.
    wrong = manage(
        tmp_path, "c", Fernet.generate_key().decode(), "shell", "-v0", "-c", SIGN_METADATA
    )
    assert wrong.returncode != 0 and "cannot decrypt" in wrong.stderr
    checked = manage(tmp_path, "c", Fernet.generate_key().decode(), "check")
    assert "fedmock.W003" in checked.stderr
    assert "IDP_KEY_ENCRYPTION_KEY" in checked.stderr and "Traceback" not in checked.stderr


# --- a wrong or malformed KEK --------------------------------------------------------------


WRONG_KEKS = {
    "another key": lambda: Fernet.generate_key().decode(),
    "not a Fernet key": lambda: "correct horse battery staple",
    "empty list": lambda: " , ",
}


@pytest.mark.parametrize("kek", WRONG_KEKS.values(), ids=WRONG_KEKS.keys())
def test_a_wrong_kek_is_a_503_naming_the_problem_and_the_fix_with_no_path(
    client, demo, settings, kek
):
    settings.IDP_KEY_ENCRYPTION_KEY = kek()
    keys.forget_cached_keys()
    client.login(username="alice", password="alice")
    for response in (
        client.get("/saml/metadata/"),
        client.get("/saml/init/", {"sp": aws.AUDIENCE}),
    ):
        body = response.content.decode()
        assert response.status_code == 503, body[:300]
        assert "IDP_KEY_ENCRYPTION_KEY" in body
        assert str(settings.IDP_CERTS_DIR) not in body and "/certs" not in body
        assert "Traceback" not in body
    (problem,) = w003()
    assert "IDP_KEY_ENCRYPTION_KEY" in problem.msg + problem.hint


def test_the_right_kek_among_several_still_decrypts(client, demo, settings):
    """MultiFernet: a new KEK can be added first, so no moment has no key that decrypts."""
    settings.IDP_KEY_ENCRYPTION_KEY = (
        f"{Fernet.generate_key().decode()},{settings.IDP_KEY_ENCRYPTION_KEY}"
    )
    keys.forget_cached_keys()
    assert client.get("/saml/metadata/").status_code == 200
    assert w003() == []


def test_the_watcher_logs_a_lasting_failure_once_per_change(demo, settings, caplog):
    watcher._failures.clear()
    right = settings.IDP_KEY_ENCRYPTION_KEY
    caplog.set_level(logging.INFO, logger="fedmock.watcher")
    settings.IDP_KEY_ENCRYPTION_KEY = Fernet.generate_key().decode()
    keys.forget_cached_keys()
    for _ in range(5):
        watcher._refresh()
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(failures) == 1, [r.getMessage() for r in failures]
    assert not failures[0].exc_info and "\n" not in failures[0].getMessage()
    assert "cannot decrypt" in failures[0].getMessage()
    # Another problem is a change: logged once more.
    settings.IDP_KEY_ENCRYPTION_KEY = "garbage"
    for _ in range(3):
        watcher._refresh()
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 2
    settings.IDP_KEY_ENCRYPTION_KEY = right
    watcher._refresh()
    assert "works again" in caplog.records[-1].getMessage()
    assert watcher._failures == {}


# What this host's KEK is, as `rotate_key status` sees it: (environment, settings) from the
# right KEK; then the words its marked lines must hold.
UNUSABLE_HERE = {
    "another KEK in the environment": (
        lambda right: (other := Fernet.generate_key().decode(), other),
        ["cannot decrypt its signing key", keys.KEK_HINT],
    ),
    "no KEK set: the host's own generated file": (
        lambda right: (None, Fernet.generate_key().decode()),
        ["cannot decrypt", "IDP_KEY_ENCRYPTION_KEY is not set here", keys.KEK_HINT],
    ),
    "not a Fernet key": (
        lambda right: ("garbage", "garbage"),
        ["not a key-encryption key", "Fernet.generate_key"],
    ),
}


@pytest.mark.parametrize("kek, words", UNUSABLE_HERE.values(), ids=UNUSABLE_HERE.keys())
def test_rotate_key_status_marks_each_key_this_host_cannot_use_on_its_line_with_the_fix(
    signing_key, settings, monkeypatch, kek, words
):
    jwt_key = keys.generate_key("active", use="jwt")
    staged = keys.stage()
    retired = keys.generate_key("retired", use="jwt")
    environment, setting = kek(settings.IDP_KEY_ENCRYPTION_KEY)
    if environment is None:
        monkeypatch.delenv("IDP_KEY_ENCRYPTION_KEY", raising=False)
    else:
        monkeypatch.setenv("IDP_KEY_ENCRYPTION_KEY", environment)
    settings.IDP_KEY_ENCRYPTION_KEY = setting
    lines = {line.split()[1]: line for line in key_lines(run("rotate_key", "status"))}
    assert len(lines) == 4, lines  # one line per key: the mark and its fix stay on it
    for key, role in (
        (signing_key, "signs assertions"),
        (jwt_key, "signs tokens"),
        (staged, "published in the SAML metadata"),
    ):
        line = lines[key.fingerprint[:16]]
        assert f"{role}; UNUSABLE ON THIS HOST: " in line, line
        assert line.index("UNUSABLE") < line.index("Fix: ")
        for word in words:
            assert word in line, line
    # A retired key signs nowhere: nothing to fix, whatever this host's KEK.
    assert lines[retired.fingerprint[:16]].endswith("published nowhere")


def test_rotate_key_status_marks_a_key_from_before_whose_files_are_elsewhere(db, key_pems):
    row = keys.store_key(*key_pems, state="active")
    SigningKey.objects.filter(pk=row.pk).update(private_key_encrypted="", certificate_pem="")
    (line,) = key_lines(run("rotate_key", "status"))
    assert "signs assertions; UNUSABLE ON THIS HOST: " in line
    assert "holds no material" in line and "Fix: Start a host whose IDP_CERTS_DIR" in line
    assert "/certs" not in line


def test_rotate_key_status_marks_nothing_when_this_host_can_use_every_key(
    signing_key, settings, monkeypatch
):
    """The control: the same keys with the right KEK (alone, or behind a new one)."""
    keys.generate_key("active", use="jwt")
    keys.stage()
    monkeypatch.delenv("IDP_KEY_ENCRYPTION_KEY", raising=False)
    for kek in (
        settings.IDP_KEY_ENCRYPTION_KEY,
        f"{Fernet.generate_key().decode()},{settings.IDP_KEY_ENCRYPTION_KEY}",
    ):
        settings.IDP_KEY_ENCRYPTION_KEY = kek
        status = run("rotate_key", "status")
        assert len(key_lines(status)) == 3 and "UNUSABLE" not in status, status


# --- rotation, import and export through the database ---------------------------------


def test_rotation_stage_activate_retire_is_seen_by_a_host_without_files(
    signing_key, settings, tmp_path
):
    first = signing_key
    staged = keys.stage()
    # Another host: another (empty) certs dir, the same database.
    settings.IDP_CERTS_DIR = tmp_path / "elsewhere"
    assert len(published_certificates()) == 2
    keys.activate()
    keys.forget_cached_keys()
    assert keys.active_key().fingerprint == staged.fingerprint
    staged.refresh_from_db()
    keys.retire()
    assert published_certificates() == [signing.cert_base64(staged.certificate_pem)]
    assert SigningKey.objects.get(pk=first.pk).state == "retired"
    assert not settings.IDP_CERTS_DIR.exists()


def test_export_then_import_into_another_database_keeps_the_key(signing_key, tmp_path):
    out = run("export_key", signing_key.fingerprint[:12], "--out", str(tmp_path / "x"))
    assert signing_key.fingerprint in out
    key_path, cert_path = (
        tmp_path / "x" / f"{signing_key.fingerprint}.{e}" for e in ("key", "crt")
    )
    assert oct(key_path.stat().st_mode & 0o777) == "0o600"
    SigningKey.objects.update(state="retired")  # so that it may go: as a fresh database
    SigningKey.objects.all().delete()
    imported = run("import_key", "--key", str(key_path), "--cert", str(cert_path))
    assert f"Imported key {signing_key.fingerprint} as active" in imported
    keys.forget_cached_keys()
    assert keys.active_key().fingerprint == signing_key.fingerprint


@pytest.mark.parametrize("fingerprint", ["", "0000", "zz"])
def test_export_of_an_unknown_key_is_one_line(db, signing_key, fingerprint):
    with pytest.raises(CommandError, match="rotate_key status"):
        run("export_key", fingerprint or "f" * 64)


def test_a_key_from_before_is_adopted_from_its_files_once(db, settings, key_pems):
    """A row made when keys lived in certs/: its files move into the database on first use."""
    material = signing.load_key(*key_pems)
    row = keys.store_key(*key_pems, state="active")
    SigningKey.objects.filter(pk=row.pk).update(private_key_encrypted="", certificate_pem="")
    key_path, cert_path = keys.key_paths(material.fingerprint)
    key_path.parent.mkdir(parents=True)
    key_path.write_bytes(key_pems[0])
    cert_path.write_bytes(key_pems[1])
    assert w003() == []  # the files are there: not a problem
    assert "Moved key" in run("ensure_signing_key")
    row.refresh_from_db()
    assert row.private_key_encrypted and row.certificate_pem == key_pems[1].decode()
    key_path.unlink()  # the files are now only an export
    keys.forget_cached_keys()
    assert keys.active_key().fingerprint == material.fingerprint
    assert "Moved key" not in run("ensure_signing_key")


def test_a_key_from_before_with_no_files_here_is_a_503_and_an_error(client, db, key_pems):
    row = keys.store_key(*key_pems, state="active")
    SigningKey.objects.filter(pk=row.pk).update(private_key_encrypted="", certificate_pem="")
    keys.forget_cached_keys()
    response = client.get("/saml/metadata/")
    body = response.content.decode()
    assert response.status_code == 503 and "holds no material" in body
    assert "/certs" not in body
    (problem,) = w003()
    assert "rotate_key retire" in problem.hint
    # ensure_signing_key does not fail for it: another host may hold the files.
    assert "Moved key" not in run("ensure_signing_key")


def test_the_private_key_is_in_no_column_in_clear(signing_key, key_pems):
    row = SigningKey.objects.values().get(pk=signing_key.pk)
    text = repr(row)
    assert "PRIVATE KEY" not in text and key_pems[0].decode().splitlines()[1] not in text
    assert (
        keys.decrypt_private_key(signing_key.fingerprint, row["private_key_encrypted"])
        == key_pems[0]
    )


def test_the_admin_form_shows_no_key_material(admin_client, signing_key):
    page = admin_client.get(f"/admin/idp/signingkey/{signing_key.pk}/change/").content.decode()
    assert "private_key_encrypted" not in page and signing_key.private_key_encrypted not in page


def test_the_development_kek_is_a_private_file_beside_the_secret_key():
    from django.conf import settings as live

    if os.environ.get("IDP_KEY_ENCRYPTION_KEY"):
        pytest.skip("the environment gives the KEK")
    path = ROOT / ".key_encryption_key"
    assert path.read_text().strip() == live.IDP_KEY_ENCRYPTION_KEY
    assert path.stat().st_mode & 0o777 == 0o600
    Fernet(live.IDP_KEY_ENCRYPTION_KEY)  # a usable key


def test_the_pytest_plugins_server_is_given_its_own_kek(tmp_path, monkeypatch):
    """Never a generated file in the installed package's folder, never the project's KEK."""
    from idp.pytest_plugin import Server

    monkeypatch.setenv("IDP_KEY_ENCRYPTION_KEY", "the project's own")
    first, second = (Server(tmp_path / name, tmp_path / "none.yaml") for name in "ab")
    kek = first.env["IDP_KEY_ENCRYPTION_KEY"]
    Fernet(kek)  # usable
    assert kek != "the project's own" and kek != second.env["IDP_KEY_ENCRYPTION_KEY"]


def test_a_host_with_another_kek_stores_no_key_and_does_not_start(signing_key, settings):
    """Its key could be decrypted by no other host: they would all go down on publishing it."""
    settings.IDP_KEY_ENCRYPTION_KEY = Fernet.generate_key().decode()
    for step in (keys.stage, lambda: keys.generate_key("next", use="jwt")):
        with pytest.raises(keys.KeyLifecycleError, match="IDP_KEY_ENCRYPTION_KEY does not"):
            step()
    # ensure_signing_key would have to make the JWT key: refused, in one line.
    with pytest.raises(CommandError, match="IDP_KEY_ENCRYPTION_KEY does not") as refused:
        run("ensure_signing_key")
    assert "\n" not in str(refused.value)
    assert SigningKey.objects.count() == 1


def test_ensure_signing_key_refuses_to_start_a_host_that_cannot_decrypt(signing_key, settings):
    keys.generate_key("active", use="jwt")
    assert "Using JWT signing key" in run("ensure_signing_key")
    settings.IDP_KEY_ENCRYPTION_KEY = Fernet.generate_key().decode()
    out = io.StringIO()
    with pytest.raises(CommandError, match="cannot decrypt its signing key") as refused:
        call_command("ensure_signing_key", stdout=out)
    assert "\n" not in str(refused.value) and "IDP_KEY_ENCRYPTION_KEY" in str(refused.value)
    assert out.getvalue() == ""  # no "Using key …" before the refusal


@pytest.mark.parametrize("kek", ["", "short", "x" * 44])
def test_a_malformed_kek_stores_no_key_and_says_how_to_make_one(db, settings, kek):
    settings.IDP_KEY_ENCRYPTION_KEY = kek
    with pytest.raises(keys.KeyLifecycleError, match="Fernet.generate_key"):
        keys.ensure_active_key()
    with pytest.raises(CommandError, match="not a key-encryption key"):
        run("ensure_signing_key")
    assert not SigningKey.objects.exists()


def test_an_unreadable_key_of_one_use_does_not_freeze_the_other_uses_ring(signing_key, monkeypatch):
    jwt_key = keys.generate_key("active", use="jwt")
    keys.forget_cached_keys()
    for cache in keys._caches.values():  # as under the watcher: only refresh_keys re-reads
        monkeypatch.setattr(cache, "watched", True)
    keys.refresh_keys()
    # A SAML key (refreshed first) that cannot be read, then a JWT rollover step.
    SigningKey.objects.filter(pk=keys.stage().pk).update(
        private_key_encrypted=keys.encrypt_private_key(b"damaged")
    )
    staged = keys.stage(use="jwt")
    with pytest.raises(SamlError, match="cannot be used"):
        keys.refresh_keys()
    assert {m.fingerprint for m in keys.published_keys("jwt")} == {
        jwt_key.fingerprint,
        staged.fingerprint,
    }


# --- as `make run` serves it: two gunicorn hosts on one database --------------------------


# gunicorn.conf.py as shipped, but each worker also appends its pid to ROUNDS after every
# watcher round (the first, in post_worker_init, included): a test can wait for rounds to
# have happened, however slowly a loaded machine runs them, instead of sleeping.
COUNTING_ROUNDS_CONF = """
import os
import runpy

globals().update(
    (name, value)
    for name, value in runpy.run_path({conf!r}).items()
    if not name.startswith("__")
)
_shipped_post_worker_init = post_worker_init


def post_worker_init(worker):
    from idp import watcher

    shipped_refresh = watcher._refresh

    def counted_refresh():
        shipped_refresh()
        with open({rounds!r}, "a") as rounds:
            rounds.write(f"{{os.getpid()}}\\n")

    watcher._refresh = counted_refresh
    _shipped_post_worker_init(worker)
"""
ROUNDS_WATCHED = 6  # a failure logged each round would be six lines per worker by then
PATIENCE = 120  # seconds: workers booting and ticking on a loaded 2-core machine


def watcher_rounds(path: Path) -> dict[str, int]:
    """Rounds each worker (by pid) has completed, from COUNTING_ROUNDS_CONF's file."""
    if not path.exists():
        return {}
    return collections.Counter(path.read_text().split())


def test_gunicorn_hosts_share_the_key_and_a_wrong_kek_is_503_logged_once(tmp_path):
    import time

    import requests

    from . import databases
    from .live_server import GunicornServer

    first = GunicornServer(tmp_path / "a", workers=2)
    kek = Fernet.generate_key().decode()
    first.env["IDP_KEY_ENCRYPTION_KEY"] = kek
    second = GunicornServer(tmp_path / "b", workers=2)
    wrong = GunicornServer(tmp_path / "c", workers=2)
    for other in (second, wrong):  # they join first's database: theirs is not needed
        databases.drop_database(other.env["DATABASE_URL"])
        other.env["DATABASE_URL"] = first.env["DATABASE_URL"]
    second.env["IDP_KEY_ENCRYPTION_KEY"] = kek
    wrong.env["IDP_KEY_ENCRYPTION_KEY"] = Fernet.generate_key().decode()
    first.start()
    try:
        second.start()
        try:
            certificates = [
                "".join(t.split())
                for server in (first, second)
                for t in etree.fromstring(
                    requests.get(server.url + "/saml/metadata/", timeout=15).content
                ).xpath("//ds:X509Certificate/text()", namespaces=NS)
            ]
            assert len(certificates) == 2 and certificates[0] == certificates[1]
            assert not list((tmp_path / "b").glob("certs/*"))
            # A host with another KEK: its bootstrap refuses in one line...
            with pytest.raises(subprocess.CalledProcessError) as refused:
                wrong.manage("ensure_signing_key")
            assert (
                refused.value.stderr.strip()
                .splitlines()[-1]
                .startswith("CommandError: The IdP cannot decrypt")
            )
            # ...and started anyway, it answers 503 without a path, and logs it once per worker.
            rounds = tmp_path / "c" / "watcher-rounds"
            conf = tmp_path / "c" / "gunicorn.conf.py"
            conf.write_text(
                COUNTING_ROUNDS_CONF.format(conf=str(ROOT / "gunicorn.conf.py"), rounds=str(rounds))
            )
            gunicorn = Path(sys.executable).with_name("gunicorn")
            wrong.process = subprocess.Popen(
                [str(gunicorn), "-c", str(conf), "idp.wsgi:application"],
                env=wrong.env,
                cwd=ROOT,
                stdout=wrong.log.open("w"),
                stderr=subprocess.STDOUT,
            )
            deadline = time.monotonic() + PATIENCE
            reply = None
            while time.monotonic() < deadline:
                try:
                    reply = requests.get(wrong.url + "/saml/metadata/", timeout=15)
                    break
                except requests.RequestException:
                    time.sleep(0.2)
            assert reply is not None and reply.status_code == 503
            assert "IDP_KEY_ENCRYPTION_KEY" in reply.text and str(tmp_path) not in reply.text
            # Wait until both workers have run ROUNDS_WATCHED rounds, each of which met the
            # same failure: a loop would have logged a line a round by then.
            while time.monotonic() < deadline:
                counted = watcher_rounds(rounds)
                if len(counted) >= 2 and min(counted.values()) >= ROUNDS_WATCHED:
                    break
                time.sleep(0.2)
            log = wrong.log.read_text()  # read after the rounds: it holds their lines
            assert len(counted) == 2, f"expected 2 workers, rounds by pid: {counted}\n{log}"
            assert min(counted.values()) >= ROUNDS_WATCHED, f"too few rounds: {counted}\n{log}"
            assert "Traceback" not in log
            assert log.count("refresh_keys failed") == 2, log  # one per worker
        finally:
            wrong.stop()
            second.stop()
    finally:
        first.stop()
