"""The admin's rules, for the API: a staff user's token, the token's scope, and the model
permission the request exercises."""

from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS, DjangoModelPermissions

from .models import ApiToken


def scope_needed(request, view) -> str:
    """The scope a request needs: the view's `required_scope` (a name or {METHOD: name});
    by default `read` for GET, HEAD and OPTIONS and `write` for the rest."""
    required = getattr(view, "required_scope", None)
    if isinstance(required, dict):
        required = required.get(request.method)
    return required or ("read" if request.method in SAFE_METHODS else "write")


class StaffModelPermissions(DjangoModelPermissions):
    """Staff only; the token must carry the scope the request needs; reads need
    `view_<model>` and writes the add/change/delete permission, exactly as the admin asks.
    Views without a queryset (operations) name their own permissions in
    `required_permissions` (a list, or {METHOD: list}), and their scope in `required_scope`.
    """

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
        if not (user and user.is_authenticated and user.is_active):
            return False  # DRF answers 401 (not authenticated) for an anonymous request
        if not user.is_staff:
            raise exceptions.PermissionDenied(
                f"The token's user {user.username} is not staff; only staff users' tokens are "
                "accepted."
            )
        # Scopes narrow a token; a request that did not come with one (tests that force
        # authentication) has only its user's permissions to go by.
        if isinstance(request.auth, ApiToken):
            scope = scope_needed(request, view)
            if scope not in request.auth.scopes:
                raise exceptions.PermissionDenied(
                    f"This token lacks the `{scope}` scope (it has: "
                    f"{', '.join(request.auth.scopes)}); issue one with `--scope {scope}`."
                )
        required = getattr(view, "required_permissions", None)
        if required is not None:
            needed = required.get(request.method, ()) if isinstance(required, dict) else required
        else:
            if getattr(view, "_ignore_model_permissions", False):
                return True
            model = self._queryset(view).model
            needed = self.get_required_permissions(request.method, model)
        if not user.has_perms(needed):
            lacking = [name for name in needed if not user.has_perm(name)]
            raise exceptions.PermissionDenied(
                f"The token's user {user.username} lacks the permission "
                f"{', '.join(lacking)}, as in the admin."
            )
        return True
