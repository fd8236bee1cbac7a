"""The directory as plain JSON: users, groups, service providers and claim rules.

Every write ends in the model's own validation (`full_clean`) and an ordinary `save()`,
`delete()` or related-manager call, so the admin's rules and messages apply and the
cache receivers (idp/cache.py) fire: the next sign-on sees the change.
"""

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from oauth2_provider.generators import generate_client_secret
from rest_framework import exceptions, serializers

from idp import cache, mfa
from idp.api.errors import FindingSerializer
from idp.models import AssertionConsumerService, ClaimRule, ServiceProvider
from idp.oidc.models import SCOPES, Client, default_grants, default_scopes
from idp.presets import RULE_SETS
from idp.registry import MAX_METADATA_BYTES
from users.models import Group, GroupGraph, User, UserAttribute, ancestors


def full_clean(instance, **options) -> None:
    """The model's validation, as the admin runs it; its messages reach the client per field."""
    try:
        instance.full_clean(**options)
    except DjangoValidationError as error:
        if not hasattr(error, "error_dict"):
            raise serializers.ValidationError({"non_field_errors": error.messages}) from error
        raise serializers.ValidationError(
            {
                ("non_field_errors" if name == "__all__" else name): messages
                for name, messages in error.message_dict.items()
            }
        ) from error


class NaturalKeyField(serializers.SlugRelatedField):
    """A related object by its natural key. No stored key holds a control character, and
    PostgreSQL refuses a NUL in a query (psycopg raises DataError: a 500), so such a key
    is refused as unknown without asking the database."""

    def to_internal_value(self, data):
        if isinstance(data, str) and not data.isprintable():
            self.fail("does_not_exist", slug_name=self.slug_field, value=str(data))
        return super().to_internal_value(data)


def _group_field(**options) -> serializers.SlugRelatedField:
    return NaturalKeyField(
        slug_field="name",
        queryset=Group.objects.all(),
        error_messages={
            "does_not_exist": "No directory group is named {value!r}. Create it first "
            "(POST /api/v1/groups); groups are never created implicitly.",
        },
        **options,
    )


def _graph(context: dict) -> GroupGraph:
    """One group graph per request, shared by every item of a list."""
    if "group_graph" not in context:
        context["group_graph"] = GroupGraph.load()
    return context["group_graph"]


def descendants(group_id: int, graph: GroupGraph) -> set[int]:
    """The group and every group inside it, directly or through nesting."""
    return {g for g in graph.names if group_id in ancestors({g}, graph.parents)}


# ---------------------------------------------------------------------------- users


class AttributesField(serializers.DictField):
    """{"name": ["value", ...]}: each name maps to its values, in order."""

    def __init__(self, **kwargs):
        super().__init__(
            child=serializers.ListField(
                child=serializers.CharField(allow_blank=True, trim_whitespace=False)
            ),
            help_text="Directory attributes; each name maps to the list of its values "
            "(multi-valued). Writing replaces the whole set.",
            **kwargs,
        )

    def get_attribute(self, user: User) -> dict[str, list[str]]:
        values: dict[str, list[str]] = {}
        for attribute in user.attributes.all():  # prefetched, ordered by name then id
            values.setdefault(attribute.name, []).append(attribute.value)
        return values

    def to_internal_value(self, data) -> dict[str, list[str]]:
        data = super().to_internal_value(data)
        errors: dict[str, list[str]] = {}
        for name, values in data.items():
            problems = []
            if len(set(values)) != len(values):
                problems.append("A value appears twice; each value of an attribute is unique.")
            for value in values:
                try:
                    UserAttribute(name=name, value=value).full_clean(
                        exclude=["user"], validate_unique=False, validate_constraints=False
                    )
                except DjangoValidationError as error:
                    problems += [
                        f"{field}: {message}"
                        for field, messages in error.message_dict.items()
                        for message in messages
                    ]
            if not values:
                continue  # the name gets no values, as if it were left out
            if problems:
                errors[name] = sorted(set(problems), key=problems.index)
        if errors:
            raise serializers.ValidationError(errors)
        return data


