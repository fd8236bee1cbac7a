"""Admin pages of the local IAM slice (SAML providers, roles) and of the credentials the
local STS issued.

Providers and roles are editable here, but only through the IAM API's own rules: the
forms run state.py's checks (R15-R17: names, metadata size and keys, role names, paths,
session durations, the trust-policy parser the evaluator uses, the per-account quotas),
and every save and delete goes through state.py's functions or bumps IamGeneration as
they do, so each worker reloads moto's backends on its next /aws/ request. What IAM
cannot change (a provider's or role's account, name, path) is read-only once created.

Issued credentials are listed for finding a session, never shown: the secret access key
and the session token appear on no page, and no URL may filter or search on them (a
`?secret_access_key__startswith=` lookup would read a secret out letter by letter).
Deleting a row revokes the credentials: the door no longer knows the key.
"""

import json

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import path
from django.utils.html import format_html, format_html_join

from idp import clock
from idp.saml.errors import SamlError
from idp.saml.metadata import parse_idp_metadata
from idp.saml.signing import fingerprint

from . import explain_admin, state
from .errors import StsError
from .models import IamGeneration, IssuedCredential, Role, SamlProvider

SECRET_FIELDS = frozenset({"secret_access_key", "session_token"})
CLI_HINT = (
    "The same rules as IAM's API apply here. From a shell: `aws iam create-saml-provider` / "
    "`aws iam create-role … --endpoint-url {IDP_BASE_URL}/aws/`, or a fixture's `iam:` section."
)


def _refusal(error: StsError) -> ValidationError:
    """IAM's code and message, then fedmock's explanation, as one form error."""
    lines = [f"{error.code}: {error.message}", *error.explanation]
    return ValidationError(" — ".join(dict.fromkeys(lines)))


def _changed() -> None:
    """What state.py does after each change: other workers reload, this one too."""
    IamGeneration.bump()
    state.forget()


class _IamAdmin(admin.ModelAdmin):
    """Deletes go through IAM's bookkeeping, one row or a selection at once."""

    def delete_model(self, request, obj) -> None:
        with transaction.atomic():
            obj.delete()
            _changed()

    def delete_queryset(self, request, queryset) -> None:
        with transaction.atomic():
            queryset.delete()
            _changed()


# --- SAML providers -------------------------------------------------------------------


