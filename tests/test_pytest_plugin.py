"""The pytest plugin, used as an SP's test suite would use it: a throw-away project run by
pytester in a subprocess, against a live fedmock that the `fedmock` fixture starts."""

import subprocess
import sys
import textwrap

import pytest

pytest_plugins = ["pytester"]

AWS = "urn:amazon:webservices"
ADMIN = "arn:aws:iam::111122223333:role/Admin"

SP_SUITE = f"""
import base64

import pytest

from idp.pytest_plugin import FedmockError

AWS, ADMIN = {AWS!r}, {ADMIN!r}


def test_alice_gets_a_signed_response_for_aws(fedmock):
    minted = fedmock.mint("alice", AWS, role=ADMIN)

    xml = base64.b64decode(minted["saml_response"]).decode()
    assert minted["acs_url"] == "https://signin.aws.amazon.com/saml"
    assert ADMIN + ",arn:aws:iam::111122223333:saml-provider/fedmock" in xml
    assert fedmock.entity_id in xml and "SignatureValue" in xml
    assert [f for f in minted["findings"] if f["severity"] == "error"] == []
    assert fedmock.entity_id.encode() in fedmock.metadata
    assert fedmock.metadata_url.startswith(fedmock.base_url)


def test_a_refusal_carries_the_apis_message(fedmock):
    with pytest.raises(FedmockError) as refused:
        fedmock.mint("nobody-at-all", AWS)
    assert 400 <= refused.value.status < 500
    assert "nobody-at-all" in str(refused.value) and refused.value.title


def test_a_scenario_breaks_the_response(fedmock):
    minted = fedmock.mint("alice", AWS, role=ADMIN, scenario="expired")
    assert minted["scenario"] == "expired"
    assert [f for f in minted["findings"] if f["severity"] == "error"]


def test_reset_restores_the_fixture(fedmock):
    assert fedmock.api.delete("users/bob").status_code == 204
    with pytest.raises(FedmockError):
        fedmock.mint("bob", AWS)
    fedmock.reset()
    assert fedmock.mint("bob", AWS)["saml_response"]
"""


@pytest.fixture
def project(pytester, monkeypatch):
    """A project that is not fedmock: no Django settings of fedmock's in its environment."""
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    return pytester


def test_an_sp_suite_mints_and_resets_through_the_fixture(project):
    project.makepyfile(test_sp=SP_SUITE)

    result = project.runpytest_subprocess("-p", "no:cacheprovider", timeout=600)

    result.assert_outcomes(passed=4)


@pytest.mark.parametrize(
    ("fixture_file", "content", "says"),
    [
        ("missing.yaml", None, "does not exist"),
        ("broken.yaml", "users: [this is: not: yaml\n", "broken.yaml, line 1, column"),
    ],
)
def test_a_start_up_failure_is_one_clear_error(project, fixture_file, content, says):
    if content is not None:
        project.path.joinpath(fixture_file).write_text(content)
    project.makepyfile(
        test_sp="""
        def test_one(fedmock):
            raise AssertionError("never reached")

        def test_two(fedmock):
            raise AssertionError("never reached")
        """
    )

    result = project.runpytest_subprocess(
        "-p", "no:cacheprovider", "--fedmock-fixtures", fixture_file, timeout=600
    )

    result.assert_outcomes(errors=2)
    output = result.stdout.str()
    assert "fedmock did not start" in output and says in output and fixture_file in output
    assert "never reached" not in output and "During handling" not in output


def test_the_ini_names_the_fixture_file_relative_to_itself(project):
    project.mkdir("conf")
    project.path.joinpath("conf", "pytest.ini").write_text(
        "[pytest]\nfedmock_fixtures = nowhere/fixture.yaml\nfedmock_start_timeout = 30\n"
    )
    project.makepyfile(test_sp="def test_one(fedmock):\n    pass\n")

    result = project.runpytest_subprocess("-c", "conf/pytest.ini", "-p", "no:cacheprovider")

    result.assert_outcomes(errors=1)
    assert str(project.path / "conf" / "nowhere" / "fixture.yaml") in result.stdout.str()


def test_loading_the_plugin_imports_neither_django_nor_requests():
    probe = textwrap.dedent(
        """
        import sys
        import idp.pytest_plugin
        print(sorted(m for m in ("django", "requests", "idp.settings") if m in sys.modules))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
