import time

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from users.models import User

from . import clock, keys, participants, slo, sso
from .models import (
    AssertionConsumerService,
    AuditEvent,
    ClaimRule,
    PersistentNameID,
    RevokedSession,
    ServiceProvider,
    SigningKey,
    SingleLogoutService,
    SpSession,
)
from .oidc.models import Client
from .oidc.preview import id_token_preview
from .presets import DEFAULT_RULE_SET, RULE_SETS, apply_rule_set
from .registry import register_from_metadata
from .saml import aws
from .saml.errors import SamlError


class EndpointInline(admin.TabularInline):
    model = AssertionConsumerService
    extra = 0


class LogoutEndpointInline(admin.TabularInline):
    """The SP's SingleLogoutService endpoints (imported from its metadata): slo.py sends
    LogoutRequests and LogoutResponses there, HTTP-Redirect preferred."""

    model = SingleLogoutService
    extra = 0


RULE_FIELDSETS = [
    ("order", "enabled", "description"),
    ("condition", "condition_subject", "condition_pattern", "negate"),
    ("source", "value"),
    ("group_pattern", "source_attribute"),
    ("attribute_name", "name_format", "friendly_name"),
]


class ClaimRuleInline(admin.StackedInline):
    """An SP's own rules: SAML rules (a JWT rule belongs to an OIDC client)."""

    model = ClaimRule
    extra = 0
    fields = RULE_FIELDSETS


class IdTokenPreviewForm(forms.Form):
    client = forms.ModelChoiceField(
        label="OIDC client", queryset=Client.objects.order_by("name", "client_id")
    )
    user = forms.ModelChoiceField(queryset=User.objects.order_by("username"))


@admin.register(ClaimRule)
class ClaimRuleAdmin(admin.ModelAdmin):
    """All rules: the global ones, each SP's (SAML) and each OIDC client's (JWT claims)."""

    list_display = [
        "__str__",
        "emits",
        "service_provider",
        "oidc_client",
        "attribute_name",
        "source",
        "condition",
        "enabled",
    ]
    list_filter = ["emits", "service_provider", "oidc_client", "source", "condition", "enabled"]
    search_fields = ["attribute_name", "description", "value", "group_pattern"]
    fields = [("emits", "claim_type"), ("service_provider", "oidc_client"), *RULE_FIELDSETS]

    def get_urls(self):
        view = self.admin_site.admin_view(self.id_token_preview_view)
        return [
            path("id-token-preview/", view, name="idp_claimrule_id_token_preview"),
        ] + super().get_urls()

    def has_id_token_preview_permission(self, request) -> bool:
        """It signs a usable token for any user, as the SAML preview signs a response: the
        same permission, and the right to see the clients."""
        return request.user.has_perm("idp.preview_signed_response") and _has_model_perm(
            request, Client, "view"
        )

    def changelist_view(self, request, extra_context=None):
        context = {"can_preview_id_token": self.has_id_token_preview_permission(request)}
        return super().changelist_view(request, {**context, **(extra_context or {})})

    def id_token_preview_view(self, request):
        _require(self.has_id_token_preview_permission(request))
        form = IdTokenPreviewForm(request.GET or None)
        result = problem = None
        if form.is_valid():
            try:
                result = id_token_preview(
                    form.cleaned_data["user"], form.cleaned_data["client"], clock.now()
                )
            except SamlError as error:
                problem = error
        return _admin_page(
            self,
            request,
            "admin/idp/claimrule/id_token_preview.html",
            "Preview an ID token",
            form=form,
            client=form.cleaned_data["client"] if result else None,
            result=result,
            problem=problem,
        )


class MetadataImportForm(forms.Form):
    metadata = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 20, "cols": 100}),
        help_text="Paste the SP's metadata XML (an md:EntityDescriptor).",
    )
    name = forms.CharField(required=False, help_text="Display name; defaults to the entity ID.")
    rule_set = forms.ChoiceField(
        required=False,
        choices=[("", "keep the SP's rules")]
        + [(slug, rule_set.title) for slug, rule_set in RULE_SETS.items()],
        help_text="For IAM Identity Center, pick its rule set: it also sets the NameID (R19).",
    )


class RuleSetForm(forms.Form):
    rule_set = forms.ChoiceField(
        choices=[(slug, f"{s.title}: {s.description}") for slug, s in RULE_SETS.items()],
        widget=forms.RadioSelect,
    )


class PreviewForm(forms.Form):
    user = forms.ModelChoiceField(queryset=User.objects.order_by("username"))