USER_DEFAULTS = {
    "email": "",
    "first_name": "",
    "last_name": "",
    "is_active": True,
    "authn_method": User.AuthnMethod.PASSWORD,
    "attributes": {},
    "directory_groups": [],
}


class UserSerializer(serializers.ModelSerializer):
    password = serializers.CharField(
        write_only=True,
        required=False,
        trim_whitespace=False,
        max_length=128,
        style={"input_type": "password"},
        help_text="Write-only; stored hashed. Omitted on create: the user cannot sign in with "
        "a password (the picker login mode still lists them).",
    )
    attributes = AttributesField(required=False)
    groups = _group_field(
        many=True,
        source="directory_groups",
        required=False,
        help_text="Names of the directory groups the user is directly in (unknown names are "
        "refused). Writing replaces the whole list.",
    )
    effective_groups = serializers.SerializerMethodField(
        help_text="Every group the user is in, directly or through nesting (what claim rules see)."
    )
    totp_secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=200,
        help_text="Write-only: a base32 TOTP secret (RFC 6238, 6 digits, 30 s, SHA-1) that "
        "provisions a confirmed device, replacing any other, so that tests can compute codes. "
        "After it, every password sign-in asks for a code. An empty string removes the device.",
    )
    mfa_enrolled = serializers.SerializerMethodField(
        help_text="Whether the user has a confirmed TOTP device (a code after every password)."
    )

    class Meta:
        model = User
        fields = [
            "username",
            "email",
            "first_name",
            "last_name",
            "is_active",
            "is_staff",
            "is_superuser",
            "password",
            "authn_method",
            "totp_secret",
            "mfa_enrolled",
            "attributes",
            "groups",
            "effective_groups",
            "date_joined",
            "last_login",
        ]
        read_only_fields = ["date_joined", "last_login"]
        extra_kwargs = {
            "is_staff": {"help_text": "Admin access. Only a superuser's token may change it."},
            "is_superuser": {
                "help_text": "Every permission. Only a superuser's token may change it."
            },
        }

    def get_effective_groups(self, user: User) -> list[str]:
        direct = {group.pk for group in user.directory_groups.all()}
        return _graph(self.context).names_for(direct) if direct else []

    def get_mfa_enrolled(self, user: User) -> bool:
        return any(device.confirmed for device in user.totpdevice_set.all())

    def validate_totp_secret(self, text: str) -> bytes | str:
        if text == "":
            return ""
        try:
            return mfa.secret_from_base32(text)
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.messages) from error

    def validate_password(self, password: str) -> str:
        try:
            validate_password(password, self.instance)
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.messages) from error
        return password

    def validate(self, attrs: dict) -> dict:
        requester = self.context["request"].user
        if not requester.is_superuser:
            for flag in ("is_staff", "is_superuser"):
                current = getattr(self.instance, flag, False)
                if flag in attrs and attrs[flag] != current:
                    raise exceptions.PermissionDenied(
                        f"Only a superuser's token may change {flag}: a staff user must not "
                        "grant admin rights, to itself or anyone."
                    )
        return attrs

    @transaction.atomic
    def create(self, validated: dict) -> User:
        return self._save(User(), validated)

    @transaction.atomic
    def update(self, user: User, validated: dict) -> User:
        if not self.partial:
            # PUT replaces: what it omits goes back to its default. The password is never
            # read back, so a GET-then-PUT keeps it; the admin flags stay (see validate).
            validated = {**USER_DEFAULTS, **validated}
        return self._save(user, validated)

    def _save(self, user: User, validated: dict) -> User:
        attributes = validated.pop("attributes", None)
        groups = validated.pop("directory_groups", None)
        password = validated.pop("password", None)
        totp_secret = validated.pop("totp_secret", None)
        for field, value in validated.items():
            setattr(user, field, value)
        if password is not None:
            user.set_password(password)
        elif user.pk is None:
            user.set_unusable_password()
        full_clean(user)
        # One generation bump for the whole write: a bump per attribute row (an UPDATE
        # each) let one request of a few MB hold a worker for minutes.
        with cache.one_bump():
            user.save()
            if attributes is not None:
                user.attributes.all().delete()
                # Each value passed the model's validation in AttributesField.
                UserAttribute.objects.bulk_create(
                    UserAttribute(user=user, name=name, value=value)
                    for name, values in attributes.items()
                    for value in values
                )
                cache.bump()  # bulk_create sends no post_save
            if groups is not None:
                user.directory_groups.set(groups)
            if totp_secret == "":
                mfa.remove(user)
            elif totp_secret is not None:
                mfa.provision(user, totp_secret)
        # Fresh related objects for the answer, not the prefetched ones read before the write.
        if hasattr(user, "_prefetched_objects_cache"):
            user._prefetched_objects_cache.clear()
        return user


