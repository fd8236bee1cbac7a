"""The key store and the signing-key lifecycle: stage, activate, retire.

Each key's material and state live in the database, so every host of one database signs
with any published key and a new host needs nothing copied. The private key is encrypted
at rest with IDP_KEY_ENCRYPTION_KEY (the KEK) as a Fernet token: authenticated (a wrong
KEK is told from a damaged row, never decrypts to garbage), versioned, one printable key
per host that is easy to pass in the environment, and MultiFernet lets a new KEK be added
before the old one goes. (AES-GCM would add associated data, but load_key already refuses
a private key that does not match its row's certificate.) IDP_CERTS_DIR is now only an
import/export format (`import_key`, `export_key`) and the place rows from before this
were adopted from, once (`adopt_key_files`). A process parses each key once.

Under gunicorn a watcher thread per worker (watcher.py) re-reads the states every half
second and parses new keys off the request path; without it (tests, runserver) the
request path re-reads the states at most once per IDP_KEY_REFRESH_SECONDS.

A rollover step (stage, activate, retire) goes ahead only once every live worker on
every host reports, by its heartbeat (workers.py), the keys the database holds now: the
previous step has reached them all, so no worker signs with a key another does not
publish. Processes without a watcher (runserver, tests) send no heartbeats and are
not waited for.
"""

import datetime
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.db import connection, transaction
from django.db.models import BooleanField, ExpressionWrapper, OuterRef, Q, Subquery
from django.utils import timezone

from . import workers
from .models import SigningKey
from .saml import signing
from .saml.errors import SamlError

State = SigningKey.State
Use = SigningKey.Use
SAML = Use.SAML


class KeyLifecycleError(Exception):
    """A rollover step that must not happen now; the message says what to do instead.

    `behind` names the workers that have not loaded the previous step's keys: the step only
    has to wait for them, polling every `wait_seconds`.
    """

    def __init__(self, message: str, behind: tuple[str, ...] = (), wait_seconds: float = 0.0):
        super().__init__(message)
        self.behind = behind
        self.wait_seconds = wait_seconds


def certs_dir() -> Path:
    return Path(settings.IDP_CERTS_DIR)


# How often a waiting step asks again: workers reload keys every half second.
ACKNOWLEDGEMENT_POLL_SECONDS = 0.2
# How long a step asked over HTTP (admin, API) waits for acknowledgements: it holds a
# worker meanwhile, and the workers acknowledge within about a second.
HTTP_PATIENCE_SECONDS = 5.0


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temporary, mode)
    os.replace(temporary, path)


def key_paths(fingerprint: str) -> tuple[Path, Path]:
    """Where the files of a key from before keys lived in the database were."""
    directory = certs_dir()
    return directory / f"{fingerprint}.key", directory / f"{fingerprint}.crt"


# --- encryption at rest --------------------------------------------------------------

KEK_HINT = (
    "Give this host the IDP_KEY_ENCRYPTION_KEY that the other hosts of this database use "
    "(the one the keys were stored with), then restart it."
)

_fernets: dict[str, MultiFernet] = {}


def _fernet() -> MultiFernet:
    """The KEK(s): the first encrypts, any decrypts."""
    text = settings.IDP_KEY_ENCRYPTION_KEY
    if text not in _fernets:
        try:
            parts = [Fernet(part.strip()) for part in text.split(",") if part.strip()]
            _fernets[text] = MultiFernet(parts)
        except ValueError as error:
            raise SamlError(
                "IDP_KEY_ENCRYPTION_KEY is not a key-encryption key",
                "It must be a Fernet key: 32 random bytes in url-safe base64, 44 characters "
                "(or several, comma-separated).",
                "Generate one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'` and give every host the same.",
                status=503,
            ) from error
    return _fernets[text]


def encrypt_private_key(key_pem: bytes) -> str:
    return _fernet().encrypt(key_pem).decode("ascii")


def decrypt_private_key(fingerprint: str, token: str) -> bytes:
    try:
        return _fernet().decrypt(token.encode("ascii"))
    except (InvalidToken, UnicodeEncodeError) as error:
        raise SamlError(
            "The IdP cannot decrypt its signing key",
            f"Key {fingerprint[:16]} was stored with another IDP_KEY_ENCRYPTION_KEY "
            "than this host's.",
            KEK_HINT,
            status=503,
        ) from error


