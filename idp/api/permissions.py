"""The admin's rules, for the API: a staff user's token, and the model permission it exercises."""

from rest_framework.permissions import DjangoModelPermissions


class StaffModelPermissions(DjangoModelPermissions):
    """Staff only; reads need `view_<model>` and writes the add/change/delete permission,
    exactly as the admin asks. Views without a queryset (operations) name their own
    permission in `required_permissions`."""

    perms_map = {
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": [],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "POST": ["%(app_label)s.add_%(model_name)s"],
        "PUT": ["%(app_label)s.change_%(model_name)s"],
        "PATCH": ["%(app_label)s.change_%(model_name)s"],
        "DELETE": ["%(app_label)s.delete_%(model_name)s"],
    }

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active and user.is_staff):
            return False
        required = getattr(view, "required_permissions", None)
        if required is not None:
            needed = required.get(request.method, ()) if isinstance(required, dict) else required
            return user.has_perms(needed)
        return super().has_permission(request, view)