class CheckResponseForm(forms.Form):
    response = forms.CharField(
        label="SAMLResponse",
        widget=forms.Textarea(attrs={"rows": 12, "cols": 100}),
        help_text="The SAMLResponse form field (base64) or the decoded XML, from any IdP.",
    )
    metadata = forms.CharField(
        label="IdP metadata (optional)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 100}),
        help_text="The metadata IAM imported: the signature and the Issuer are checked against it.",
    )
    # A file, not a text area: a bound form would echo a pasted private key back into the page.
    key = forms.FileField(
        label="SP private key (optional)",
        required=False,
        help_text="The PEM key IAM holds for the SAML provider (R14): an EncryptedAssertion is "
        "decrypted with it, and everything inside is checked too.",
    )

    MAX_KEY_BYTES = 16_384  # R14: IAM's AddPrivateKey takes at most 16,384 characters of PEM

    def clean_key(self) -> bytes | None:
        upload = self.cleaned_data.get("key")
        if not upload:
            return None
        if upload.size > self.MAX_KEY_BYTES:
            raise ValidationError(
                f"The key file is {upload.size} bytes; a PEM private key for IAM is at most "
                f"{self.MAX_KEY_BYTES} characters (R14)."
            )
        return upload.read()


def _has_model_perm(request, model, action: str) -> bool:
    opts = model._meta
    return request.user.has_perm(f"{opts.app_label}.{get_permission_codename(action, opts)}")


def _require(allowed: bool) -> None:
    """Custom views check the permission they exercise, as UserAdmin.user_change_password does."""
    if not allowed:
        raise PermissionDenied


def _admin_page(model_admin, request, template: str, title: str, **context):
    return TemplateResponse(
        request,
        template,
        {
            **model_admin.admin_site.each_context(request),
            "title": title,
            "opts": model_admin.model._meta,
            **context,
        },
    )