def _same_kek_as_the_database() -> None:
    """Refuse to store a key that the other hosts could not decrypt.

    A host started with the wrong KEK that staged a key would otherwise take every other
    host down as soon as they publish it.
    """
    stored = (
        SigningKey.objects.exclude(private_key_encrypted="")
        .order_by("-created_at")
        .values_list("fingerprint", "private_key_encrypted")
        .first()
    )
    if stored is None:
        return
    try:
        decrypt_private_key(*stored)
    except SamlError as error:
        raise KeyLifecycleError(
            "This host's IDP_KEY_ENCRYPTION_KEY does not decrypt the keys already in the "
            f"database, so no other host could use a key it stored. {KEK_HINT}"
        ) from error


def store_key(key_pem: bytes, cert_pem: bytes, state: str, use: str = SAML) -> SigningKey:
    """Store the key pair (the private key encrypted) and its state in the database."""
    material = _usable(key_pem, cert_pem)
    _same_kek_as_the_database()
    try:
        encrypted = encrypt_private_key(key_pem)
    except SamlError as error:  # a malformed KEK: the rollover's callers expect this class
        raise KeyLifecycleError(f"{error} {error.hint}") from error
    key = SigningKey.objects.create(
        fingerprint=material.fingerprint,
        state=state,
        use=use,
        not_valid_before=material.not_valid_before,
        not_valid_after=material.not_valid_after,
        private_key_encrypted=encrypted,
        certificate_pem=cert_pem.decode("ascii"),
    )
    forget_cached_keys()  # this process publishes it at once (say, `stage --sync-iam`)
    return key


def missing_material(fingerprint: str) -> SamlError:
    # No path in it: the 503 page is shown to anyone.
    return SamlError(
        "A signing key's material is missing",
        f"The database lists key {fingerprint[:16]} but holds no material for it, and "
        "this host's IDP_CERTS_DIR has no files for it.",
        "Start a host whose IDP_CERTS_DIR holds the key once (it moves the key into the "
        f"database), or retire it with `python manage.py rotate_key retire {fingerprint[:16]}`.",
        status=503,
    )


def adopt_key_files(fingerprint: str) -> tuple[bytes, bytes]:
    """A row from before keys lived in the database: move its files' material into it, once.

    Returns the key and certificate PEM. The files stay, as an export.
    """
    key_path, cert_path = key_paths(fingerprint)
    try:
        key_pem, cert_pem = key_path.read_bytes(), cert_path.read_bytes()
    except FileNotFoundError as error:
        raise missing_material(fingerprint) from error
    try:
        material = signing.load_key(key_pem, cert_pem)
    except (ValueError, TypeError) as error:
        raise SamlError(
            "A signing key file cannot be used",
            f"The files of key {fingerprint[:16]} in IDP_CERTS_DIR do not hold it: {error}.",
            "Restore them from a backup, or retire the key with "
            f"`python manage.py rotate_key retire {fingerprint[:16]}`.",
            status=503,
        ) from error
    if material.fingerprint != fingerprint:
        raise missing_material(fingerprint)
    SigningKey.objects.filter(fingerprint=fingerprint, private_key_encrypted="").update(
        private_key_encrypted=encrypt_private_key(key_pem),
        certificate_pem=cert_pem.decode("ascii"),
    )
    return key_pem, cert_pem


def adopt_all_key_files() -> list[str]:
    """Every published row without material takes it from IDP_CERTS_DIR (first start)."""
    rows = SigningKey.objects.filter(private_key_encrypted="").exclude(state=State.RETIRED)
    # A key whose files are on another host's disk waits for that host to start (the
    # check names it): this host's start must not fail for it.
    adopted = [
        fingerprint
        for fingerprint in rows.values_list("fingerprint", flat=True)
        if all(path.exists() for path in key_paths(fingerprint))
    ]
    for fingerprint in adopted:
        adopt_key_files(fingerprint)
    return adopted


def key_material(fingerprint: str, token: str, cert_pem: str) -> signing.KeyMaterial:
    """A row's key, decrypted and parsed; a SamlError (503) says why it cannot be."""
    if token:
        key_pem, cert_bytes = decrypt_private_key(fingerprint, token), cert_pem.encode("ascii")
    else:
        key_pem, cert_bytes = adopt_key_files(fingerprint)
    try:
        return signing.load_key(key_pem, cert_bytes)
    except (ValueError, TypeError) as error:
        raise SamlError(
            "A signing key in the database cannot be used",
            f"Key {fingerprint[:16]} decrypts, but does not parse: {error}.",
            f"Retire it with `python manage.py rotate_key retire {fingerprint[:16]}`.",
            status=503,
        ) from error


