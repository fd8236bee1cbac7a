"""The AWS preset's own rules are a rule set, so other sets can be undone (issue 8, item 16)."""

import io

import pytest
from django.core.management import call_command

from idp.models import ServiceProvider
from idp.presets import AWS_PRESET_RULES, RULE_SETS

AWS = "urn:amazon:webservices"
SETTINGS = ["profile", "nameid_format", "nameid_source"]


def snapshot() -> tuple[dict, list[dict]]:
    """The preset SP's settings and its rules, every field but the keys."""
    sp = ServiceProvider.objects.get(entity_id=AWS)
    rules = list(sp.rules.values())
    for rule in rules:
        del rule["id"]
    return {name: getattr(sp, name) for name in SETTINGS}, rules


def apply(name: str) -> str:
    out = io.StringIO()
    call_command("apply_rule_set", name, "--sp", AWS, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize("other", sorted(set(RULE_SETS) - {"aws-preset"}))
def test_aws_preset_restores_the_preset_exactly(db, other):
    original = snapshot()
    apply(other)
    assert snapshot() != original
    assert "SessionDuration" in apply("aws-preset")
    assert snapshot() == original


def test_the_preset_and_the_rule_set_share_one_source():
    assert RULE_SETS["aws-preset"].rules is AWS_PRESET_RULES


def test_the_admin_offers_it(client, demo):
    client.login(username="admin", password="admin")
    sp = ServiceProvider.objects.get(entity_id=AWS)
    original = snapshot()
    client.post(f"/admin/idp/serviceprovider/{sp.pk}/rule-set/", {"rule_set": "aws-okta"})
    assert snapshot() != original
    response = client.post(
        f"/admin/idp/serviceprovider/{sp.pk}/rule-set/", {"rule_set": "aws-preset"}
    )
    assert response.status_code == 302
    assert snapshot() == original
