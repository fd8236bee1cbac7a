"""Login throttling (django-axes) and Django's model backend over the user cache."""

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.shortcuts import render

from . import cache
from .saml.errors import SamlError


class LoginThrottle(AxesStandaloneBackend):
    """django-axes' lockout check, first in AUTHENTICATION_BACKENDS, for every HTTP login.

    Every door that takes a password (the login page, the admin's) passes its request.
    A call without one (the test client's `login()`, a shell) has no client address to
    throttle by, and axes would refuse it outright; it goes on to the model backend.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


class CachedModelBackend(ModelBackend):
    """Every request resolves its user; from memory, until that user changes (cache.py)."""

    def get_user(self, user_id):
        user = cache.user(user_id)
        return user if user is not None and self.user_can_authenticate(user) else None


def lockout(request, response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: the lockout as our error page (a SOAP Fault at the ECP door),
    with status 429."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    error = SamlError(
        "Too many failed sign-ins",
        f"After {settings.AXES_FAILURE_LIMIT} wrong passwords for this user name from your "
        f"address, signing in as this user from here is paused for {minutes} minutes.",
        f"Wait {minutes} minutes and try again. An administrator can lift the lock at once "
        "with `python manage.py axes_reset_username USERNAME`, or in the admin under "
        "Axes → Access attempts.",
        status=429,
    )
    from . import ecp  # ecp imports django.contrib.auth, which loads this module

    if ecp.is_soap_door(request):  # an ECP client reads a SOAP Fault, not a page
        response = ecp.fault_response(error)
        response["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
        return response
    return render(request, "error.html", {"error": error}, status=error.status)