def material_problem(fingerprint: str, token: str, cert_pem: str) -> SamlError | None:
    """Why this host cannot sign with a stored key (its KEK, a damaged row, no files), or None.

    It only reads: a row from before whose files are here is adopted on first use, not now.
    `manage.py check` and `rotate_key status` share it.
    """
    try:
        if token:
            key_material(fingerprint, token, cert_pem)
        elif not all(path.exists() for path in key_paths(fingerprint)):
            raise missing_material(fingerprint)
    except SamlError as error:
        return error
    return None


def export_key(fingerprint: str, directory: Path) -> tuple[SigningKey, Path, Path]:
    """Write a key as FINGERPRINT.key (0600) and FINGERPRINT.crt, as import_key reads them."""
    key = _get(fingerprint)
    material = key_material(key.fingerprint, key.private_key_encrypted, key.certificate_pem)
    key_pem = material.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    directory.mkdir(parents=True, exist_ok=True)
    key_path = directory / f"{key.fingerprint}.key"
    cert_path = directory / f"{key.fingerprint}.crt"
    _write_atomically(key_path, key_pem, 0o600)
    _write_atomically(cert_path, material.cert_pem.encode("ascii"), 0o644)
    return key, key_path, cert_path


def _usable(key_pem: bytes, cert_pem: bytes) -> signing.KeyMaterial:
    try:
        material = signing.load_key(key_pem, cert_pem)
    except (ValueError, TypeError) as error:
        raise KeyLifecycleError(f"The key and certificate cannot be used: {error}.") from error
    if SigningKey.objects.filter(fingerprint=material.fingerprint).exists():
        raise KeyLifecycleError(
            f"Key {material.fingerprint} is already in the store; `rotate_key status` shows it."
        )
    return material


def generate_key(state: str, valid_days: int = 3650, use: str = SAML) -> SigningKey:
    key_pem, cert_pem = signing.generate_self_signed(
        f"fedmock {settings.IDP_BASE_URL}", valid_days=valid_days
    )
    return store_key(key_pem, cert_pem, state, use)


def signing_row(use: str = SAML) -> SigningKey | None:
    """The key that signs for `use`: the most recently activated active key."""
    return (
        SigningKey.objects.filter(state=State.ACTIVE, use=use).order_by("-state_changed_at").first()
    )


def is_signer_expression():
    """A queryset annotation: whether the row is the key that signs for its own use."""
    signer = (
        SigningKey.objects.filter(state=State.ACTIVE, use=OuterRef("use"))
        .order_by("-state_changed_at")
        .values("pk")[:1]
    )
    return ExpressionWrapper(Q(pk=Subquery(signer)), output_field=BooleanField())


# What a key does, by use: the admin's list and the API name it so.
SIGNS = {Use.SAML: "signs assertions", Use.JWT: "signs tokens"}
PUBLISHED_IN = {Use.SAML: "the SAML metadata", Use.JWT: "/oidc/jwks"}
# What a use's last active key going away would stop. Each use has its own rollover, so
# the SAML key's going stops SAML sign-ons only, and the JWT key's every token.
WITHOUT_A_KEY = {
    Use.SAML: "stop every SAML sign-on (OIDC sign-ons go on with the JWT key)",
    Use.JWT: "stop fedmock signing tokens (ID and access tokens, minted web-identity tokens), "
    "and leave /oidc/jwks empty, so verifiers such as the STS refuse the tokens already "
    "issued",
}


def role(key: SigningKey, signs: bool | None = None) -> str:
    """'signs tokens', 'published in the SAML metadata', 'retired: published nowhere'."""
    if signs is None:
        signer = signing_row(key.use)
        signs = signer is not None and signer.pk == key.pk
    if signs:
        return SIGNS[key.use]
    if key.state == State.RETIRED:
        return "retired: published nowhere"
    return f"published in {PUBLISHED_IN[key.use]}"


def ensure_active_key(use: str = SAML) -> tuple[SigningKey, bool]:
    """The active key, created on first start; the flag says whether it is new."""
    with transaction.atomic():
        _one_step_at_a_time()  # also outside bootstrap's start-up lock
        active = signing_row(use)
        if active is not None:
            return active, False
        return generate_key(State.ACTIVE, use=use), True


