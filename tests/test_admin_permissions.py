"""Every custom admin view and action checks the model permission it exercises (issue 8, item 2).

A staff user with no permissions gets 403 from each of them and changes nothing; a
user with exactly the permissions named here succeeds; one short of them is refused.
"""

import datetime
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from idp import keys
from idp.models import ClaimRule, ServiceProvider, SigningKey
from users.models import User

from .test_admin_and_commands import SP_METADATA

AWS = "urn:amazon:webservices"
APP = "https://app.example/saml"
SP_ADMIN = "/admin/idp/serviceprovider/"
KEY_ADMIN = "/admin/idp/signingkey/"


def aws_sp() -> ServiceProvider:
    return ServiceProvider.objects.get(entity_id=AWS)


def aws_rules() -> list[str]:
    return [rule.description for rule in aws_sp().rules.all()]


def next_key() -> SigningKey:
    return SigningKey.objects.get(state="next")


def key_states() -> list[str]:
    return sorted(SigningKey.objects.values_list("state", flat=True))


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    url: Callable[[], str]
    data: Callable[[], dict]
    perms: tuple[str, ...]  # exactly what the step needs
    done: Callable[
        [dict, object], bool
    ]  # whether it happened, given the state before and the answer
    prepare: Callable[[], object] = lambda: None


CASES = [
    Case(
        "import a new SP",
        "post",
        lambda: SP_ADMIN + "import-metadata/",
        lambda: {"metadata": SP_METADATA, "name": "App"},
        ("idp.add_serviceprovider",),
        lambda before, response: ServiceProvider.objects.filter(entity_id=APP).exists(),
    ),
    Case(
        "import over an existing SP",
        "post",
        lambda: SP_ADMIN + "import-metadata/",
        lambda: {"metadata": SP_METADATA.replace(APP, AWS), "name": "Renamed"},
        ("idp.change_serviceprovider",),
        lambda before, response: aws_sp().name == "Renamed",
    ),
    Case(
        "import over an existing SP with a rule set",
        "post",
        lambda: SP_ADMIN + "import-metadata/",
        lambda: {"metadata": SP_METADATA.replace(APP, AWS), "rule_set": "aws-okta"},
        ("idp.change_serviceprovider", "idp.add_claimrule", "idp.delete_claimrule"),
        lambda before, response: aws_rules() != before["rules"],
    ),
    Case(
        "apply a rule set",
        "post",
        lambda: f"{SP_ADMIN}{aws_sp().pk}/rule-set/",
        lambda: {"rule_set": "aws-okta"},
        ("idp.change_serviceprovider", "idp.add_claimrule", "idp.delete_claimrule"),
        lambda before, response: aws_rules() != before["rules"],
    ),
    Case(
        "the apply-rule-set action",
        "post",
        lambda: SP_ADMIN,
        lambda: {"action": "apply_rule_set", "_selected_action": [aws_sp().pk]},
        ("idp.change_serviceprovider", "idp.add_claimrule", "idp.delete_claimrule"),
        lambda before, response: response.get("Location", "").endswith("/rule-set/"),
    ),
    Case(
        "preview (signs)",
        "get",
        lambda: f"{SP_ADMIN}{aws_sp().pk}/preview/",
        lambda: {"user": User.objects.get(username="alice").pk},
        ("idp.preview_signed_response",),
        lambda before, response: b"SignatureValue" in response.content,
    ),
    Case(
        "the preview action",
        "post",
        lambda: SP_ADMIN,
        lambda: {"action": "preview", "_selected_action": [aws_sp().pk]},
        ("idp.view_serviceprovider", "idp.preview_signed_response"),
        lambda before, response: response.get("Location", "").endswith("/preview/"),
    ),
    Case(
        "stage a key",
        "post",
        lambda: KEY_ADMIN + "stage/",
        dict,
        ("idp.add_signingkey",),
        lambda before, response: key_states() == ["active", "next", "retired"],
        prepare=lambda: keys.retire(next_key().fingerprint),
    ),
    Case(
        "the activate action",
        "post",
        lambda: KEY_ADMIN,
        lambda: {"action": "activate_key", "_selected_action": [next_key().pk]},
        ("idp.change_signingkey",),
        lambda before, response: key_states() == ["active", "active"],
    ),
    Case(
        "the retire action",
        "post",
        lambda: KEY_ADMIN,
        lambda: {"action": "retire_key", "_selected_action": [next_key().pk]},
        ("idp.change_signingkey",),
        lambda before, response: key_states() == ["active", "retired"],
    ),
]
IDS = [case.name for case in CASES]


@pytest.fixture
def setting(demo):
    """The demo, and a next key staged long enough ago that no step has to wait."""
    keys.stage(valid_days=30)
    SigningKey.objects.filter(state="next").update(
        state_changed_at=timezone.now() - datetime.timedelta(hours=1)
    )
    SigningKey.objects.filter(state="active").update(
        state_changed_at=timezone.now() - datetime.timedelta(hours=2)
    )


