from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from .models import (
    AssertionConsumerService,
    AuditEvent,
    ClaimRule,
    PersistentNameID,
    ServiceProvider,
    SigningKey,
)
from .registry import register_from_metadata
from .saml.errors import SamlError


class EndpointInline(admin.TabularInline):
    model = AssertionConsumerService
    extra = 0


class ClaimRuleInline(admin.StackedInline):
    model = ClaimRule
    extra = 0
    fields = [
        ("order", "enabled", "kind"),
        ("attribute_name", "name_format", "friendly_name"),
        "source",
        ("group_pattern", "value_template"),
    ]


class MetadataImportForm(forms.Form):
    metadata = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 20, "cols": 100}),
        help_text="Paste the SP's metadata XML (an md:EntityDescriptor).",
    )
    name = forms.CharField(required=False, help_text="Display name; defaults to the entity ID.")


@admin.register(ServiceProvider)
class ServiceProviderAdmin(admin.ModelAdmin):
    list_display = ["name", "entity_id", "profile", "enabled", "allow_idp_initiated"]
    list_filter = ["profile", "enabled", "allow_idp_initiated"]
    search_fields = ["name", "entity_id"]
    inlines = [EndpointInline, ClaimRuleInline]
    readonly_fields = ["metadata_xml", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "entity_id", "enabled", "profile", "iam_provider_name"]}),
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
        ("Signed requests", {"fields": ["request_certificate", "require_signed_requests"]}),
        ("Metadata", {"classes": ["collapse"], "fields": ["metadata_xml", "updated_at"]}),
    ]

    def get_urls(self):
        return [
            path(
                "import-metadata/",
                self.admin_site.admin_view(self.import_metadata),
                name="idp_serviceprovider_import",
            )
        ] + super().get_urls()

    def import_metadata(self, request):
        form = MetadataImportForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                sp, created = register_from_metadata(
                    form.cleaned_data["metadata"].encode(), form.cleaned_data["name"]
                )
            except SamlError as error:
                form.add_error("metadata", f"{error.title}. {error.detail} {error.hint}")
            else:
                verb = "Registered" if created else "Updated"
                self.message_user(request, f"{verb} {sp}.", messages.SUCCESS)
                return redirect(reverse("admin:idp_serviceprovider_change", args=[sp.pk]))
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "title": "Import service provider metadata",
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/idp/serviceprovider/import.html", context)


@admin.register(SigningKey)
class SigningKeyAdmin(admin.ModelAdmin):
    list_display = ["fingerprint", "state", "not_valid_after", "days_left", "created_at"]
    list_filter = ["state"]
    readonly_fields = ["fingerprint", "state", "not_valid_before", "not_valid_after", "created_at"]

    @admin.display(description="days left")
    def days_left(self, key: SigningKey) -> int:
        return (key.not_valid_after - timezone.now()).days

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "flow", "username", "sp_entity_id", "outcome", "roles"]
    list_filter = ["outcome", "flow", "sp_entity_id"]
    search_fields = ["username", "sp_entity_id", "request_id", "response_id", "detail"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(PersistentNameID)
class PersistentNameIDAdmin(admin.ModelAdmin):
    list_display = ["user", "service_provider", "value"]
    search_fields = ["user__username", "value"]
    list_filter = ["service_provider"]