# ---------------------------------------------------------------------------- groups


class GroupSerializer(serializers.ModelSerializer):
    member_of = _group_field(
        many=True,
        required=False,
        help_text="Names of the groups this group belongs to (its parents); its members belong "
        "to them too. A cycle is refused. Writing replaces the whole list.",
    )
    subgroups = serializers.SlugRelatedField(
        many=True,
        read_only=True,
        slug_field="name",
        help_text="Groups that belong to this one directly.",
    )
    direct_member_count = serializers.SerializerMethodField(
        help_text="Users in this group directly."
    )
    effective_member_count = serializers.SerializerMethodField(
        help_text="Users in this group directly or through a subgroup, at any depth; "
        "GET /api/v1/users?group=NAME lists them."
    )

    class Meta:
        model = Group
        fields = [
            "name",
            "description",
            "member_of",
            "subgroups",
            "direct_member_count",
            "effective_member_count",
        ]

    def get_direct_member_count(self, group: Group) -> int:
        annotated = getattr(group, "direct_members", None)  # the list's one query
        return group.members.count() if annotated is None else annotated

    def get_effective_member_count(self, group: Group) -> int:
        inside = descendants(group.pk, _graph(self.context))
        return User.objects.filter(directory_groups__in=inside).distinct().count()

    def validate_member_of(self, parents: list[Group]) -> list[Group]:
        if self.instance is not None:
            # The admin form's check, with its words; the m2m signal stays as the backstop.
            try:
                self.instance.check_parents(parents)
            except DjangoValidationError as error:
                raise serializers.ValidationError(error.messages) from error
        return parents

    @transaction.atomic
    def create(self, validated: dict) -> Group:
        return self._save(Group(), validated)

    @transaction.atomic
    def update(self, group: Group, validated: dict) -> Group:
        if not self.partial:  # PUT replaces: what it omits goes back to its default
            validated = {"description": "", "member_of": [], **validated}
        return self._save(group, validated)

    def _save(self, group: Group, validated: dict) -> Group:
        parents = validated.pop("member_of", None)
        for field, value in validated.items():
            setattr(group, field, value)
        full_clean(group)
        group.save()
        if parents is not None:
            try:
                group.member_of.set(parents)
            except DjangoValidationError as error:  # a concurrent change made it a cycle
                raise serializers.ValidationError({"member_of": error.messages}) from error
        self.context.pop("group_graph", None)  # the answer counts against the new graph
        return group


# ---------------------------------------------------------------------------- service providers


SP_SETTINGS = [
    "name",
    "enabled",
    "profile",
    "check_policy",
    "iam_provider_name",
    "nameid_format",
    "nameid_source",
    "sign_response",
    "sign_assertion",
    "signature_algorithm",
    "digest_algorithm",
    "assertion_lifetime",
    "allow_idp_initiated",
    "default_relay_state",
    "require_mfa",  # no assertion without a password and a TOTP code (idp/mfa.py)
    "request_certificate",
    "require_signed_requests",
    "ignore_unverifiable_signatures",
    "request_max_age",
    "encrypt_assertions",
    "encryption_certificate",
    "encryption_algorithm",
    "fault_scenario",  # the standing fault profile; the model's clean() judges it
]


