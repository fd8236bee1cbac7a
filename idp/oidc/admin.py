"""OIDC clients in the admin: list, register (the secret is shown once, on the page that
answers the form), grant types and scopes as checkboxes, redirect URIs one per line.

DOT's own admin pages for grants and tokens are removed: they show bearer secrets (codes,
access and refresh tokens), which no admin page here shows.
"""

from django import forms
from django.contrib import admin
from django.template.response import TemplateResponse
from oauth2_provider import models as dot

from .models import GRANT_TYPES, SCOPES, Client

for model in (
    dot.get_access_token_model(),
    dot.get_refresh_token_model(),
    dot.get_grant_model(),
    dot.get_id_token_model(),
    Client,
):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


class ClientForm(forms.ModelForm):
    grant_types = forms.MultipleChoiceField(
        choices=GRANT_TYPES,
        widget=forms.CheckboxSelectMultiple,
        help_text="PKCE (S256) is required for the authorization code.",
    )
    allowed_scopes = forms.MultipleChoiceField(
        choices=[(name, f"{name}: {meaning}") for name, meaning in SCOPES.items()],
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Client
        fields = [  # what the admin edits; its get_fields() adds the read-only ones
            "name",
            "client_id",
            "client_type",
            "grant_types",
            "allowed_scopes",
            "redirect_uris",
            "skip_authorization",
            "post_logout_redirect_uris",
            "allowed_origins",
            "user",
        ]
        widgets = {
            "redirect_uris": forms.Textarea(attrs={"rows": 3}),
            "post_logout_redirect_uris": forms.Textarea(attrs={"rows": 2}),
            "allowed_origins": forms.Textarea(attrs={"rows": 2}),
        }
        help_texts = {
            "redirect_uris": "One per line. A request's redirect_uri must match one exactly.",
            "post_logout_redirect_uris": "One per line.",
            "allowed_origins": "One per line (CORS for the token endpoint).",
            "client_id": "Leave the generated one, or give your own (what RPs send).",
        }

    def _one_per_line(self, name: str) -> str:
        # DOT reads the lists split on any whitespace; store them one per line.
        return "\n".join(self.cleaned_data[name].split())

    def clean_redirect_uris(self) -> str:
        return self._one_per_line("redirect_uris")

    def clean_post_logout_redirect_uris(self) -> str:
        return self._one_per_line("post_logout_redirect_uris")

    def clean_allowed_origins(self) -> str:
        return self._one_per_line("allowed_origins")

    def _in_order(self, name: str, choices) -> list[str]:
        chosen = self.cleaned_data[name]
        return [value for value, _ in choices if value in chosen]

    def clean_grant_types(self) -> list[str]:
        return self._in_order("grant_types", GRANT_TYPES)

    def clean_allowed_scopes(self) -> list[str]:
        return self._in_order("allowed_scopes", SCOPES.items())


# Set once at registration, or by DOT's registration flows that fedmock does not offer.
MANAGED = ("client_secret", "hash_client_secret", "algorithm", "registration_source")
DOT_ONLY = ("cimd_expires_at",)


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    form = ClientForm
    list_display = ("name", "client_id", "client_type", "grant_types", "allowed_scopes")
    search_fields = ("name", "client_id")
    raw_id_fields = ("user",)
    fields = (*ClientForm.Meta.fields, *MANAGED, *DOT_ONLY)

    def get_fields(self, request, obj=None):
        if obj is None:  # the secret is generated, the rest is fixed for a new client
            return [name for name in self.fields if name not in MANAGED + DOT_ONLY]
        return list(self.fields)

    def get_readonly_fields(self, request, obj=None):
        # A client ID is fixed once made, as the API has it: IAM OIDC providers and trust
        # policies name it, and they would not follow a rename.
        return [] if obj is None else ["client_id", *MANAGED, *DOT_ONLY]

    def save_model(self, request, obj, form, change):
        if not change:
            # DOT hashes the secret as it saves; the plain one exists only until then.
            obj.issued_secret = obj.client_secret
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        # Shown in this page's body and nowhere else (a message would keep the secret in
        # the messages cookie until the next page), as the API-token admin does.
        return TemplateResponse(
            request,
            "oauth2_provider/client_created.html",
            {
                **self.admin_site.each_context(request),
                "title": f"New OIDC client {obj.name or obj.client_id}",
                "opts": self.model._meta,
                "client": obj,
                "secret": getattr(obj, "issued_secret", ""),
                "confidential": obj.client_type == Client.CLIENT_CONFIDENTIAL,
            },
        )
