"""The directory: multi-valued attributes, nested groups, cycles refused."""

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from users.admin import GroupForm
from users.models import Group, User, group_names_for


@pytest.fixture
def tree(db):
    staff = Group.objects.create(name="All Staff")
    engineering = Group.objects.create(name="Engineering")
    platform = Group.objects.create(name="Platform")
    engineering.member_of.add(staff)
    platform.member_of.add(engineering)
    return staff, engineering, platform


def test_membership_is_transitive(tree):
    staff, engineering, platform = tree
    dana = User.objects.create_user("dana")
    platform.members.add(dana)
    assert group_names_for(dana) == ["All Staff", "Engineering", "Platform"]


def test_user_without_groups_has_none(db):
    assert group_names_for(User.objects.create_user("erin")) == []


def test_cycles_are_refused_from_either_side(tree):
    staff, engineering, platform = tree
    attempts = [
        lambda: staff.member_of.add(platform),
        lambda: platform.subgroups.add(staff),
        lambda: staff.member_of.add(staff),
    ]
    for attempt in attempts:
        with pytest.raises(ValidationError, match="cycle"), transaction.atomic():
            attempt()
    assert list(staff.member_of.all()) == []


def test_admin_form_explains_a_cycle(tree):
    staff, engineering, platform = tree
    form = GroupForm(
        instance=staff,
        data={"name": staff.name, "description": "", "members": [], "member_of": [platform.pk]},
    )
    assert not form.is_valid()
    assert "cycle" in str(form.errors["member_of"])


def test_group_lookup_takes_a_fixed_number_of_queries(db, django_assert_num_queries):
    user = User.objects.create_user("wide")
    parent = Group.objects.create(name="root")
    groups = Group.objects.bulk_create(Group(name=f"g{i}") for i in range(300))
    user.directory_groups.set(groups)
    parent.subgroups.set(groups)
    with django_assert_num_queries(3):
        names = group_names_for(user)
    assert len(names) == 301


def test_attributes_are_multi_valued(db):
    user = User.objects.create_user("frank")
    user.attributes.create(name="title", value="Engineer")
    user.attributes.create(name="team", value="red")
    user.attributes.create(name="team", value="blue")
    assert user.attribute_values() == {"team": ["red", "blue"], "title": ["Engineer"]}