class EndpointSerializer(serializers.ModelSerializer):
    class Meta:
        model = AssertionConsumerService
        fields = ["location", "binding", "index", "is_default"]
        read_only_fields = fields


class ServiceProviderSerializer(serializers.ModelSerializer):
    """An SP's settings. The entity ID and the ACS endpoints come from its metadata."""

    endpoints = EndpointSerializer(
        many=True,
        read_only=True,
        help_text="Assertion consumer services, from the metadata (POST it again to change them).",
    )

    class Meta:
        model = ServiceProvider
        fields = ["entity_id", *SP_SETTINGS, "endpoints", "updated_at"]
        read_only_fields = ["entity_id", "updated_at"]

    @transaction.atomic
    def update(self, sp: ServiceProvider, validated: dict) -> ServiceProvider:
        for field, value in validated.items():
            setattr(sp, field, value)
        full_clean(sp)
        sp.save()
        return sp


class ServiceProviderDetailSerializer(ServiceProviderSerializer):
    class Meta(ServiceProviderSerializer.Meta):
        fields = [*ServiceProviderSerializer.Meta.fields, "metadata_xml"]
        read_only_fields = [*ServiceProviderSerializer.Meta.read_only_fields, "metadata_xml"]
        extra_kwargs = {"metadata_xml": {"help_text": "The metadata last imported."}}


class ServiceProviderCreateSerializer(ServiceProviderSerializer):
    """Metadata (inline or by URL), then optional settings; the answer is the SP's detail."""

    metadata_xml = serializers.CharField(
        required=False,
        write_only=True,
        trim_whitespace=False,
        max_length=MAX_METADATA_BYTES,
        help_text="The SP's metadata XML (an md:EntityDescriptor). Give this or metadata_url.",
    )
    metadata_url = serializers.URLField(
        required=False,
        write_only=True,
        max_length=2048,
        help_text="An http(s) URL to fetch the metadata from (10 s, 1 MiB at most). "
        "Give this or metadata_xml.",
    )
    rule_set = serializers.ChoiceField(
        choices=sorted(RULE_SETS),
        required=False,
        write_only=True,
        help_text="Apply this ready-made rule set (replaces the SP's own claim rules).",
    )

    class Meta(ServiceProviderSerializer.Meta):
        fields = [
            *ServiceProviderSerializer.Meta.fields,
            "metadata_xml",
            "metadata_url",
            "rule_set",
        ]
        extra_kwargs = {"name": {"required": False}}

    def validate(self, attrs: dict) -> dict:
        given = [field for field in ("metadata_xml", "metadata_url") if attrs.get(field)]
        if len(given) != 1:
            message = "Give exactly one of metadata_xml and metadata_url."
            raise serializers.ValidationError({"metadata_xml": message, "metadata_url": message})
        return attrs


class RuleSetSerializer(serializers.Serializer):
    rule_set = serializers.ChoiceField(
        choices=sorted(RULE_SETS),
        help_text="; ".join(f"{slug}: {s.title}" for slug, s in RULE_SETS.items()),
    )


# ---------------------------------------------------------------------------- claim rules


