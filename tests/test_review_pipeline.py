"""Review of issue 9 (pipeline): the mint is the browser's pipeline, replayed-id replays
what it says, the replay memory is bounded, and fixture errors are one line."""

import base64
import time

import pytest
from django.contrib.auth import get_user_model
from lxml import etree

from idp import scenarios, sso
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
    sso._last_sent.clear()
    first = sso.mint("alice", AWS, role_arn=ADMIN)
    sso._last_sent.clear()
    replay = sso.mint("alice", AWS, role_arn=ADMIN, scenario="replayed-id")
    assert _ids(replay) == _ids(first)


def test_the_replay_memory_is_bounded(demo, monkeypatch):
    monkeypatch.setattr(sso, "LAST_SENT_MAX", 3)
    sso._last_sent.clear()
    for n in range(10):
        sso._remember(f"urn:sp:{n}", scenarios.Earlier(f"_r{n}", f"_a{n}"))
    assert list(sso._last_sent) == ["urn:sp:7", "urn:sp:8", "urn:sp:9"]
    sso._remember("urn:sp:7", scenarios.Earlier("_again", "_again2"))
    assert list(sso._last_sent) == ["urn:sp:8", "urn:sp:9", "urn:sp:7"]


def test_the_replay_memory_starts_empty_in_every_test_a(demo):
    sso.mint("alice", AWS, role_arn=ADMIN)
    assert sso._last_sent


def test_the_replay_memory_starts_empty_in_every_test_b(demo):
    """conftest forgets it, as it forgets the caches: a response of an earlier test (whose
    database is gone) is not replayed here."""
    assert sso._last_sent == {}
