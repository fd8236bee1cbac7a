from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.template.response import TemplateResponse
from django.utils import timezone

from .models import ALL_SCOPES, SCOPES, ApiToken, refuse_unless_staff


class IssueTokenForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(name, f"{name}: {meaning}") for name, meaning in SCOPES.items()],
        initial=list(ALL_SCOPES),
        widget=forms.CheckboxSelectMultiple,
        help_text="The user's model permissions still apply to every scope.",
    )

    class Meta:
        model = ApiToken
        fields = ["user", "name", "description", "scopes", "expires_at"]

    def clean_user(self):
        user = self.cleaned_data["user"]
        try:
            refuse_unless_staff(user)
        except forms.ValidationError as error:
            raise forms.ValidationError(error.messages) from error
        return user

    def clean_scopes(self):
        # In the order of SCOPES, so that the list reads the same wherever it is shown.
        return [name for name in SCOPES if name in self.cleaned_data["scopes"]]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Issue (the token is shown once, on the page that answers the form), list and revoke."""

    form = IssueTokenForm
    list_display = ["token", "user", "name", "scope_list", "created_at", "expires_at", "status"]
    list_filter = ["revoked_at", "expires_at"]
    search_fields = ["prefix", "name", "user__username"]
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        # A token's power is fixed when it is issued: revoke it and issue another.
        return ["token", "user", "scopes", "created_at", "expires_at", "revoked_at"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["user", "name", "description", "scopes", "expires_at"]
        return [
            "token",
            "user",
            "name",
            "description",
            "scopes",
            "created_at",
            "expires_at",
            "revoked_at",
        ]

    def get_form(self, request, obj=None, **kwargs):
        if obj is not None:
            kwargs["form"] = forms.ModelForm  # only the name and description change
        return super().get_form(request, obj, **kwargs)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            users = get_user_model().objects.filter(is_staff=True, is_active=True)
            # A token carries its user's permissions: issuing one for somebody else would
            # hand out their powers, so only a superuser (who has them all) may.
            if not request.user.is_superuser:
                users = users.filter(pk=request.user.pk)
            kwargs["queryset"] = users.order_by("username")
            kwargs["initial"] = request.user.pk
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.issued_text = obj.set_secret()
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        # Shown in this page's body and nowhere else: a message would carry the token in the
        # messages cookie until the next page is rendered.
        return TemplateResponse(
            request,
            "admin/api/apitoken/issued.html",
            {
                **self.admin_site.each_context(request),
                "title": f"New API token for {obj.user.username}",
                "opts": self.model._meta,
                "token": obj,
                "text": obj.issued_text,
            },
        )

    @admin.display(description="token", ordering="prefix")
    def token(self, token: ApiToken) -> str:
        return token.shown

    @admin.display(description="scopes")
    def scope_list(self, token: ApiToken) -> str:
        return ", ".join(token.scopes)

    @admin.display(description="status")
    def status(self, token: ApiToken) -> str:
        if token.revoked_at is not None:
            return "revoked"
        return "expired" if token.refusal() else "valid"

    @admin.action(description="Revoke the selected tokens", permissions=["change"])
    def revoke(self, request, queryset):
        now = timezone.now()
        revoked = sum(token.revoke(now) for token in queryset)
        self.message_user(request, f"Revoked {revoked} token(s).", messages.SUCCESS)
