"""fedmock's own settings: each one's default, environment variable and meaning, in one place.

As django-oauth-toolkit's `oauth2_settings` does, `idp_settings.NAME` reads
django.conf.settings on every access, falling back to the default here, so
that `override_settings` and pytest's `settings` fixture reach every caller.
settings.py fills these names from the environment (`from_environment`), so
`django.conf.settings.NAME` works too. A new setting is one line in SETTINGS.
"""

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

PROJECT_DIR = Path(__file__).resolve().parent.parent


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise ValueError("must be a whole number of at least 1")
    return int(text)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise ValueError("must be a number above 0")
    return value


LOGIN_MODES = ("password", "picker")


def _login_mode(text: str) -> str:
    if text not in LOGIN_MODES:
        raise ValueError("must be password or picker")
    return text


MAX_CLOCK_OFFSET = 10 * 366 * 86400  # ten years either way: far enough for any test


def _seconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = MAX_CLOCK_OFFSET + 1
    if abs(value) > MAX_CLOCK_OFFSET:
        raise ValueError(
            f"must be a whole number of seconds within ±{MAX_CLOCK_OFFSET}, negative for the past"
        )
    return value


def _base_url(text: str) -> str:
    if urlsplit(text).scheme not in ("http", "https") or not urlsplit(text).hostname:
        raise ValueError("must be an http:// or https:// URL with a host name")
    return text.rstrip("/")


def _url(text: str) -> str:
    if urlsplit(text).scheme not in ("http", "https") or not urlsplit(text).hostname:
        raise ValueError("must be an http:// or https:// URL with a host name")
    return text


def _endpoint(text: str) -> str:
    return text if text in ("local", "aws") else _url(text)


@dataclass(frozen=True)
class Setting:
    default: Any
    help: str
    parse: Callable[[str], Any] = str  # turns the environment variable's text into the value


SETTINGS: dict[str, Setting] = {
    "IDP_BASE_URL": Setting("http://127.0.0.1:8000", "public URL of the IdP", _base_url),
    "IDP_ENTITY_ID": Setting("", "entity ID and Issuer; empty: {IDP_BASE_URL}/saml/metadata/"),
    "IDP_CERTS_DIR": Setting(
        PROJECT_DIR / "certs",
        "signing-key files: what export_key writes and keys from before the database held them",
        Path,
    ),
    "IDP_KEY_REFRESH_SECONDS": Setting(
        1.0,
        "how often a process without a watcher thread re-reads keys and caches (a gunicorn "
        "worker's watcher does it twice as often)",
        _positive_float,
    ),
    "IDP_HEARTBEAT_SECONDS": Setting(
        2.0,
        "how often each gunicorn worker reports its loaded keys when nothing changed; a "
        "rollover step stops waiting for a worker silent for five times this (or for five "
        "watcher rounds of IDP_KEY_REFRESH_SECONDS / 2, if longer)",
        _positive_float,
    ),
    # Short, since keys rotate: an SP that caches the metadata longer misses the next key.
    "IDP_METADATA_CACHE_DURATION": Setting("PT1H", "the metadata's cacheDuration (xs:duration)"),
    # Federation filters refuse a validUntil years out; the key's expiry still caps it.
    "IDP_METADATA_VALID_DAYS": Setting(
        7,
        "days from now until the metadata's validUntil (capped by the keys' expiry)",
        _positive_int,
    ),
    "IDP_KEY_EXPIRY_WARNING_DAYS": Setting(
        30,
        "days before expiry at which `manage.py check` warns about the active key",
        _positive_int,
    ),
    "IDP_AUDIT_RETENTION_DAYS": Setting(
        90, "days of audit events that `manage.py prune_audit` keeps", _positive_int
    ),
    # A test clock: responses, the checker and the audit all read idp.clock.now().
    "IDP_CLOCK_OFFSET": Setting(
        0, "seconds added to the system clock for everything the IdP stamps or judges", _seconds
    ),
    # picker: anyone can sign in as any non-staff user by clicking a name; for test rigs only.
    "IDP_LOGIN_MODE": Setting(
        "password", "password, or picker: a list of users to click, no password", _login_mode
    ),
    # The custom identity broker (idp/broker/): where it calls AssumeRole and exchanges the
    # credentials for a console sign-in token. "local" is fedmock's own /aws/ and
    # /aws/federation (under IDP_BASE_URL), "aws" is AWS's (STS as boto3 resolves it, so
    # AWS_ENDPOINT_URL_STS and the profile's config apply), or give a URL.
    "IDP_BROKER_STS_ENDPOINT": Setting(
        "local", "local, aws, or the STS URL the broker calls AssumeRole at", _endpoint
    ),
    "IDP_BROKER_FEDERATION_URL": Setting(
        "local", "local, aws, or the federation endpoint URL for console sign-in", _endpoint
    ),
    "IDP_BROKER_DESTINATION": Setting(
        "https://console.aws.amazon.com/", "the console page the broker's sign-in URL opens", _url
    ),
}


def from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """Every setting, from its environment variable where one is set; for settings.py."""
    values = {}
    for name, setting in SETTINGS.items():
        text = environ.get(name, "").strip()
        if not text:
            values[name] = setting.default
            continue
        try:
            values[name] = setting.parse(text)
        except ValueError as error:
            raise ImproperlyConfigured(f"{name}={text!r}: {error} ({setting.help}).") from None
    return values


def cookies_secure(base_url: str) -> bool:
    """Session and CSRF cookies travel only over HTTPS once the IdP is announced on HTTPS."""
    return urlsplit(base_url).scheme == "https"


def keep_private(database: Path) -> None:
    """Create the SQLite file, and keep it and its WAL files, readable by the owner only.

    It holds password hashes. SQLite creates the -wal and -shm files with the database
    file's mode, so a file that is 0600 before the first connection keeps them private.
    """
    if str(database) == ":memory:" or str(database).startswith("file:"):
        return
    try:
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except FileNotFoundError:  # no such folder: SQLite will say so on connecting
        return
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        try:
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)
        except FileNotFoundError:
            pass


class IdpSettings:
    """Reads each setting when asked, so that overrides made after start-up are seen."""

    def __getattr__(self, name: str) -> Any:
        try:
            setting = SETTINGS[name]
        except KeyError:
            raise AttributeError(f"{name} is not a fedmock setting (idp/conf.py)") from None
        return getattr(django_settings, name, setting.default)

    def __dir__(self):
        return list(SETTINGS)


idp_settings = IdpSettings()
