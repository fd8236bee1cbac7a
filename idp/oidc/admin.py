"""OIDC clients in the admin. DOT's own admin pages for grants and tokens are removed: they
show bearer secrets (codes, access and refresh tokens), which no admin page here shows."""

from django.contrib import admin
from oauth2_provider import models as dot

from .models import Client

for model in (
    dot.get_access_token_model(),
    dot.get_refresh_token_model(),
    dot.get_grant_model(),
    dot.get_id_token_model(),
    Client,
):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    list_display = ("name", "client_id", "client_type", "grant_types", "skip_authorization")
    search_fields = ("name", "client_id")
    raw_id_fields = ("user",)
    exclude = ("authorization_grant_type",)
