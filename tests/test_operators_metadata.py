"""Metadata for operators: one-line errors, the identity said aloud, HEAD and a file name.

Issue 8, item 15 (the checker page's part is elsewhere).
"""

import io

import pytest
from django.core.management import CommandError, call_command


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    "target",
    ["/nonexistent/dir/x.xml", "{tmp}", "{tmp}/file.xml/below"],
    ids=["missing directory", "a directory", "below a file"],
)
def test_export_to_an_unwritable_path_is_one_line(signing_key, tmp_path, target):
    """A CommandError: manage.py prints it as one line, where an OSError was a traceback."""
    (tmp_path / "file.xml").write_text("")
    path = target.format(tmp=tmp_path)
    with pytest.raises(CommandError, match=f"^Cannot write {path}: [^\n]+$"):
        run("export_metadata", "-o", path)


@pytest.mark.parametrize(
    ("environment", "says"),
    [
        ({}, "IDP_BASE_URL is not set"),
        ({"IDP_BASE_URL": "https://idp.example"}, "from IDP_BASE_URL"),
    ],
)
def test_export_says_which_identity_it_used(signing_key, monkeypatch, environment, says):
    monkeypatch.delenv("IDP_BASE_URL", raising=False)
    monkeypatch.delenv("IDP_ENTITY_ID", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    out, err = run("export_metadata")
    assert "Entity ID http://127.0.0.1:8000/saml/metadata/" in err
    assert says in err
    assert "Entity ID" not in out  # standard output stays the XML alone


def test_sync_dry_run_says_which_identity_it_used(signing_key, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("IDP_BASE_URL", raising=False)
    _, err = run("sync_iam_provider", "--name", "fedmock", "--dry-run")
    assert "Entity ID http://127.0.0.1:8000/saml/metadata/" in err
    assert "IDP_BASE_URL is not set" in err


def test_head_answers_like_get_without_a_body(client, signing_key):
    get = client.get("/saml/metadata/")
    head = client.head("/saml/metadata/")
    assert head.status_code == 200
    assert head.content == b""
    assert head["Content-Type"] == get["Content-Type"]
    assert int(head["Content-Length"]) == len(get.content) > 0


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_other_methods_are_still_refused(client, signing_key, method):
    assert getattr(client, method)("/saml/metadata/").status_code == 405


def test_download_names_the_file(client, signing_key):
    plain = client.get("/saml/metadata/")
    download = client.get("/saml/metadata/", {"download": "1"})
    assert "Content-Disposition" not in plain
    assert download["Content-Disposition"] == 'attachment; filename="fedmock-metadata.xml"'
    assert download.content == plain.content


def test_the_portal_link_downloads_a_named_file(client, demo):
    client.login(username="alice", password="alice")
    page = client.get("/").content.decode()
    assert 'href="/saml/metadata/?download=1" download="fedmock-metadata.xml"' in page
