"""The rules every page cites are in the repository and stay true (issue 8, item 13)."""

import re
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
DOC = ROOT / "docs" / "aws-saml-rules.md"
# The source the copy follows: ../shared/ beside the checkout, where it exists.
SOURCE = ROOT.parent / "shared" / "AWS-SAML-RULES.md"
RULE_ID = re.compile(r"\bR(\d{1,3})\b")
DEFINITION = re.compile(r"^\| R(\d+) \|", re.MULTILINE)


def citing_files() -> list[Path]:
    """What users read: code (error pages, help texts, findings, command output), templates."""
    files = [ROOT / "README.md"]
    for directory, pattern in (("idp", "*.py"), ("users", "*.py"), ("templates", "*.html")):
        files += [
            path for path in (ROOT / directory).rglob(pattern) if "migrations" not in path.parts
        ]
    return files


def test_the_doc_defines_every_rule_the_code_cites():
    defined = {int(number) for number in DEFINITION.findall(DOC.read_text())}
    cited = {
        (path.relative_to(ROOT).as_posix(), int(number))
        for path in citing_files()
        for number in RULE_ID.findall(path.read_text())
    }
    assert cited, "the pattern finds no citation at all"
    assert not {(path, number) for path, number in cited if number not in defined}
    assert defined == set(range(1, 22))


def test_nothing_cites_the_old_name():
    stale = [
        path.relative_to(ROOT).as_posix()
        for path in citing_files()
        if "AWS-SAML-RULES" in path.read_text()
    ]
    assert not stale


def test_the_readme_links_the_doc():
    assert "](docs/aws-saml-rules.md)" in (ROOT / "README.md").read_text()


@pytest.mark.skipif(not SOURCE.exists(), reason=f"no source at {SOURCE}")
def test_the_doc_equals_its_source():
    assert DOC.read_text() == SOURCE.read_text(), f"copy {SOURCE} to {DOC}"