@pytest.fixture
def signatures(monkeypatch) -> list[int]:
    """Counts every use of the signing key: nothing signs without it."""
    used: list[int] = []
    active_key = keys.active_key

    def counting():
        used.append(1)
        return active_key()

    monkeypatch.setattr(keys, "active_key", counting)
    return used


def staff(*perms: str) -> User:
    user = User.objects.create_user("operator", password="x", is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def state(signatures) -> dict:
    return {
        "rules": aws_rules(),
        "keys": key_states(),
        "sps": sorted(ServiceProvider.objects.values_list("entity_id", "name")),
        "claim_rules": ClaimRule.objects.count(),
        "signatures": len(signatures),
    }


def send(client, case: Case, method: str):
    if method == "get":
        return client.get(case.url(), case.data() if case.method == "get" else {})
    return client.post(case.url(), case.data())


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_staff_without_permissions_gets_403_and_nothing_changes(
    client, setting, signatures, case, method
):
    client.force_login(staff())
    case.prepare()
    before = state(signatures)
    response = send(client, case, method)
    assert response.status_code == 403
    assert state(signatures) == before
    assert not case.done(before, response)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_exactly_the_named_permissions_suffice(client, setting, signatures, case):
    client.force_login(staff(*case.perms))
    case.prepare()
    before = state(signatures)
    response = send(client, case, case.method)
    assert response.status_code in (200, 302), response.content[:500]
    assert case.done(before, response)


# Each of these is one permission short of a step (or holds the wrong one).
SHORT = [
    ("import a new SP", ("idp.change_serviceprovider",)),
    ("import over an existing SP", ("idp.add_serviceprovider",)),
    ("import over an existing SP", ("idp.view_serviceprovider",)),
    (
        "import over an existing SP with a rule set",
        ("idp.change_serviceprovider", "idp.add_claimrule"),
    ),
    ("apply a rule set", ("idp.change_serviceprovider", "idp.add_claimrule")),
    ("apply a rule set", ("idp.add_claimrule", "idp.delete_claimrule")),
    ("preview (signs)", ("idp.view_serviceprovider",)),
    ("preview (signs)", ("idp.change_serviceprovider",)),
    ("the preview action", ("idp.view_serviceprovider",)),
    ("the preview action", ("idp.change_serviceprovider",)),
    ("the apply-rule-set action", ("idp.change_serviceprovider",)),
    ("stage a key", ("idp.change_signingkey",)),
    ("stage a key", ("idp.view_signingkey",)),
    ("the activate action", ("idp.view_signingkey",)),
    ("the retire action", ("idp.view_signingkey",)),
]


@pytest.mark.parametrize(("name", "perms"), SHORT, ids=[f"{n}: {p}" for n, p in SHORT])
def test_one_permission_short_is_refused(client, setting, signatures, name, perms):
    case = next(case for case in CASES if case.name == name)
    client.force_login(staff(*perms))
    case.prepare()
    before = state(signatures)
    response = send(client, case, case.method)
    # Views answer 403; an action the user may not run is simply not offered.
    assert response.status_code in (403, 200, 302)
    assert not case.done(before, response)
    assert state(signatures) == before


def test_a_view_only_user_cannot_make_the_idp_sign(client, setting, signatures):
    client.force_login(staff("idp.view_serviceprovider", "idp.view_signingkey"))
    sp = aws_sp()
    alice = User.objects.get(username="alice")
    pages = [
        client.get(f"{SP_ADMIN}{sp.pk}/change/"),
        client.get(SP_ADMIN),
        client.get(f"{SP_ADMIN}{sp.pk}/preview/", {"user": alice.pk}),
        client.post(f"{SP_ADMIN}{sp.pk}/preview/", {"user": alice.pk}),
        client.post(SP_ADMIN, {"action": "preview", "_selected_action": [sp.pk]}, follow=True),
    ]
    assert [page.status_code for page in pages] == [200, 200, 403, 403, 200]
    assert signatures == []
    # Nor are the tools offered to them.
    for page in pages[:2]:
        html = page.content.decode()
        assert "/preview/" not in html and "/rule-set/" not in html
        assert "import-metadata/" not in html


def test_the_stage_button_shows_only_with_the_permission(client, setting):
    client.force_login(staff("idp.view_signingkey"))
    assert "Stage a new key" not in client.get(KEY_ADMIN).content.decode()
    client.logout()
    User.objects.get(username="operator").delete()
    client.force_login(staff("idp.view_signingkey", "idp.add_signingkey"))
    assert "Stage a new key" in client.get(KEY_ADMIN).content.decode()
