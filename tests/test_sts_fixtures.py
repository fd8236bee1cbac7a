"""The `iam:` section of fixtures: checked before writing, applied, reset, dumped."""

import datetime
import io
import json

import pytest
from django.core.management import call_command

from idp import fixtures, identity, keys
from idp.sts import state
from idp.sts.models import Role, SamlProvider

from .sts_support import stored_copy

PROVIDER = "arn:aws:iam::111122223333:saml-provider/fedmock"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Federated": PROVIDER},
            "Action": "sts:AssumeRoleWithSAML",
        }
    ],
}


def iam_fixture(**iam) -> dict:
    return {"iam": iam}


@pytest.mark.django_db
def test_make_run_order_seed_before_the_first_key_snapshots_at_first_use():
    """`make run` seeds the demo, then ensure_signing_key: the snapshot waits for the key."""
    call_command("seed_demo", stdout=io.StringIO())
    assert SamlProvider.objects.get(account_id="111122223333").metadata == ""
    assert Role.objects.filter(name__in=["Admin", "ReadOnly", "Developer"]).count() == 3
    keys.ensure_active_key()
    keys.forget_cached_keys()  # as the key watcher does in each worker
    assert stored_copy(PROVIDER) == state.undated(identity.metadata_xml().decode())
    assert SamlProvider.objects.get(account_id="111122223333").metadata  # stored once


@pytest.mark.django_db
def test_seed_demo_keeps_a_provider_and_reset_restores_it(signing_key):
    call_command("seed_demo", stdout=io.StringIO())
    state.update_trust_policy("111122223333", "Admin", json.dumps(TRUST))
    call_command("seed_demo", stdout=io.StringIO())  # missing only: the change stays
    assert "FedmockSignIn" not in Role.objects.get(name="Admin").trust_policy
    call_command("seed_demo", "--reset", stdout=io.StringIO())
    assert "FedmockSignIn" in Role.objects.get(name="Admin").trust_policy


@pytest.mark.django_db
def test_load_prune_and_dump_round_trip(signing_key):
    data = iam_fixture(
        saml_providers=[{"name": "corp", "account": "123456789012", "metadata": "fedmock"}],
        roles=[{"name": "Dev", "account": "123456789012", "trust_policy": TRUST}],
    )
    fixtures.load(data, source="test")
    assert state.provider_metadata("arn:aws:iam::123456789012:saml-provider/corp")
    dumped = fixtures.dump()["iam"]
    assert [p["name"] for p in dumped["saml_providers"]] == ["corp"]
    assert dumped["roles"][0]["trust_policy"] == TRUST
    assert dumped["roles"][0]["max_session_duration"] == 3600

    fixtures.load(iam_fixture(roles=[]), source="test", prune=True)
    assert not Role.objects.exists() and not SamlProvider.objects.exists()


@pytest.mark.django_db
def test_reloading_fedmock_metadata_the_next_day_changes_nothing(signing_key, monkeypatch):
    """validUntil moves at midnight UTC; the keys did not, so IAM's copy stays as it was."""
    corp = "arn:aws:iam::123456789012:saml-provider/corp"
    data = iam_fixture(
        saml_providers=[{"name": "corp", "account": "123456789012", "metadata": "fedmock"}]
    )
    fixtures.load(data, source="test")
    before = state.provider_metadata(corp)
    tomorrow = identity.valid_until() + datetime.timedelta(days=1)
    monkeypatch.setattr(identity, "valid_until", lambda: tomorrow)
    assert identity.metadata_xml() != before  # the document did move
    fixtures.load(data, source="test")
    assert state.provider_metadata(corp) == before


@pytest.mark.parametrize(
    "iam, field, words",
    [
        ({"saml_providers": [{"name": "bad name", "metadata": "fedmock"}]}, "name", "R15"),
        ({"saml_providers": [{"name": "x"}]}, "metadata", "exactly one"),
        ({"saml_providers": [{"name": "x", "metadata": "<md/>"}]}, "metadata", "ValidationError"),
        (
            {"saml_providers": [{"name": "x", "account": 111122223333, "metadata": "fedmock"}]},
            "account",
            "12 digits",
        ),
        ({"roles": [{"name": "R", "trust_policy": "{nope"}]}, "trust_policy", "Malformed"),
        (
            {"roles": [{"name": "R", "trust_policy": TRUST, "max_session_duration": 60}]},
            "trust_policy",
            "3600",
        ),
        ({"roles": [{"name": "R", "trust_policy": TRUST}] * 2}, "name", "twice"),
        ({"users_of_iam": []}, "users_of_iam", "unknown key"),
    ],
)
def test_bad_iam_entries_are_refused_before_anything_is_written(db, iam, field, words):
    with pytest.raises(fixtures.FixtureError) as excinfo:
        fixtures.load({"iam": iam}, source="f.yaml")
    assert field in excinfo.value.detail and words in excinfo.value.detail
    assert not SamlProvider.objects.exists() and not Role.objects.exists()
