"""`make run` seeds the demo at every start without undoing an operator's changes (item 12)."""

import io

import pytest
from django.core.management import call_command

from users.models import Group, User


def seed(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out, stderr=out)
    return out.getvalue()


def groups(username: str) -> list[str]:
    return sorted(
        User.objects.get(username=username).directory_groups.values_list("name", flat=True)
    )


@pytest.fixture
def changed(db):
    """The demo, then an operator's changes to it."""
    seed()
    alice = User.objects.get(username="alice")
    alice.directory_groups.add(Group.objects.get(name="Finance"))
    alice.set_password("a new secret")
    alice.save()
    bob = User.objects.get(username="bob")
    bob.email = "robert@example.com"
    bob.save()
    bob.attributes.filter(name="department").update(value="Sales")
    carol = User.objects.get(username="carol")
    carol.directory_groups.add(Group.objects.create(name="Auditors"))
    admin = User.objects.get(username="admin")
    admin.set_password("not admin")
    admin.save()


def test_a_second_seed_keeps_every_change(changed):
    output = seed()
    assert "--reset" in output
    alice = User.objects.get(username="alice")
    assert "Finance" in groups("alice")
    assert alice.check_password("a new secret") and not alice.check_password("alice")
    bob = User.objects.get(username="bob")
    assert bob.email == "robert@example.com"
    assert bob.attribute_values()["department"] == ["Sales"]
    assert groups("carol") == ["Auditors"]
    assert User.objects.get(username="admin").check_password("not admin")


def test_reset_restores_the_demo(changed):
    assert "reset" in seed("--reset")
    alice = User.objects.get(username="alice")
    assert alice.check_password("alice")
    assert groups("alice") == [
        "AWS-111122223333-Admin",
        "AWS-111122223333-ReadOnly",
        "AWS-444455556666-Developer",
        "Engineering",
    ]
    bob = User.objects.get(username="bob")
    assert bob.email == "bob@example.com"
    assert bob.attribute_values() == {"costCenter": ["1234"], "department": ["Finance"]}
    assert groups("carol") == []
    assert User.objects.get(username="admin").check_password("admin")


def test_a_missing_demo_user_is_created_and_the_others_left_alone(changed):
    User.objects.filter(username="bob").delete()
    output = seed()
    assert "created: bob" in output
    bob = User.objects.get(username="bob")
    assert bob.check_password("bob")
    assert groups("bob") == ["AWS-111122223333-ReadOnly", "Finance"]
    assert User.objects.get(username="alice").check_password("a new secret")
