"""The key store in certs/ and the signing-key lifecycle.

Key material lives in files named by fingerprint; each key's state lives in
the database. A process parses each key once and re-reads the states at most
once per IDP_KEY_REFRESH_SECONDS, so every worker follows a rotation quickly
without parsing keys on the request path.
"""

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction

from .models import SigningKey
from .saml import signing
from .saml.errors import SamlError


def certs_dir() -> Path:
    return Path(settings.IDP_CERTS_DIR)


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
    directory = certs_dir()
    return directory / f"{fingerprint}.key", directory / f"{fingerprint}.crt"


def store_key(key_pem: bytes, cert_pem: bytes, state: str) -> SigningKey:
    material = signing.load_key(key_pem, cert_pem)
    certs_dir().mkdir(parents=True, exist_ok=True)
    key_path, cert_path = key_paths(material.fingerprint)
    _write_atomically(key_path, key_pem, 0o600)
    _write_atomically(cert_path, cert_pem, 0o644)
    return SigningKey.objects.create(
        fingerprint=material.fingerprint,
        state=state,
        not_valid_before=material.not_valid_before,
        not_valid_after=material.not_valid_after,
    )


def generate_key(state: str) -> SigningKey:
    key_pem, cert_pem = signing.generate_self_signed(f"fedmock {settings.IDP_BASE_URL}")
    return store_key(key_pem, cert_pem, state)


def ensure_active_key() -> tuple[SigningKey, bool]:
    """The active key, created on first start; the flag says whether it is new."""
    with transaction.atomic():
        active = SigningKey.objects.filter(state=SigningKey.State.ACTIVE).first()
        if active is not None:
            return active, False
        return generate_key(SigningKey.State.ACTIVE), True


@dataclass(frozen=True)
class _KeyState:
    checked_at: float
    active: str | None
    published: tuple[str, ...]


class _KeyCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._material: dict[str, signing.KeyMaterial] = {}
        self._state = _KeyState(float("-inf"), None, ())

    def clear(self) -> None:
        with self._lock:
            self._material.clear()
            self._state = _KeyState(float("-inf"), None, ())

    def state(self) -> _KeyState:
        state = self._state
        if time.monotonic() - state.checked_at < settings.IDP_KEY_REFRESH_SECONDS:
            return state
        rows = list(
            SigningKey.objects.exclude(state=SigningKey.State.RETIRED)
            .order_by("created_at")
            .values_list("fingerprint", "state")
        )
        active = next((fp for fp, key_state in rows if key_state == SigningKey.State.ACTIVE), None)
        self._state = _KeyState(time.monotonic(), active, tuple(fp for fp, _ in rows))
        return self._state

    def material(self, fingerprint: str) -> signing.KeyMaterial:
        material = self._material.get(fingerprint)
        if material is None:
            with self._lock:
                material = self._material.get(fingerprint) or self._load(fingerprint)
                self._material[fingerprint] = material
        return material

    @staticmethod
    def _load(fingerprint: str) -> signing.KeyMaterial:
        key_path, cert_path = key_paths(fingerprint)
        try:
            return signing.load_key(key_path.read_bytes(), cert_path.read_bytes())
        except FileNotFoundError as error:
            raise SamlError(
                "The signing key file is missing",
                f"{error.filename} does not exist, but the database lists key {fingerprint}.",
                "Restore the file into IDP_CERTS_DIR, or run "
                "`python manage.py ensure_signing_key` after retiring the lost key.",
                status=503,
            ) from error


_cache = _KeyCache()
forget_cached_keys = _cache.clear


def active_key() -> signing.KeyMaterial:
    fingerprint = _cache.state().active
    if fingerprint is None:
        raise SamlError(
            "The IdP has no active signing key",
            "Nothing can be signed until a key is active.",
            "Run `python manage.py ensure_signing_key` (make run does this).",
            status=503,
        )
    return _cache.material(fingerprint)


def published_certificates() -> list[str]:
    """PEM certificates of every key that is not retired: the active one and any next one."""
    return [_cache.material(fp).cert_pem for fp in _cache.state().published]
