from django import forms
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import ValidationError
from django.db.models import Count

from .models import Group, User, UserAttribute


class AttributeInline(admin.TabularInline):
    model = UserAttribute
    extra = 1


class MembershipInline(admin.TabularInline):
    model = Group.members.through
    extra = 1
    verbose_name = "directory group membership"
    verbose_name_plural = "directory group memberships (direct; nested groups add more)"
    autocomplete_fields = ["group"]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    inlines = [AttributeInline, MembershipInline]
    list_display = ["username", "email", "first_name", "last_name", "is_active", "is_staff"]
    list_filter = ["is_active", "is_staff", "authn_method", "directory_groups"]
    search_fields = ["username", "email", "first_name", "last_name", "attributes__value"]
    fieldsets = [
        *DjangoUserAdmin.fieldsets,
        ("Sign-in (SAML authentication context)", {"fields": ["authn_method", "totp"]}),
    ]
    readonly_fields = ["totp"]
    actions = ["remove_totp"]

    @admin.display(description="TOTP second factor")
    def totp(self, user: User) -> str:
        from idp import mfa

        if mfa.enrolled(user):
            return (
                "Enrolled: every password sign-in asks for a code. To remove it, select the "
                "user in the list and run 'Remove TOTP devices'."
            )
        return (
            "Not enrolled (the user enrols at /accounts/mfa/; fixtures and the API provision one)."
        )

    @admin.action(
        description="Remove TOTP devices (sign-in by password alone again)",
        permissions=["change"],
    )
    def remove_totp(self, request, queryset):
        from django_otp.plugins.otp_totp.models import TOTPDevice

        removed = TOTPDevice.objects.filter(user__in=queryset).delete()[0]
        self.message_user(request, f"Removed {removed} TOTP device(s).")


class GroupForm(forms.ModelForm):
    class Meta:
        model = Group
        fields = ["name", "description", "members", "member_of"]

    def clean_member_of(self):
        parents = self.cleaned_data["member_of"]
        self.instance.check_parents(parents)
        return parents


@admin.register(Group)
class GroupAdmin(admin.ModelAdmin):
    form = GroupForm
    list_display = ["name", "description", "member_count"]
    search_fields = ["name", "description"]
    list_filter = ["member_of"]
    filter_horizontal = ["members", "member_of"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(direct_members=Count("members"))

    @admin.display(description="direct members", ordering="direct_members")
    def member_count(self, group: Group) -> int:
        return group.direct_members


class AdminLoginForm(AdminAuthenticationForm):
    """The admin's own password form asks for no code, so a user with a TOTP device is sent
    to the login page (password, then the code) and comes back to the admin signed in."""

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        from idp import mfa

        if mfa.enrolled(user):
            raise ValidationError(
                "This user has a TOTP second factor, which this form does not ask for. Sign "
                "in at /accounts/login/?next=/admin/ (password, then the code).",
                code="mfa_required",
            )


admin.site.login_form = AdminLoginForm