class ClaimRuleSerializer(serializers.ModelSerializer):
    service_provider = NaturalKeyField(
        slug_field="entity_id",
        queryset=ServiceProvider.objects.all(),
        allow_null=True,
        required=False,
        help_text="The SP's entity ID; null: the rule applies to every service provider.",
        error_messages={"does_not_exist": "No service provider has the entity ID {value!r}."},
    )
    oidc_client = NaturalKeyField(
        slug_field="client_id",
        queryset=Client.objects.all(),
        allow_null=True,
        required=False,
        help_text="For a JWT rule: the OIDC client's client_id; null: every OIDC client.",
        error_messages={"does_not_exist": "No OIDC client has the client_id {value!r}."},
    )

    class Meta:
        model = ClaimRule
        fields = [
            "id",
            "emits",
            "claim_type",
            "service_provider",
            "oidc_client",
            "order",
            "enabled",
            "description",
            "condition",
            "condition_subject",
            "condition_pattern",
            "negate",
            "source",
            "value",
            "group_pattern",
            "source_attribute",
            "attribute_name",
            "name_format",
            "friendly_name",
        ]

    @transaction.atomic
    def create(self, validated: dict) -> ClaimRule:
        return self._save(ClaimRule(), validated)

    @transaction.atomic
    def update(self, rule: ClaimRule, validated: dict) -> ClaimRule:
        return self._save(rule, validated)

    def _save(self, rule: ClaimRule, validated: dict) -> ClaimRule:
        for field, value in validated.items():
            setattr(rule, field, value)
        full_clean(rule)
        rule.save()
        return rule


class SpClaimRuleSerializer(ClaimRuleSerializer):
    """A rule of the SP named in the URL."""

    service_provider = serializers.SlugRelatedField(
        slug_field="entity_id",
        read_only=True,
        help_text="The SP in the URL.",
    )


class RuleSetResultSerializer(serializers.Serializer):
    rule_set = serializers.CharField()
    claim_rules = ClaimRuleSerializer(many=True, help_text="The SP's own rules now, in order.")


# ---------------------------------------------------------------------------- OIDC clients


class SpaceSeparatedListField(serializers.ListField):
    """A list in JSON, one space-separated text in the model (DOT's redirect_uris)."""

    def __init__(self, **kwargs):
        super().__init__(child=serializers.CharField(trim_whitespace=False), **kwargs)

    def to_representation(self, data) -> list[str]:
        return data.split() if isinstance(data, str) else super().to_representation(data)

    def to_internal_value(self, data) -> str:
        items = super().to_internal_value(data)
        problems = [
            f"{item!r} contains a space or another blank character; a URI has none."
            for item in items
            if not item or item.split() != [item]
        ]
        if problems:
            raise serializers.ValidationError(problems)
        return " ".join(dict.fromkeys(items))


OIDC_CLIENT_DEFAULTS = {
    "name": "",
    "redirect_uris": "",
    "grant_types": default_grants,
    "allowed_scopes": default_scopes,
    "skip_authorization": False,
}


class OidcClientSerializer(serializers.ModelSerializer):
    """An OIDC client (DOT's application, swapped for idp.oidc.models.Client). The secret is
    never read back: DOT keeps its hash."""

    client_id = serializers.CharField(
        required=False,
        max_length=255,
        help_text="Generated when omitted on create; fixed afterwards (it is the URL's key).",
    )
    redirect_uris = SpaceSeparatedListField(
        required=False,
        help_text="Where the authorization-code flow may send the user back (exact match).",
    )
    grant_types = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="authorization-code (PKCE is required) and/or client-credentials.",
    )
    allowed_scopes = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text=f"Scopes the client may ask for: {', '.join(SCOPES)}.",
    )

    class Meta:
        model = Client
        fields = [
            "client_id",
            "name",
            "client_type",
            "redirect_uris",
            "grant_types",
            "allowed_scopes",
            "skip_authorization",
            "created",
            "updated",
        ]
        read_only_fields = ["created", "updated"]

    def validate_client_id(self, value: str) -> str:
        if self.instance is not None and value != self.instance.client_id:
            raise serializers.ValidationError(
                "A client's ID cannot change (tokens and relying parties name it); "
                "create a new client instead."
            )
        if not value.isprintable() or value.split() != [value] or "/" in value:
            raise serializers.ValidationError(
                "Use printable characters without blanks or '/' (it appears in URLs)."
            )
        return value

    @transaction.atomic
    def create(self, validated: dict) -> Client:
        client = Client(algorithm=Client.RS256_ALGORITHM)
        # The one moment the secret exists in clear: the view answers it once.
        self.new_secret = generate_client_secret()
        client.client_secret = self.new_secret
        return self._save(client, validated)

    @transaction.atomic
    def update(self, client: Client, validated: dict) -> Client:
        if not self.partial:  # PUT replaces: what it omits goes back to its default
            defaults = {k: v() if callable(v) else v for k, v in OIDC_CLIENT_DEFAULTS.items()}
            validated = {**defaults, **validated}
        return self._save(client, validated)

    def _save(self, client: Client, validated: dict) -> Client:
        for field, value in validated.items():
            setattr(client, field, value)
        # As the admin's form: clean() derives DOT's single grant from grant_types.
        full_clean(client, exclude=["authorization_grant_type"])
        client.save()
        return client


