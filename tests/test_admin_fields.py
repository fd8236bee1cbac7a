"""Every editable model field can be reached in the admin (issue 8, item 10).

The README tells operators to tick "encrypt assertions", which the form lacked.
This compares, for every registered ModelAdmin and each of its inlines, the
model's editable fields with what the change form shows (editable or read-only).
"""

import pytest
from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets
from django.test import RequestFactory

from idp.models import ServiceProvider
from users.models import User

# Fields an admin may leave out on purpose, with the reason. Keep it short.
_AXES_LOGS = "django-axes' own read-only admin; fedmock keeps no axes access logs (settings.py)"
NOT_IN_ADMIN: dict[str, str] = {
    "axes.AccessLog.logout_time": _AXES_LOGS,
    "axes.AccessLog.session_hash": _AXES_LOGS,
    "axes.AccessFailureLog.locked_out": _AXES_LOGS,
    "sts.IssuedCredential.secret_access_key": "a secret: on no admin page (idp/sts/admin.py)",
    "sts.IssuedCredential.session_token": "a secret: on no admin page (idp/sts/admin.py)",
    "oidc.Client.id": "DOT declares its primary key itself, so Django counts it as editable",
    "oidc.Client.authorization_grant_type": "DOT's one grant; grant_types is ours (models.py)",
    "otp_totp.TOTPDevice.last_t": "django-otp's admin: the last step a code was used in, kept "
    "by verification so that a code works once",
    "otp_totp.TOTPDevice.key": "a TOTP secret: on no change page (OTP_ADMIN_HIDE_SENSITIVE_DATA); "
    "the add form takes one",
}
# Fields an inline leaves out on purpose, by (parent, inline model).
NOT_IN_INLINE: dict[tuple[str, str], set[str]] = {
    # An SP's rules emit SAML attributes; JWT rules are edited under Claim rules.
    ("idp.ServiceProvider", "idp.ClaimRule"): {"emits", "claim_type", "oidc_client"},
}


def editable_fields(model, parent=None) -> set[str]:
    fields = {
        field.name
        for field in model._meta.get_fields()
        if (field.concrete or field.many_to_many)
        and not field.auto_created
        and field.editable
        # An inline's link to the object it is shown in is set by the admin itself.
        and not (parent is not None and field.is_relation and field.related_model is parent)
    }
    return {name for name in fields if f"{model._meta.label}.{name}" not in NOT_IN_ADMIN}


def shown_fields(model_admin, request, obj) -> set[str]:
    shown = set(flatten_fieldsets(model_admin.get_fieldsets(request, obj)))
    # A field in the fieldsets but neither in the form nor read-only would not render.
    form_fields = set(model_admin.get_form(request, obj).base_fields)
    readonly = set(model_admin.get_readonly_fields(request, obj))
    assert shown <= form_fields | readonly, shown - form_fields - readonly
    return shown


def inline_fields(inline, request, obj) -> set[str]:
    shown = set(flatten_fieldsets(inline.get_fieldsets(request, obj)))
    form_fields = set(inline.get_formset(request, obj).form.base_fields)
    readonly = set(inline.get_readonly_fields(request, obj))
    assert shown <= form_fields | readonly, shown - form_fields - readonly
    return shown


ADMINS = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


@pytest.fixture
def request_(db):
    request = RequestFactory().get("/admin/")
    request.user = User.objects.create_superuser("root", password="x")
    return request


@pytest.mark.parametrize(
    ("model", "model_admin"), ADMINS, ids=[model._meta.label for model, _ in ADMINS]
)
def test_every_editable_field_is_in_the_change_form(request_, model, model_admin):
    obj = model()
    missing = editable_fields(model) - shown_fields(model_admin, request_, obj)
    assert not missing, f"{model._meta.label} admin lacks {sorted(missing)}"
    for inline in model_admin.get_inline_instances(request_, obj):
        missing = editable_fields(inline.model, parent=model) - inline_fields(inline, request_, obj)
        missing -= NOT_IN_INLINE.get((model._meta.label, inline.model._meta.label), set())
        assert not missing, f"{inline.model._meta.label} inline lacks {sorted(missing)}"


def test_the_exclusions_name_real_fields():
    for label in NOT_IN_ADMIN:
        model_label, name = label.rsplit(".", 1)
        model = next(m for m in admin.site._registry if m._meta.label == model_label)
        model._meta.get_field(name)


def test_encryption_can_be_switched_on_in_the_admin(client, demo):
    client.login(username="admin", password="admin")
    sp = ServiceProvider.objects.get(entity_id="urn:amazon:webservices")
    page = client.get(f"/admin/idp/serviceprovider/{sp.pk}/change/").content.decode()
    assert ">Encryption</h2>" in page
    for name in ("encrypt_assertions", "encryption_certificate", "encryption_algorithm"):
        assert f'name="{name}"' in page