def _use_flag(use: str) -> str:
    """How the commands name a use, so every hint names the right rollover."""
    return "" if use == SAML else f" --use {use}"


def _change_state(key: SigningKey, state: str, now: datetime.datetime | None = None) -> SigningKey:
    key.state = state
    key.state_changed_at = now or timezone.now()
    key.save(update_fields=["state", "state_changed_at"])
    forget_cached_keys()
    return key


def key_set_of(rows: list[tuple[str, str, datetime.datetime]]) -> workers.KeySet:
    """The key set that rows (fingerprint, state, state_changed_at) of one use make: every
    key not retired is published, and the most recently activated active key signs."""
    live = [row for row in rows if row[1] != State.RETIRED]
    active = [row for row in live if row[1] == State.ACTIVE]
    signer = max(active, key=lambda row: row[2])[0] if active else None
    return workers.KeySet(signer, tuple(row[0] for row in live))


def state_rows(use: str) -> list[tuple[str, str, datetime.datetime]]:
    return list(
        SigningKey.objects.exclude(state=State.RETIRED)
        .filter(use=use)
        .order_by("created_at")
        .values_list("fingerprint", "state", "state_changed_at")
    )


def await_workers(use: str) -> None:
    """Refuse to go on, asking to wait, while a live worker has not loaded the keys of `use`
    that the database holds now: the previous step has not reached it yet."""
    expected = key_set_of(state_rows(use))
    behind = [beat for beat in workers.live() if not beat.reports(use, expected)]
    if behind:
        raise KeyLifecycleError(
            f"{len(behind)} worker(s) have not loaded the keys of the previous step "
            f"(expected: {expected.describe()}): "
            + "; ".join(beat.describe(use) for beat in behind)
            + ". A worker reloads keys within a second of a change; one that stays behind "
            "cannot read them (its log says why) or is stuck. Fix or stop it: a worker silent "
            f"for {workers.live_window().total_seconds():.0f} s is no longer waited for.",
            behind=tuple(beat.label() for beat in behind),
            wait_seconds=ACKNOWLEDGEMENT_POLL_SECONDS,
        )


# Any fixed 64-bit number no other application on the same PostgreSQL uses as an advisory
# key, and not startup_lock's: the first eight bytes of sha256(b"fedmock rollover").
ROLLOVER_LOCK_KEY = -0x132C61C2DFB3345F


def _one_step_at_a_time() -> None:
    """Hold the rollover lock until the step's transaction ends; call first in the step.

    Two steps at once (two `rotate_key`, a command and an admin's click, on one host or two)
    would each check the workers against the keys from before the other's change, and both
    go ahead: a retire of the key the other just activated leaves workers signing with a key
    nobody publishes. PostgreSQL: a transaction-scoped advisory lock, so the second step
    reads the keys only once the first has committed. SQLite's BEGIN IMMEDIATE (settings.py)
    already runs write transactions one at a time.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ROLLOVER_LOCK_KEY])


@transaction.atomic
def stage(
    valid_days: int = 3650,
    key_pem: bytes | None = None,
    cert_pem: bytes | None = None,
    use: str = SAML,
):
    """Publish a next key beside the active one; it does not sign yet."""
    _one_step_at_a_time()
    if SigningKey.objects.filter(state=State.NEXT, use=use).exists():
        flag = _use_flag(use)
        raise KeyLifecycleError(
            f"A next key is already staged. Activate it (`rotate_key activate{flag}`) or retire "
            f"it (`rotate_key retire FINGERPRINT{flag}`) first."
        )
    await_workers(use)
    if key_pem is not None:
        return store_key(key_pem, cert_pem, State.NEXT, use)
    return generate_key(State.NEXT, valid_days, use)


@transaction.atomic
def import_key(key_pem: bytes, cert_pem: bytes, use: str = SAML) -> SigningKey:
    """Bring an existing key (say, one IAM already trusts): active if there is none, else next."""
    _one_step_at_a_time()  # else two imports at once both find no active key
    material = _usable(key_pem, cert_pem)
    if signing_row(use) is None:
        _check_validity(material.fingerprint, material.not_valid_before, material.not_valid_after)
        return store_key(key_pem, cert_pem, State.ACTIVE, use)
    return stage(key_pem=key_pem, cert_pem=cert_pem, use=use)


def _check_validity(fingerprint: str, not_before, not_after, now=None) -> None:
    """A key may sign only within its certificate's validity."""
    now = now or timezone.now()
    if not_after <= now:
        raise KeyLifecycleError(
            f"Key {fingerprint} expired on {not_after:%Y-%m-%d}; AWS may refuse its "
            "signatures. Retire it and stage a new key."
        )
    if not_before > now:
        raise KeyLifecycleError(
            f"Key {fingerprint} is not valid before {not_before:%Y-%m-%d %H:%M}Z. Activate it then."
        )