class OidcClientSecretSerializer(OidcClientSerializer):
    client_secret = serializers.CharField(
        read_only=True,
        help_text="Shown this once: fedmock keeps only its hash. POST …/secret makes a new one.",
    )

    class Meta(OidcClientSerializer.Meta):
        fields = [*OidcClientSerializer.Meta.fields, "client_secret"]


class IdTokenPreviewRequestSerializer(serializers.Serializer):
    username = serializers.CharField(help_text="The directory user the ID token is for.")


class RuleOutcomeSerializer(serializers.Serializer):
    rule = serializers.IntegerField(source="rule.id", help_text="The claim rule's ID.")
    claim = serializers.CharField(source="rule.attribute_name")
    applied = serializers.BooleanField()
    values = serializers.ListField(child=serializers.CharField())
    note = serializers.CharField(help_text="Why fewer values reached the token, if any did.")


class IdTokenPreviewSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="The signed JWT; neither issued nor audited.")
    header = serializers.DictField(help_text="alg, kid (as /oidc/jwks publishes it), typ.")
    claims = serializers.DictField(help_text="The payload, as a verifier reads it.")
    scopes = serializers.ListField(
        child=serializers.CharField(), help_text="The scopes it assumes: all the client's."
    )
    trace = RuleOutcomeSerializer(many=True, help_text="Each JWT claim rule, in order.")


class SamlPreviewRequestSerializer(serializers.Serializer):
    username = serializers.CharField(help_text="The directory user the response is for.")


class ReleasedBySerializer(serializers.Serializer):
    rule = serializers.IntegerField(
        source="pk",
        allow_null=True,
        help_text="The claim rule's ID; null for a RequestedAttribute of the SP's metadata.",
    )
    description = serializers.CharField(source="__str__")


class ReleasedAttributeSerializer(serializers.Serializer):
    name = serializers.CharField()
    name_format = serializers.CharField()
    friendly_name = serializers.CharField()
    values = serializers.ListField(child=serializers.CharField())
    released_by = ReleasedBySerializer(
        many=True, help_text="The rules, or the metadata's request, whose values it carries."
    )


class SamlPreviewSerializer(serializers.Serializer):
    acs_url = serializers.CharField()
    name_id = serializers.DictField(help_text="value and format, as the Subject carries them.")
    attributes = ReleasedAttributeSerializer(many=True)
    findings = FindingSerializer(many=True, help_text="The AWS checker's and security findings.")
    condition_keys = serializers.DictField(
        child=serializers.CharField(), help_text="What an IAM trust policy sees (R8)."
    )
    xml = serializers.CharField(help_text="The signed response, as sent (encrypted if so).")
    decrypted_xml = serializers.CharField(help_text="What the SP reads after decryption.")

    def to_representation(self, preview):
        name_id = preview.release.name_id
        return super().to_representation(
            {
                "acs_url": preview.acs_url,
                "name_id": {"value": name_id.value, "format": name_id.format},
                "attributes": [
                    {
                        "name": attribute.name,
                        "name_format": attribute.name_format,
                        "friendly_name": attribute.friendly_name,
                        "values": list(attribute.values),
                        "released_by": list(rules),
                    }
                    for attribute, rules in preview.evaluation.released
                ],
                "findings": preview.findings,
                "condition_keys": dict(preview.condition_keys),
                "xml": preview.xml,
                "decrypted_xml": preview.decrypted_xml,
            }
        )
