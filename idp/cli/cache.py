"""Credentials cached until shortly before they expire.

`credential_process` runs before every AWS CLI call; without a cache each call would sign
in and call STS again. One file per (IdP, user, role, STS endpoint, duration) under
$XDG_CACHE_HOME/fedmock (~/.cache/fedmock), the directory 0700 and each file 0600, as
the AWS CLI keeps its own cache. A file that cannot be trusted or read is treated as
absent and replaced, never repaired.
"""

import hashlib
import json
import os
import stat
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from .errors import CliError

# The AWS CLI refreshes credential_process credentials itself only when they have expired
# (or within its own short window); handing back ones with minutes left would let a long
# command start with credentials that die under it.
REFRESH_MARGIN = timedelta(minutes=5)
FIELDS = ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration")


def directory(environ) -> Path:
    base = environ.get("XDG_CACHE_HOME", "")
    # The XDG spec: a relative path is invalid and must be ignored.
    home = environ.get("HOME") or os.path.expanduser("~")
    root = Path(base) if os.path.isabs(base) else Path(home) / ".cache"
    return root / "fedmock"


def key(**parts: object) -> str:
    """A file name for these parts: each is a separate field, so no two requests collide."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def parse_expiration(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("Expiration is not a string")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("Expiration has no time zone")
    return moment


def _trusted(path: Path) -> bool:
    """Ours alone: a regular file owned by us that nobody else can read or write."""
    try:
        info = path.lstat()
    except OSError:
        return False
    return (
        stat.S_ISREG(info.st_mode)
        and info.st_uid == os.getuid()
        and not info.st_mode & (stat.S_IRWXG | stat.S_IRWXO)
    )


def load(path: Path, now: datetime) -> dict | None:
    """The cached credentials if they live beyond now + REFRESH_MARGIN; otherwise None."""
    if not _trusted(path):
        return None
    try:
        credentials = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(credentials, dict) or not all(
            isinstance(credentials.get(field), str) and credentials[field] for field in FIELDS
        ):
            return None
        expiration = parse_expiration(credentials["Expiration"])
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return credentials if expiration - now > REFRESH_MARGIN else None


def _private_directory(path: Path) -> None:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            raise CliError(
                "Unsafe cache directory",
                f"{path} is not a directory of this user's",
                "remove it, or point XDG_CACHE_HOME at a directory of your own",
            )
        if info.st_mode & 0o777 != 0o700:
            path.chmod(0o700)
    except OSError as error:
        raise CliError(
            "Cache not writable", f"{path}: {error.strerror}", "check the directory"
        ) from error


def store(path: Path, credentials: dict) -> None:
    """Write atomically (a reader sees the old file or the new, never half of one), 0600."""
    _private_directory(path.parent)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")  # 0600
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump({field: credentials[field] for field in FIELDS}, handle)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