def _get(fingerprint: str, state: str | None = None) -> SigningKey:
    keys = SigningKey.objects.filter(fingerprint__startswith=fingerprint)
    if state:
        keys = keys.filter(state=state)
    found = list(keys[:2])
    if len(found) != 1:
        what = "matches several keys" if found else "matches no key"
        raise KeyLifecycleError(
            f"{fingerprint!r} {what}{' in state ' + state if state else ''}; "
            "`rotate_key status` lists them."
        )
    return found[0]


@transaction.atomic
def activate(
    fingerprint: str = "", now: datetime.datetime | None = None, use: str = SAML
) -> SigningKey:
    """The next key starts signing; the old active key stays published until retired.

    `now` (default: the clock) is when the step happens; tests pass it instead of waiting.
    A fingerprint names the key, and so its use (the admin's actions pass only that);
    `use` picks the rollover when no fingerprint is given.
    """
    _one_step_at_a_time()
    key = (
        _get(fingerprint, State.NEXT)
        if fingerprint
        else (SigningKey.objects.filter(state=State.NEXT, use=use).first())
    )
    if key is None:
        raise KeyLifecycleError(
            f"There is no next key to activate. Run `rotate_key stage{_use_flag(use)}` first."
        )
    _check_validity(key.fingerprint, key.not_valid_before, key.not_valid_after, now)
    await_workers(key.use)  # every worker publishes the key before any signs with it
    return _change_state(key, State.ACTIVE, now)


@transaction.atomic
def retire(
    fingerprint: str = "", now: datetime.datetime | None = None, use: str = SAML
) -> SigningKey:
    """Stop publishing a key: by default the oldest active key that no longer signs.

    `now` (default: the clock) is when the step happens; tests pass it instead of waiting.
    A fingerprint names the key and its use; `use` picks the rollover otherwise.
    """
    _one_step_at_a_time()
    if fingerprint:
        key = _get(fingerprint)
        if key.state == State.RETIRED:
            raise KeyLifecycleError(f"Key {key.fingerprint} is already retired.")
        use = key.use
        signer = signing_row(use)
    else:
        signer = signing_row(use)
        key = (
            SigningKey.objects.filter(state=State.ACTIVE, use=use)
            .exclude(pk=signer.pk if signer else None)
            .order_by("state_changed_at")
            .first()
        )
        if key is None:
            raise KeyLifecycleError(
                f"There is no old key to retire: the only active key for {use} signs. Stage "
                f"and activate a new key first (`rotate_key stage{_use_flag(use)}`)."
            )
    if key.pk == getattr(signer, "pk", None):
        others = SigningKey.objects.filter(state=State.ACTIVE, use=use).exclude(pk=key.pk)
        if not others.exists():
            raise KeyLifecycleError(
                f"Key {key.fingerprint} is the only active key for {use}; retiring it would "
                f"{WITHOUT_A_KEY[use]}. Stage and activate a new key first "
                f"(`rotate_key stage{_use_flag(use)}`)."
            )
        raise KeyLifecycleError(
            f"Key {key.fingerprint} signs. Retire the old key instead, or stage and activate "
            "a new key first."
        )
    await_workers(use)  # no worker still signs with the key that stops being published
    return _change_state(key, State.RETIRED, now)


def wait_and_retry(
    step: Callable[[], SigningKey],
    *,
    sleep: Callable[[float], object] = time.sleep,
    on_wait: Callable[[KeyLifecycleError], object] = lambda error: None,
    patience: float,
) -> SigningKey:
    """Run a rollover step; while it waits for workers' acknowledgements, poll and rerun it.

    The command, the admin and the API share this, so none asks the operator to try again.
    `patience` bounds the total wait in seconds (0: never wait); past it the step's last
    KeyLifecycleError, which names the workers still behind, is raised as it is. `on_wait`
    hears each new set of laggards once, not every poll.
    """
    waited, reported = 0.0, None
    while True:
        try:
            return step()
        except KeyLifecycleError as error:
            pause = error.wait_seconds
            if not error.behind or waited + pause > patience:
                raise
            if error.behind != reported:
                on_wait(error)
                reported = error.behind
            sleep(pause)
            waited += pause


