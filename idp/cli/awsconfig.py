"""Write one profile into ~/.aws/config and leave every other byte as it was.

configparser would rewrite the whole file: comments gone, keys re-spelled, sub-sections
(`s3 =` blocks) re-indented. So the file is edited as text: the lines of our own section
are replaced (or a section appended), the rest is copied through untouched, and the new
file replaces the old in one rename.
"""

import os
import re
import tempfile
from pathlib import Path

from .errors import CliError

# A section header as the AWS CLI's ini parser reads one: `[profile NAME]` or `[default]`,
# spaces allowed inside the brackets.
_HEADER = re.compile(rb"^\s*\[\s*(?P<name>[^\]]*?)\s*\]")


def config_path(environ) -> Path:
    configured = environ.get("AWS_CONFIG_FILE")
    if configured:
        return Path(os.path.expanduser(configured))
    return Path(environ.get("HOME") or os.path.expanduser("~")) / ".aws" / "config"


def _section_names(name: str) -> set[bytes]:
    # The CLI accepts both spellings of the default profile.
    if name == "default":
        return {b"default", b"profile default"}
    return {b"profile " + name.encode()}


def _header_name(line: bytes) -> bytes | None:
    match = _HEADER.match(line)
    if not match:
        return None
    # "profile   NAME" is the same section to the CLI as "profile NAME".
    return b" ".join(match.group("name").split())


def render_section(name: str, settings: list[tuple[str, str]], newline: bytes) -> bytes:
    for key, value in settings:
        # A line break in a value (an --idp or --user with one) would end our section and
        # start lines of the user's own: refused, the file untouched.
        if any(ord(char) < 0x20 or char == "\x7f" for char in key + value):
            raise CliError(
                "usage",
                f"the {key} setting {value[:80]!r} holds a control character (a line break?)",
                "pass --idp, --user and the role without line breaks",
                status=2,
            )
    header = "[default]" if name == "default" else f"[profile {name}]"
    lines = [header] + [f"{key} = {value}" for key, value in settings]
    return newline.join(line.encode() for line in lines) + newline


def with_profile(original: bytes, name: str, settings: list[tuple[str, str]]) -> tuple[bytes, bool]:
    """The file's bytes with [profile NAME] replaced by these settings (True), or appended."""
    newline = b"\r\n" if b"\r\n" in original else b"\n"
    section = render_section(name, settings, newline)
    lines = original.splitlines(keepends=True)
    wanted = _section_names(name)
    start = next((i for i, line in enumerate(lines) if _header_name(line) in wanted), None)
    if start is None:
        if not original.strip():
            return original + section, False
        ending = b"" if original.endswith((b"\n", b"\r")) else newline
        return original + ending + newline + section, False
    end = next(
        (i for i in range(start + 1, len(lines)) if _header_name(lines[i]) is not None),
        len(lines),
    )
    # Blank lines (and comments) just before the next section belong to that section's
    # look, not to ours: keep them where they were.
    kept_tail = end
    while kept_tail > start + 1 and (
        not lines[kept_tail - 1].strip() or lines[kept_tail - 1].lstrip().startswith((b"#", b";"))
    ):
        kept_tail -= 1
    return b"".join(lines[:start]) + section + b"".join(lines[kept_tail:]), True


def write_profile(path: Path, name: str, settings: list[tuple[str, str]]) -> bool:
    """Write the profile; True if it replaced an existing one.

    A symlinked config (dotfile managers keep ~/.aws/config in a repository) is written
    through: the rename replaces the file it points to, not the link."""
    path = Path(os.path.realpath(path))
    try:
        original = path.read_bytes()
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        original, mode = b"", 0o600
    except OSError as error:
        raise CliError("Cannot read the AWS config", f"{path}: {error.strerror}", "") from error
    updated, replaced = with_profile(original, name, settings)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".config-")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(updated)
            os.chmod(temporary, mode)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as error:
        raise CliError(
            "Cannot write the AWS config",
            f"{path}: {error.strerror}",
            "check the permissions, or set AWS_CONFIG_FILE to a file you can write",
        ) from error
    return replaced
