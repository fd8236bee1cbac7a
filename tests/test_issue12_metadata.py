"""Issue 12 item 5: the metadata's validUntil is a short window (IDP_METADATA_VALID_DAYS)."""

import datetime

import pytest
from lxml import etree

from idp import identity, keys
from idp.conf import SETTINGS
from idp.saml import constants as c

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=datetime.UTC)
MIDNIGHT = datetime.datetime(2026, 3, 2, tzinfo=datetime.UTC)
SECOND = datetime.timedelta(seconds=1)


@pytest.fixture
def frozen(monkeypatch, signing_key):
    """One instant for the metadata, whatever the wall clock does."""
    monkeypatch.setattr(identity.clock, "now", lambda: NOW)
    return NOW


def root():
    return etree.fromstring(identity.metadata_xml())


def valid_until() -> datetime.datetime:
    return datetime.datetime.strptime(root().get("validUntil"), "%Y-%m-%dT%H:%M:%S%z")


def test_the_default_is_seven_days():
    assert SETTINGS["IDP_METADATA_VALID_DAYS"].default == 7


@pytest.mark.parametrize(
    ("days", "now", "expected"),
    [
        # the setting in days from now, rounded up to midnight UTC
        (7, NOW, datetime.datetime(2026, 3, 9, tzinfo=datetime.UTC)),
        (1, NOW, datetime.datetime(2026, 3, 3, tzinfo=datetime.UTC)),
        (30, NOW, datetime.datetime(2026, 4, 1, tzinfo=datetime.UTC)),
        (7, MIDNIGHT, MIDNIGHT + datetime.timedelta(days=7)),  # already on midnight
        (7, MIDNIGHT - SECOND, MIDNIGHT + datetime.timedelta(days=7)),
        (7, MIDNIGHT + SECOND, MIDNIGHT + datetime.timedelta(days=8)),
    ],
)
def test_valid_until_is_the_setting_in_days_from_now(
    monkeypatch, signing_key, settings, days, now, expected
):
    monkeypatch.setattr(identity.clock, "now", lambda: now)
    settings.IDP_METADATA_VALID_DAYS = days
    assert valid_until() == expected
    assert expected - now >= datetime.timedelta(days=days)


def test_the_document_is_the_same_all_day(monkeypatch, signing_key):
    """IAM stores the metadata (the local STS compares its snapshot): seconds apart, equal."""
    documents = set()
    for instant in (NOW, NOW + datetime.timedelta(hours=11, minutes=59)):
        monkeypatch.setattr(identity.clock, "now", lambda instant=instant: instant)
        documents.add(identity.metadata_xml())
    assert len(documents) == 1


def test_the_keys_expiry_still_caps_it(frozen, settings):
    settings.IDP_METADATA_VALID_DAYS = 365 * 100
    expiry = min(key.not_valid_after for key in keys.published_keys())
    assert valid_until() == expiry.replace(microsecond=0)


def test_cache_duration_is_kept(frozen, settings):
    settings.IDP_METADATA_CACHE_DURATION = "PT2H"
    assert root().get("cacheDuration") == "PT2H"
    assert root().tag == f"{{{c.MD}}}EntityDescriptor"


@pytest.mark.parametrize(("text", "ok"), [("7", True), ("0", False), ("-1", False), ("x", False)])
def test_the_setting_takes_whole_days_of_at_least_one(text, ok):
    parse = SETTINGS["IDP_METADATA_VALID_DAYS"].parse
    if ok:
        assert parse(text) == 7
    else:
        with pytest.raises(ValueError):
            parse(text)