class SamlProviderForm(forms.ModelForm):
    class Meta:
        model = SamlProvider
        fields = ["account_id", "name", "metadata"]
        help_texts = {
            "account_id": "The 12-digit account; fixed once created, as in IAM.",
            "name": "IAM's provider name ([A-Za-z0-9._-], 1-128); fixed once created.",
            "metadata": "The IdP's SAML metadata XML (1,000 to 10,000,000 characters, "
            "UTF-8 without a BOM, at most 10 signing certificates: R15, R16).",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "metadata" in self.fields:
            self.fields["metadata"].strip = False  # IAM stores the document as given

    def clean(self):
        data = super().clean()
        creating = self.instance.pk is None
        account = data.get("account_id") if creating else self.instance.account_id
        name = data.get("name") if creating else self.instance.name
        try:
            if creating and account is not None:
                if not state.ACCOUNT.fullmatch(account):
                    raise state.validation_error(account, "accountId", "Member must be 12 digits")
                if name is not None and not state.PROVIDER_NAME.fullmatch(name):
                    raise state.validation_error(
                        name, "name", "Member must satisfy regular expression pattern: [\\w._-]+"
                    )
                if SamlProvider.objects.filter(account_id=account).count() >= state.MAX_PROVIDERS:
                    raise state.errors.LIMIT_EXCEEDED.error(
                        f"account {account} has {state.MAX_PROVIDERS} SAML providers",
                        quota="SAMLProvidersPerAccount",
                        limit=state.MAX_PROVIDERS,
                    )
            if "metadata" in data:
                state.check_metadata(data["metadata"])
        except StsError as error:
            raise _refusal(error) from None
        return data


@admin.register(SamlProvider)
class SamlProviderAdmin(_IamAdmin):
    form = SamlProviderForm
    list_display = ["name", "account_id", "arn", "entity_id", "created_at"]
    list_filter = ["account_id"]
    search_fields = ["name", "account_id"]
    ordering = ["account_id", "name"]
    readonly_fields = ["arn", "entity_id", "certificate_fingerprints", "created_at"]

    def get_fieldsets(self, request, obj=None):
        return [
            (None, {"fields": ["account_id", "name", "metadata"], "description": CLI_HINT}),
            ("From the metadata", {"fields": ["arn", "entity_id", "certificate_fingerprints"]}),
            ("History", {"fields": ["created_at"]}),
        ]

    def get_readonly_fields(self, request, obj=None):
        fixed = ["account_id", "name"] if obj is not None else []
        return [*fixed, *self.readonly_fields]

    @admin.display(description="ARN")
    def arn(self, provider: SamlProvider) -> str:
        return provider.arn if provider.pk else "—"

    @staticmethod
    def _parsed(provider: SamlProvider):
        if provider.metadata == state.PENDING_SNAPSHOT:
            return None
        try:
            return parse_idp_metadata(provider.metadata.encode())
        except SamlError as error:  # stored before a check existed, or by hand
            return error

    @admin.display(description="entityID")
    def entity_id(self, provider: SamlProvider) -> str:
        parsed = self._parsed(provider)
        if parsed is None:
            return "— (fedmock's own metadata, taken at first use)"
        if isinstance(parsed, SamlError):
            return f"unreadable: {parsed.title}"
        return parsed.entity_id

    @admin.display(description="signing certificates (SHA-256)")
    def certificate_fingerprints(self, provider: SamlProvider) -> str:
        parsed = self._parsed(provider)
        if parsed is None or isinstance(parsed, SamlError):
            return self.entity_id(provider)
        return format_html_join(
            "",
            "<div><code>{}</code></div>",
            ((fingerprint(pem),) for pem in parsed.signing_certificates),
        )

    def save_model(self, request, obj, form, change) -> None:
        if change:
            if "metadata" in form.changed_data:
                state.update_provider(obj.arn, obj.metadata)
            return
        state.create_provider(obj.account_id, obj.name, obj.metadata, clock.now())
        saved = SamlProvider.objects.get(account_id=obj.account_id, name=obj.name)
        obj.pk, obj.created_at = saved.pk, saved.created_at


# --- roles ----------------------------------------------------------------------------


class RoleForm(forms.ModelForm):
    class Meta:
        model = Role
        fields = [
            "account_id",
            "name",
            "path",
            "max_session_duration",
            "description",
            "trust_policy",
        ]
        help_texts = {
            "name": "IAM's role name ([\\w+=,.@-], 1-64; unique per account ignoring case); "
            "fixed once created.",
            "max_session_duration": "Seconds, 3600 to 43200.",
            "trust_policy": "The role's trust policy (JSON), parsed as the local STS evaluates it.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "trust_policy" in self.fields:
            self.fields["trust_policy"].strip = False  # IAM stores the document as given

    def clean(self):
        data = super().clean()
        creating = self.instance.pk is None
        account = data.get("account_id") if creating else self.instance.account_id
        name = data.get("name") if creating else self.instance.name
        path = data.get("path") if creating else self.instance.path
        duration = data.get("max_session_duration")
        try:
            if creating and account is not None and not state.ACCOUNT.fullmatch(account):
                raise state.validation_error(account, "accountId", "Member must be 12 digits")
            if None not in (name, path, duration):
                state.check_role_params(name, path, duration)
            if "trust_policy" in data:
                state.check_trust_policy(data["trust_policy"])
            if creating and account is not None and name is not None:
                roles = Role.objects.filter(account_id=account)
                if roles.filter(name__iexact=name).exists():
                    raise state.errors.ROLE_EXISTS.error(
                        f"account {account} has a role named {name} (role names ignore case)",
                        name=name,
                    )
                if roles.count() >= state.MAX_ROLES:
                    raise state.errors.LIMIT_EXCEEDED.error(
                        f"account {account} has {state.MAX_ROLES} roles",
                        quota="RolesPerAccount",
                        limit=state.MAX_ROLES,
                    )
        except StsError as error:
            raise _refusal(error) from None
        return data


@admin.register(Role)
class RoleAdmin(_IamAdmin):
    form = RoleForm
    list_display = ["name", "account_id", "arn", "max_session_duration", "created_at"]
    list_filter = ["account_id"]
    search_fields = ["name", "account_id", "role_id", "description"]
    ordering = ["account_id", "name"]
    readonly_fields = ["arn", "role_id", "formatted_trust_policy", "created_at"]

    def get_fieldsets(self, request, obj=None):
        return [
            (
                None,
                {
                    "fields": ["account_id", "name", "path", "max_session_duration", "description"],
                    "description": CLI_HINT,
                },
            ),
            ("Trust policy", {"fields": ["formatted_trust_policy", "trust_policy"]}),
            ("Identity", {"fields": ["arn", "role_id", "created_at"]}),
        ]

    def get_readonly_fields(self, request, obj=None):
        fixed = ["account_id", "name", "path"] if obj is not None else []
        return [*fixed, *self.readonly_fields]

    # The explainer page (explain_admin.py): it checks sts.view_role itself.
    def get_urls(self):
        view = self.admin_site.admin_view(lambda request: explain_admin.explain_view(self, request))
        return [path("explain/", view, name="sts_role_explain"), *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        context = {"can_explain": explain_admin.may_explain(request), **(extra_context or {})}
        return super().changelist_view(request, context)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        context = {"can_explain": explain_admin.may_explain(request), **(extra_context or {})}
        return super().changeform_view(request, object_id, form_url, context)

    @admin.display(description="ARN")
    def arn(self, role: Role) -> str:
        return role.arn if role.pk else "—"

    @admin.display(description="trust policy (formatted)")
    def formatted_trust_policy(self, role: Role) -> str:
        try:
            text = json.dumps(json.loads(role.trust_policy), indent=2, ensure_ascii=False)
        except ValueError:
            text = role.trust_policy
        return format_html("<pre>{}</pre>", text) if text else "—"

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            state.create_role(
                obj.account_id,
                obj.name,
                obj.trust_policy,
                clock.now(),
                path=obj.path,
                max_session_duration=obj.max_session_duration,
                description=obj.description,
            )
            saved = Role.objects.get(account_id=obj.account_id, name=obj.name)
            obj.pk, obj.role_id, obj.created_at = saved.pk, saved.role_id, saved.created_at
            return
        # The same calls as the IAM API's UpdateRole and UpdateAssumeRolePolicy.
        with transaction.atomic():
            state.update_role(obj.account_id, obj.name, obj.max_session_duration, obj.description)
            if "trust_policy" in form.changed_data:
                state.update_trust_policy(obj.account_id, obj.name, obj.trust_policy)


# --- issued credentials ---------------------------------------------------------------


class CredentialStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("valid", "valid"), ("expired", "expired")]

    def queryset(self, request, queryset):
        now = clock.now()  # the IdP's clock, which the door judges them by
        if self.value() == "valid":
            return queryset.filter(expires_at__gt=now)
        if self.value() == "expired":
            return queryset.filter(expires_at__lte=now)
        return queryset


@admin.register(IssuedCredential)
class IssuedCredentialAdmin(admin.ModelAdmin):
    fields = [
        "access_key_id",
        "arn",
        "role",
        "account_id",
        "user_id",
        "action",
        "source_identity",
        "session_tags",
        "transitive_tag_keys",
        "issued_at",
        "expires_at",
        "status",
    ]
    readonly_fields = fields
    list_display = ["access_key_id", "arn", "action", "issued_at", "expires_at", "status"]
    list_filter = [CredentialStatusFilter, "action", "account_id"]
    search_fields = ["access_key_id", "arn", "user_id", "source_identity"]
    date_hierarchy = "issued_at"
    ordering = ["-issued_at"]

    @admin.display(description="status")
    def status(self, credential: IssuedCredential) -> str:
        return "valid" if clock.now() < credential.expires_at else "expired"

    @admin.display(description="role ARN")
    def role(self, credential: IssuedCredential) -> str:
        # arn:aws:sts::<account>:assumed-role/<role name>/<session>; the path is the role's.
        kind, _, rest = credential.arn.partition(":assumed-role/")
        row = (
            Role.objects.filter(account_id=credential.account_id, name=rest.split("/")[0]).first()
            if rest
            else None
        )
        return row.arn if row else "—"

    def lookup_allowed(self, lookup, value, request=None) -> bool:
        if lookup.split("__")[0] in SECRET_FIELDS:
            return False
        return super().lookup_allowed(lookup, value, request)

    def has_add_permission(self, request) -> bool:
        return False  # only the STS issues them

    def has_change_permission(self, request, obj=None) -> bool:
        return False