# --- the per-process cache ---------------------------------------------------------


@dataclass(frozen=True)
class KeyRing:
    """What one process knows: the signing key and every published key, parsed."""

    checked_at: float
    signer: signing.KeyMaterial | None
    published: tuple[signing.KeyMaterial, ...]


class _KeyCache:
    def __init__(self, use: str = SAML) -> None:
        self.use = use
        self._lock = threading.Lock()
        self._material: dict[str, signing.KeyMaterial] = {}
        self._ring: KeyRing | None = None
        self.watched = False

    def clear(self) -> None:
        with self._lock:
            self._material.clear()
            self._ring = None

    def ring(self) -> KeyRing:
        ring = self._ring
        if ring is not None and time.monotonic() - ring.checked_at < self._fresh_for():
            return ring
        return self.refresh()

    def _fresh_for(self) -> float:
        if not self.watched:
            return settings.IDP_KEY_REFRESH_SECONDS
        # The watcher refreshes twice a second. A rollover step stops waiting for a worker
        # silent for the live window: if its watcher died or hangs while it serves, its
        # requests reload the keys before then, never signing with a key retired meanwhile.
        return workers.live_window().total_seconds() / 2

    def refresh(self) -> KeyRing:
        try:
            return self._refresh()
        except Exception:
            # Forget the old ring, so that requests report the problem (503) rather
            # than keep signing with a key that may have been retired meanwhile.
            self._ring = None
            raise

    def _refresh(self) -> KeyRing:
        rows = state_rows(self.use)
        signer = key_set_of(rows).signer
        unparsed = [row[0] for row in rows if row[0] not in self._material]
        stored = {
            fingerprint: (token, cert_pem)
            for fingerprint, token, cert_pem in SigningKey.objects.filter(
                fingerprint__in=unparsed
            ).values_list("fingerprint", "private_key_encrypted", "certificate_pem")
        }
        with self._lock:
            for fingerprint in unparsed:
                if fingerprint in stored:  # else deleted meanwhile: the next refresh drops it
                    self._material[fingerprint] = key_material(fingerprint, *stored[fingerprint])
            rows = [row for row in rows if row[0] in self._material]
            if signer not in self._material:
                signer = None
            published = tuple(self._material[fingerprint] for fingerprint, _, _ in rows)
            ring = KeyRing(
                time.monotonic(),
                self._material[signer] if signer else None,
                published,
            )
            self._ring = ring
        return ring


# One cache per use: SAML metadata never lists a JWT key, nor the JWKS a SAML key.
_caches = {use: _KeyCache(use) for use in Use.values}
_cache = _caches[SAML]


def forget_cached_keys() -> None:
    for cache in _caches.values():
        cache.clear()


def refresh_keys() -> KeyRing:
    """Re-read every use's keys (the watcher's step); returns the SAML ring as before."""
    rings, failure = {}, None
    for use, cache in _caches.items():
        # Each use on its own: a JWT key that cannot be read must not freeze the SAML ring.
        try:
            rings[use] = cache.refresh()
        except Exception as error:
            failure = failure or error
    if failure is not None:
        raise failure
    return rings[SAML]


def loaded_key_sets() -> dict[str, workers.KeySet | None]:
    """What this process signs with and publishes, per use (None: nothing loaded), as its
    heartbeat reports it."""
    loaded = {}
    for use, cache in _caches.items():
        ring = cache._ring
        loaded[use] = (
            None
            if ring is None
            else workers.KeySet(
                ring.signer.fingerprint if ring.signer else None,
                tuple(material.fingerprint for material in ring.published),
            )
        )
    return loaded


def watched() -> None:
    """A watcher thread refreshes this process's keys; the request path need not."""
    for cache in _caches.values():
        cache.watched = True


def active_key(use: str = SAML) -> signing.KeyMaterial:
    signer = _caches[use].ring().signer
    if signer is None:
        raise SamlError(
            f"The IdP has no active {'JWT ' if use != SAML else ''}signing key",
            "Nothing can be signed until a key is active.",
            "Run `python manage.py ensure_signing_key` (make run does this).",
            status=503,
        )
    return signer


def published_keys(use: str = SAML) -> tuple[signing.KeyMaterial, ...]:
    """Every key of `use` that is not retired: the active ones and any next one, oldest first."""
    return _caches[use].ring().published
