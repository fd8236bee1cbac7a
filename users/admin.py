from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
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
    list_filter = ["is_active", "is_staff", "directory_groups"]
    search_fields = ["username", "email", "first_name", "last_name", "attributes__value"]


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
