"""The directory: users with multi-valued attributes, and nestable groups.

These groups are the directory's own. Django's auth groups stay for admin
staff, so a test user's memberships never grant admin rights.
"""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.signals import m2m_changed
from django.dispatch import receiver

attribute_name_validator = RegexValidator(
    r"^[A-Za-z_][A-Za-z0-9_.:-]*$",
    "Attribute names start with a letter or underscore and use letters, digits, _ . : -",
)


def xml_text(value: str) -> None:
    """Directory values end up in SAML assertions, and XML cannot carry control characters."""
    if not value.isprintable():
        raise ValidationError("Remove the control characters or line breaks.")


class User(AbstractUser):
    class AuthnMethod(models.TextChoices):
        PASSWORD = "password", "password"
        KERBEROS = "kerberos", "Kerberos (as if)"
        X509 = "x509", "X.509 certificate (as if)"

    authn_method = models.CharField(
        "authentication method",
        max_length=16,
        choices=AuthnMethod.choices,
        default=AuthnMethod.PASSWORD,
        help_text="How a password sign-in of this user is stated in SAML assertions: as a "
        "password (PasswordProtectedTransport), or as if by Kerberos or an X.509 certificate, "
        "for testing SPs that ask for those. A TOTP code on top makes it multi-factor.",
    )

    def attribute_values(self) -> dict[str, list[str]]:
        values: dict[str, list[str]] = {}
        for name, value in self.attributes.values_list("name", "value"):
            values.setdefault(name, []).append(value)
        return values


class UserAttribute(models.Model):
    """One value of a directory attribute; several rows with one name make it multi-valued."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="attributes")
    name = models.CharField(max_length=128, validators=[attribute_name_validator])
    value = models.CharField(max_length=1024, blank=True, validators=[xml_text])

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "name", "value"], name="unique_attribute_value")
        ]

    def __str__(self) -> str:
        return f"{self.name}={self.value}"


class Group(models.Model):
    """A directory group. Members of a group are members of every group it belongs to."""

    name = models.CharField(max_length=256, unique=True, validators=[xml_text])
    description = models.TextField(blank=True)
    members = models.ManyToManyField(User, blank=True, related_name="directory_groups")
    member_of = models.ManyToManyField(
        "self",
        symmetrical=False,
        blank=True,
        related_name="subgroups",
        help_text="Groups this group belongs to. Its members belong to them too.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def check_parents(self, parents) -> None:
        """Refuse parents that would make this group (transitively) a member of itself."""
        if self.pk is None:
            return
        edges = parent_edges()
        for parent in parents:
            if parent.pk == self.pk or self.pk in ancestors({parent.pk}, edges):
                raise ValidationError(
                    f"'{parent}' already belongs to '{self}' (directly or through other "
                    "groups), so making it a parent would create a cycle. Remove one of "
                    "the two memberships."
                )


def parent_edges() -> dict[int, set[int]]:
    """Every group's direct parents, in one query."""
    edges: dict[int, set[int]] = {}
    through = Group.member_of.through
    for child, parent in through.objects.values_list("from_group_id", "to_group_id"):
        edges.setdefault(child, set()).add(parent)
    return edges


def ancestors(start: set[int], edges: dict[int, set[int]]) -> set[int]:
    """The groups in start and every group they belong to, directly or not."""
    seen = set(start)
    frontier = list(start)
    while frontier:
        for parent in edges.get(frontier.pop(), ()):
            if parent not in seen:
                seen.add(parent)
                frontier.append(parent)
    return seen


@dataclass(frozen=True)
class GroupGraph:
    """Every group's name and parents: enough to expand direct memberships in memory."""

    names: dict[int, str]
    parents: dict[int, set[int]]

    @classmethod
    def load(cls) -> "GroupGraph":
        return cls(dict(Group.objects.values_list("id", "name")), parent_edges())

    def names_for(self, direct: set[int]) -> list[str]:
        return sorted(self.names[i] for i in ancestors(direct, self.parents) if i in self.names)


def group_names_for(user: User, graph: GroupGraph | None = None) -> list[str]:
    """Names of every group the user belongs to, transitively, sorted.

    One query with a graph at hand (a cached one, say), three without.
    """
    direct = set(user.directory_groups.values_list("id", flat=True))
    if not direct:
        return []
    return (graph or GroupGraph.load()).names_for(direct)


@receiver(m2m_changed, sender=Group.member_of.through)
def refuse_group_cycles(sender, instance, action, reverse, pk_set, **kwargs):
    if action != "pre_add":
        return
    if reverse:
        # instance is the parent gaining children: check from each child's side.
        for child in Group.objects.filter(pk__in=pk_set):
            child.check_parents([instance])
    else:
        instance.check_parents(Group.objects.filter(pk__in=pk_set))


DIRECTORY_FIELDS = ("username", "email", "first_name", "last_name")


@dataclass(frozen=True)
class DirectoryEntry:
    """What claim rules may read about one user: fields, attributes, transitive groups."""

    fields: dict[str, str]
    attributes: dict[str, list[str]]
    groups: tuple[str, ...]
    group_set: frozenset[str]

    @classmethod
    def of(cls, user: User, graph: GroupGraph | None = None) -> "DirectoryEntry":
        groups = tuple(group_names_for(user, graph))
        return cls(
            fields={name: getattr(user, name) or "" for name in DIRECTORY_FIELDS},
            attributes=user.attribute_values(),
            groups=groups,
            group_set=frozenset(groups),
        )

    def lookup(self, reference: str) -> list[str]:
        """Values of username, email, first_name, last_name, groups or attr.<name>."""
        if reference == "groups":
            return list(self.groups)
        if reference.startswith("attr."):
            return [v for v in self.attributes.get(reference.removeprefix("attr."), []) if v]
        value = self.fields.get(reference, "")
        return [value] if value else []
