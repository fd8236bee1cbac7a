"""A mint or a preview sees a change another worker has just saved (the API's read-your-writes).

Each gunicorn worker caches the rules and the directory and learns of another worker's change
from the watcher within half a second. An API client that saves a rule through one worker
and previews through the next must not get the old rule: 14 of 40 such previews did when the
README's commands were run against `make run`. Here the other worker is simulated: the rows
change without this process's signals, and only the database's generation moves.
"""

import datetime

import pytest
from django.db.models import F

from idp import cache, keys, sso
from idp.models import ClaimRule, ConfigGeneration, ServiceProvider, SigningKey
from idp.oidc.models import Client
from idp.oidc.preview import id_token_preview
from users.models import User

NOW = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


@pytest.fixture
def watched_elsewhere(monkeypatch, settings):
    # As under gunicorn: the watcher thread polls, the request path does not.
    settings.IDP_KEY_REFRESH_SECONDS = 3600
    monkeypatch.setattr(cache._cache, "watched", True)


def another_worker_saves(rule: ClaimRule, **fields) -> None:
    ClaimRule.objects.filter(pk=rule.pk).update(**fields)  # no signal reaches this process
    ConfigGeneration.objects.filter(pk=1).update(value=F("value") + 1)


def test_a_mint_sees_a_rule_changed_by_another_worker(demo, signing_key, watched_elsewhere):
    sp = ServiceProvider.objects.get(entity_id="urn:amazon:webservices")
    rule = ClaimRule.objects.create(
        service_provider=sp,
        order=999,
        source="literal",
        value="before",
        attribute_name="urn:fedmock:test:marker",
    )
    ConfigGeneration.objects.get_or_create(pk=1, defaults={"value": 1})
    cache.refresh()
    assert ">before<" in sso.mint("alice", sp.entity_id, now=NOW).xml
    another_worker_saves(rule, value="after")
    assert ">after<" in sso.mint("alice", sp.entity_id, now=NOW).xml


def test_an_id_token_preview_sees_a_rule_changed_by_another_worker(
    demo, signing_key, watched_elsewhere
):
    keys.ensure_active_key(SigningKey.Use.JWT)
    client = Client.objects.create(
        name="App", client_id="app", client_type="public", redirect_uris="http://127.0.0.1/cb"
    )
    rule = ClaimRule.objects.create(
        emits="jwt",
        oidc_client=client,
        source="literal",
        value="before",
        attribute_name="marker",
        claim_type="string",
    )
    ConfigGeneration.objects.get_or_create(pk=1, defaults={"value": 1})
    cache.refresh()
    alice = User.objects.get(username="alice")
    assert id_token_preview(alice, client, NOW).claims["marker"] == "before"
    another_worker_saves(rule, value="after")
    assert id_token_preview(alice, client, NOW).claims["marker"] == "after"