@admin.register(ServiceProvider)
class ServiceProviderAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "entity_id",
        "profile",
        "check_policy",
        "enabled",
        "allow_idp_initiated",
        "fault_profile",
    ]
    list_filter = ["profile", "enabled", "allow_idp_initiated"]
    search_fields = ["name", "entity_id"]
    inlines = [EndpointInline, LogoutEndpointInline, ClaimRuleInline]
    readonly_fields = ["metadata_xml", "updated_at"]
    actions = ["apply_rule_set", "preview"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "name",
                    "entity_id",
                    "enabled",
                    "profile",
                    "check_policy",
                    "iam_provider_name",
                ]
            },
        ),
        ("Fault profile (testing only)", {"fields": ["fault_scenario"]}),
        ("NameID", {"fields": ["nameid_format", "nameid_source"]}),
        (
            "Signing",
            {
                "fields": [
                    "sign_assertion",
                    "sign_response",
                    "signature_algorithm",
                    "digest_algorithm",
                    "assertion_lifetime",
                ]
            },
        ),
        ("IdP-initiated", {"fields": ["allow_idp_initiated", "default_relay_state"]}),
        ("Sign-in strength", {"fields": ["require_mfa"]}),
        (
            "Signed requests",
            {
                "fields": [
                    "request_certificate",
                    "require_signed_requests",
                    "ignore_unverifiable_signatures",
                    "request_max_age",
                ]
            },
        ),
        (
            "Encryption",
            {"fields": ["encrypt_assertions", "encryption_certificate", "encryption_algorithm"]},
        ),
        ("Metadata", {"classes": ["collapse"], "fields": ["metadata_xml", "updated_at"]}),
    ]

    @admin.display(description="fault profile", ordering="fault_scenario")
    def save_related(self, request, form, formsets, change):
        """An SP added by hand with no rules gets the generic ones (registry does the same),
        so its first assertion has an AttributeStatement; AWS profiles have their own sets."""
        super().save_related(request, form, formsets, change)
        sp = form.instance
        if not change and sp.profile == ServiceProvider.Profile.GENERIC and not sp.rules.exists():
            apply_rule_set(sp, DEFAULT_RULE_SET)

    def fault_profile(self, sp: ServiceProvider) -> str:
        # Loud on purpose: every response to this SP is broken (docs/scenarios.md).
        return f"⚠ BROKEN: {sp.fault_scenario}" if sp.fault_scenario else "—"

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("import-metadata/", view(self.import_metadata), name="idp_serviceprovider_import"),
            path("check-response/", view(self.check_response), name="idp_check_response"),
            path("<int:pk>/preview/", view(self.preview_view), name="idp_serviceprovider_preview"),
            path(
                "<int:pk>/rule-set/", view(self.rule_set_view), name="idp_serviceprovider_rule_set"
            ),
        ] + super().get_urls()

    # Permissions of the custom views; @admin.action(permissions=[X]) calls has_X_permission.

    def has_preview_signed_response_permission(self, request) -> bool:
        return request.user.has_perm("idp.preview_signed_response")

    def has_apply_rule_set_permission(self, request) -> bool:
        """A rule set changes the SP and replaces its claim rules."""
        return self.has_change_permission(request) and self._may_replace_rules(request)

    def _may_replace_rules(self, request) -> bool:
        return _has_model_perm(request, ClaimRule, "add") and _has_model_perm(
            request, ClaimRule, "delete"
        )

    def has_import_permission(self, request) -> bool:
        """Enough to open the form; what the metadata does decides the rest (see import)."""
        return self.has_add_permission(request) or self.has_change_permission(request)

    def _tool_permissions(self, request) -> dict:
        return {
            "can_preview": self.has_preview_signed_response_permission(request),
            "can_apply_rule_set": self.has_apply_rule_set_permission(request),
            "can_import": self.has_import_permission(request),
        }

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(
            request, {**self._tool_permissions(request), **(extra_context or {})}
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return super().change_view(
            request,
            object_id,
            form_url,
            {**self._tool_permissions(request), **(extra_context or {})},
        )

    @admin.action(description="Apply a ready-made rule set…", permissions=["apply_rule_set"])
    def apply_rule_set(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one service provider.", messages.WARNING)
            return None
        return redirect(reverse("admin:idp_serviceprovider_rule_set", args=[queryset.get().pk]))

    @admin.action(
        description="Preview the response for a user…", permissions=["preview_signed_response"]
    )
    def preview(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one service provider.", messages.WARNING)
            return None
        return redirect(reverse("admin:idp_serviceprovider_preview", args=[queryset.get().pk]))

    def rule_set_view(self, request, pk: int):
        _require(self.has_apply_rule_set_permission(request))
        sp = get_object_or_404(ServiceProvider, pk=pk)
        form = RuleSetForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                rules = apply_rule_set(sp, form.cleaned_data["rule_set"])
            except ValidationError as error:
                form.add_error(None, " ".join(error.messages))
            else:
                self.message_user(request, f"{sp} now has {len(rules)} rules.", messages.SUCCESS)
                return redirect(reverse("admin:idp_serviceprovider_change", args=[sp.pk]))
        return _admin_page(
            self,
            request,
            "admin/idp/serviceprovider/rule_set.html",
            f"Apply a rule set to {sp}",
            form=form,
            sp=sp,
        )

    def preview_view(self, request, pk: int):
        _require(self.has_preview_signed_response_permission(request))
        sp = get_object_or_404(ServiceProvider, pk=pk)
        form = PreviewForm(request.GET or None)
        result = problem = None
        if form.is_valid():
            try:
                result = sso.preview(form.cleaned_data["user"], sp)
            except SamlError as error:
                problem = error
        return _admin_page(
            self,
            request,
            "admin/idp/serviceprovider/preview.html",
            f"Preview: {sp}",
            form=form,
            sp=sp,
            result=result,
            problem=problem,
        )

    def check_response(self, request):
        # It signs and stores nothing, but it is a tool about service providers: the staff
        # who may see those may use it.
        _require(self.has_view_permission(request))
        form = CheckResponseForm(request.POST or None, request.FILES or None)
        findings = problem = None
        if request.method == "POST" and form.is_valid():
            try:
                findings = aws.check_response_with_metadata(
                    form.cleaned_data["response"].encode(),
                    form.cleaned_data["metadata"].encode() or None,
                    now=clock.now(),
                    decryption_key=form.cleaned_data["key"],
                )
            except SamlError as error:
                problem = error
        return _admin_page(
            self,
            request,
            "admin/idp/check_response.html",
            "Check a SAMLResponse",
            form=form,
            findings=findings,
            problem=problem,
            without_metadata=aws.WITHOUT_METADATA
            if findings is not None and not form.cleaned_data["metadata"]
            else "",
        )

    def import_metadata(self, request):
        _require(self.has_import_permission(request))
        form = MetadataImportForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                # Whether the metadata creates or updates an SP is known only once it is
                # read; a step the user may not take rolls the whole import back.
                with transaction.atomic():
                    sp, created = register_from_metadata(
                        form.cleaned_data["metadata"].encode(),
                        form.cleaned_data["name"],
                        form.cleaned_data["rule_set"],
                    )
                    _require(
                        self.has_add_permission(request)
                        if created
                        else self.has_change_permission(request, sp)
                    )
                    if form.cleaned_data["rule_set"]:
                        _require(self._may_replace_rules(request))
            except SamlError as error:
                form.add_error("metadata", f"{error.title}. {error.detail} {error.hint}")
            else:
                verb = "Registered" if created else "Updated"
                self.message_user(request, f"{verb} {sp}.", messages.SUCCESS)
                return redirect(reverse("admin:idp_serviceprovider_change", args=[sp.pk]))
        return _admin_page(
            self,
            request,
            "admin/idp/serviceprovider/import.html",
            "Import service provider metadata",
            form=form,
        )


@admin.register(SigningKey)
class SigningKeyAdmin(admin.ModelAdmin):
    """The rollover, as in `manage.py rotate_key`: stage, activate, retire."""

    list_display = [
        "fingerprint",
        "use",
        "state",
        "role",
        "not_valid_after",
        "days_left",
        "created_at",
    ]
    list_filter = ["use", "state"]
    readonly_fields = [
        "fingerprint",
        "state",
        "not_valid_before",
        "not_valid_after",
        "created_at",
        "state_changed_at",
    ]
    actions = ["activate_key", "retire_key"]

    def get_urls(self):
        stage = self.admin_site.admin_view(self.stage_view)
        return [path("stage/", stage, name="idp_signingkey_stage")] + super().get_urls()

    @admin.display(description="days left")
    def days_left(self, key: SigningKey) -> int:
        return (key.not_valid_after - timezone.now()).days

    def get_queryset(self, request):
        # Whether each row signs, in the list's one query: the signer is per use.
        return super().get_queryset(request).annotate(is_signer=keys.is_signer_expression())

    @admin.display(description="role")
    def role(self, key: SigningKey) -> str:
        return keys.role(key, getattr(key, "is_signer", None))

    def has_add_permission(self, request) -> bool:
        # A row without key material would break signing: keys come only from staging.
        return False

    def has_stage_permission(self, request) -> bool:
        """Staging creates a SigningKey row, so it takes the model's own add permission."""
        return _has_model_perm(request, SigningKey, "add")

    def changelist_view(self, request, extra_context=None):
        context = {"can_stage": self.has_stage_permission(request), **(extra_context or {})}
        return super().changelist_view(request, context)

    # Tests replace it, so that they never sleep.
    sleep = staticmethod(time.sleep)

    def has_delete_permission(self, request, obj=None) -> bool:
        # Hides Delete for a key in use; delete_view and the bulk action say why.
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or not obj.deletion_refusal())

    def delete_view(self, request, object_id, extra_context=None):
        key = self.get_object(request, unquote(object_id))
        if key is not None and super().has_delete_permission(request, key):
            if problem := key.deletion_refusal():
                self.message_user(request, problem, messages.ERROR)
                return redirect(reverse("admin:idp_signingkey_change", args=[key.pk]))
        return super().delete_view(request, object_id, extra_context)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            _, name, description = actions["delete_selected"]
            actions["delete_selected"] = (self.__class__.delete_unused_keys, name, description)
        return actions

    def delete_unused_keys(self, request, queryset):
        """Django's bulk delete, after refusing keys in use as `rotate_key retire` does."""
        problems = [problem for key in queryset if (problem := key.deletion_refusal())]
        for problem in problems:
            self.message_user(request, problem, messages.ERROR)
        if problems:
            return None
        return delete_selected(self, request, queryset)

    def _step(self, request, step, *args) -> None:
        try:
            # Wait for the workers' acknowledgements here, as the command does.
            key = keys.wait_and_retry(
                lambda: step(*args), sleep=self.sleep, patience=keys.HTTP_PATIENCE_SECONDS
            )
        except keys.KeyLifecycleError as error:
            self.message_user(request, str(error), messages.ERROR)
        else:
            # What to do next depends on the use: SAML metadata is pushed to IAM, while
            # verifiers fetch /oidc/jwks by themselves.
            if key.use == SigningKey.Use.JWT:
                next_step = "Verifiers fetch /oidc/jwks by themselves: nothing to push."
            else:
                next_step = (
                    "Push the metadata to IAM (`manage.py sync_iam_provider --name fedmock`)."
                )
            self.message_user(
                request,
                f"{key.get_use_display()} key {key.fingerprint[:16]} is now {key.state}. "
                f"{next_step}",
                messages.SUCCESS,
            )

    def stage_view(self, request):
        _require(self.has_stage_permission(request))
        if request.method == "POST":
            use = request.POST.get("use", SigningKey.Use.SAML)
            if use not in SigningKey.Use.values:
                self.message_user(
                    request,
                    f"{use!r} is no key use; stage a {' or '.join(SigningKey.Use.values)} key.",
                    messages.ERROR,
                )
            else:
                self._step(request, lambda: keys.stage(use=use))
        return redirect(reverse("admin:idp_signingkey_changelist"))

    @admin.action(description="Activate the selected next key", permissions=["change"])
    def activate_key(self, request, queryset):
        for key in queryset:
            self._step(request, keys.activate, key.fingerprint)

    @admin.action(description="Retire the selected keys", permissions=["change"])
    def retire_key(self, request, queryset):
        for key in queryset:
            self._step(request, keys.retire, key.fingerprint)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "flow",
        "username",
        "sp_entity_id",
        "outcome",
        "roles",
        "fault",
        "summary",
    ]
    list_filter = ["outcome", "flow", "sp_entity_id"]
    search_fields = ["username", "sp_entity_id", "request_id", "response_id", "detail"]
    date_hierarchy = "created_at"

    @admin.display(description="fault scenario")
    def fault(self, event: AuditEvent) -> str:
        """sso.py opens the detail of a deliberately broken response with FAULT …."""
        first = event.detail.partition("\n")[0]
        return "⚠ " + first.partition(": ")[0] if first.startswith("FAULT ") else ""

    @admin.display(description="detail")
    def summary(self, event: AuditEvent) -> str:
        """The first line: a refusal's title, or the local STS's "Code: message"; the
        rest (the STS's explanation) is on the event's page and searchable."""
        first = event.detail.partition("\n")[0]
        return first if len(first) <= 160 else first[:159] + "…"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(PersistentNameID)
class PersistentNameIDAdmin(admin.ModelAdmin):
    list_display = ["user", "service_provider", "value"]
    search_fields = ["user__username", "value"]
    list_filter = ["service_provider"]


@admin.register(SpSession)
class SpSessionAdmin(admin.ModelAdmin):
    """Which SPs got an assertion in which IdP session (read-only), and a user's open sessions
    with an "end" button: a real single logout, run through the staff member's browser."""

    list_display = [
        "username",
        "session_index",
        "sp_entity_id",
        "name_id",
        "created_at",
        "ended_at",
        "open_sessions",
    ]
    list_filter = ["sp_entity_id"]
    search_fields = ["username", "session_index", "sp_entity_id", "name_id"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="open sessions")
    def open_sessions(self, row: SpSession):
        from django.utils.html import format_html

        url = reverse("admin:idp_spsession_user", args=[row.username])
        return format_html('<a href="{}">{}\'s sessions</a>', url, row.username)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("user/<str:username>/", view(self.user_view), name="idp_spsession_user"),
            path("end/", view(self.end_view), name="idp_spsession_end"),
        ] + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        participants.flush()  # this process's batched records first
        return super().changelist_view(request, extra_context)

    def user_view(self, request, username: str):
        _require(self.has_view_permission(request))
        participants.flush()
        revoked = RevokedSession.objects.values_list("session_index", flat=True)
        # A NUL is no user name, and PostgreSQL refuses it in a query (a 500).
        found = SpSession.objects.none() if "\x00" in username else SpSession.objects
        rows = (
            found.filter(username=username, ended_at__isnull=True)
            .exclude(session_index__in=revoked)
            .order_by("session_index", "created_at")
        )
        grouped: dict[str, list[SpSession]] = {}
        for row in rows:
            grouped.setdefault(row.session_index, []).append(row)
        return _admin_page(
            self,
            request,
            "admin/idp/spsession/user.html",
            f"IdP sessions of {username}",
            username=username,
            sessions=sorted(grouped.items(), key=lambda item: item[1][0].created_at, reverse=True),
            can_end=request.user.has_perm("idp.end_session"),
        )

    def end_view(self, request):
        """POST only, with the idp.end_session permission: revoke the IdP session at once,
        then send every SP in it a LogoutRequest through this browser."""
        _require(request.method == "POST" and request.user.has_perm("idp.end_session"))
        participants.flush()
        session_index = request.POST.get("session_index", "")[:64]
        found = SpSession.objects.none() if "\x00" in session_index else SpSession.objects
        rows = found.filter(session_index=session_index)
        username = rows.values_list("username", flat=True).first()
        if not session_index or username is None:
            messages.error(request, f"No IdP session {session_index!r} is recorded.")
            return redirect("admin:idp_spsession_changelist")
        round_ = slo.end_session(
            session_index,
            username,
            return_url=reverse("admin:idp_spsession_user", args=[username]),
        )
        return redirect("slo-continue", round_.id)
