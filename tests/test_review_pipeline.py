"""Review of issue 9 (pipeline): the mint is the browser's pipeline, replayed-id replays
what it says, the replay memory is bounded, and fixture errors are one line."""

import base64
import time

import pytest
from django.contrib.auth import get_user_model
from lxml import etree

from idp import faults, scenarios, sso
from idp.saml import aws
from idp.saml import constants as c
from idp.saml.errors import SamlError

pytestmark = pytest.mark.django_db

AWS = aws.AUDIENCE
ADMIN = "arn:aws:iam::111122223333:role/Admin"


def _ids(minted: sso.Minted) -> tuple[str, str]:
    root = etree.fromstring(base64.b64decode(minted.saml_response))
    return root.get("ID"), root.find(f"{{{c.SAML}}}Assertion").get("ID")


def test_an_oversized_response_is_blocked_for_the_mint_as_for_the_browser(demo, monkeypatch):
    """The AWS preset blocks what AWS would reject (R13, the size): the mint must not send
    what the browser flow refuses."""
    monkeypatch.setattr(aws, "MAX_ENCODED_RESPONSE", 1000)
    alice = get_user_model().objects.get(username="alice")
    auth = sso.Authentication(alice, "_session", time.time())
    with pytest.raises(SamlError) as browser:
        sso.idp_initiated(auth, AWS, ADMIN)
    with pytest.raises(SamlError) as mint:
        sso.mint("alice", AWS, role_arn=ADMIN)
    assert (mint.value.title, mint.value.status) == (browser.value.title, browser.value.status)
    # Named on purpose, a scenario is still returned with its findings (docs/scenarios.md).
    assert sso.mint("alice", AWS, role_arn=ADMIN, scenario="sha1").findings


def test_replayed_id_from_the_audit_replays_the_assertion_id_too(demo):
    """Another worker (nothing in its memory) must replay the Assertion ID, which is what
    an SP's replay cache keeps (profiles §4.1.4.5), not a fresh one."""
    faults._last_sent.clear()
    first = sso.mint("alice", AWS, role_arn=ADMIN)
    faults._last_sent.clear()
    replay = sso.mint("alice", AWS, role_arn=ADMIN, scenario="replayed-id")
    assert _ids(replay) == _ids(first)


def test_the_replay_memory_is_bounded(demo, monkeypatch):
    monkeypatch.setattr(faults, "LAST_SENT_MAX", 3)
    faults._last_sent.clear()
    for n in range(10):
        faults.remember_sent(f"urn:sp:{n}", scenarios.Earlier(f"_r{n}", f"_a{n}"))
    assert list(faults._last_sent) == ["urn:sp:7", "urn:sp:8", "urn:sp:9"]
    faults.remember_sent("urn:sp:7", scenarios.Earlier("_again", "_again2"))
    assert list(faults._last_sent) == ["urn:sp:8", "urn:sp:9", "urn:sp:7"]


def test_the_replay_memory_starts_empty_in_every_test_a(demo):
    sso.mint("alice", AWS, role_arn=ADMIN)
    assert faults._last_sent


def test_the_replay_memory_starts_empty_in_every_test_b(demo):
    """conftest forgets it, as it forgets the caches: a response of an earlier test (whose
    database is gone) is not replayed here."""
    assert faults._last_sent == {}


# --- the pytest plugin ------------------------------------------------------------------


@pytest.mark.parametrize("failure", ["read-timeout", "interrupt"])
def test_the_plugin_leaves_no_server_behind_when_start_up_fails(tmp_path, monkeypatch, failure):
    """A worker that accepts but answers late (ReadTimeout) is still booting: the plugin
    waits for it until the start-up timeout; an interrupt stops the server it started."""
    import subprocess
    import sys

    import requests

    from idp import pytest_plugin

    fixture = tmp_path / "f.yaml"
    fixture.write_text("users: []\n")
    server = pytest_plugin.Server(tmp_path, fixture, start_timeout=3)
    monkeypatch.setattr(server, "_manage", lambda deadline, *args: "token")
    started = []
    real_popen = subprocess.Popen

    def stand_in(args, **kwargs):  # a process that would run forever, in gunicorn's place
        started.append(real_popen([sys.executable, "-c", "import time; time.sleep(120)"]))
        return started[-1]

    calls = []

    def get(url, timeout):
        calls.append(timeout)
        assert timeout <= 3  # never beyond the start-up timeout
        if failure == "interrupt":
            raise KeyboardInterrupt
        raise requests.ReadTimeout("booting")

    monkeypatch.setattr(pytest_plugin.subprocess, "Popen", stand_in)
    monkeypatch.setattr(requests, "get", get)
    expected = KeyboardInterrupt if failure == "interrupt" else pytest_plugin.FedmockStartError
    with pytest.raises(expected):
        server.start()
    assert len(started) == 1 and started[0].poll() is not None
    assert len(calls) == 1 if failure == "interrupt" else len(calls) > 1


# --- fixtures ---------------------------------------------------------------------------

NUL = '"a\\0b"'  # YAML's escape: the file holds no NUL byte, the loaded text does


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("users: [{username: u, first_name: NUL}]", "users[0] (u), first_name"),
        ("users: [{username: u, password: NUL}]", "users[0] (u), password"),
        (
            "claim_rules: [{order: 1, attribute_name: x, source: literal, value: v, "
            "description: NUL}]",
            "claim_rules[0], description",
        ),
        ("users: [\x00]", "not valid YAML"),
        ("users: [{username: u\n  bad: [", "line "),
    ],
)
def test_a_broken_fixture_is_one_line_naming_where(db, tmp_path, text, where):
    from django.core.management import CommandError, call_command

    from users.models import User

    path = tmp_path / "broken.yaml"
    path.write_text(text.replace("NUL", NUL))
    with pytest.raises(CommandError) as refusal:
        call_command("load_fixtures", str(path))
    message = str(refusal.value)
    assert "\n" not in message and str(path) in message and where in message, message
    assert not User.objects.exists()


@pytest.mark.parametrize(
    ("now", "scenario"),
    [
        ("0001-01-01T00:00:00", None),
        ("0001-01-02T00:00:00", "clock-skew:-31622400"),
        ("9999-12-31T23:59:59", "clock-skew:31622400"),
        ("9999-12-31T23:59:59+00:00", None),
        ("1969-12-31T23:59:59+00:00", "expired"),
    ],
)
def test_a_mint_as_of_an_instant_out_of_range_is_a_400_not_a_traceback(demo, now, scenario):
    import datetime

    with pytest.raises(SamlError) as refusal:
        sso.mint(
            "alice",
            AWS,
            role_arn=ADMIN,
            scenario=scenario,
            now=datetime.datetime.fromisoformat(now),
        )
    assert refusal.value.status == 400 and "out of range" in refusal.value.title


def test_a_mint_at_the_edges_of_the_range_is_made(demo):
    for now in (sso.EARLIEST_NOW, sso.LATEST_NOW):
        for scenario in (None, "clock-skew:-31622400", "clock-skew:31622400", "expired"):
            assert sso.mint("alice", AWS, role_arn=ADMIN, scenario=scenario, now=now)
