import secrets
import time

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.dispatch import receiver

from . import authn_context

AUTHN_INSTANT = "fedmock_authn_instant"
SESSION_INDEX = "fedmock_session_index"
PICKED_LOGIN = "fedmock_picked"  # set by picker.py: this session proved no password
AUTHN_CLASS = "fedmock_authn_class"  # what the sign-in proved: an authn_context class
# A door that proved more or less than a password sets this on the request before login().
AUTHN_CLASS_ATTRIBUTE = "fedmock_authn_class"
_AS_IF = {"kerberos": authn_context.KERBEROS, "x509": authn_context.X509}


def password_class(user) -> str:
    """A password sign-in, stated as the user's authn_method says (the "as if" methods)."""
    return _AS_IF.get(getattr(user, "authn_method", ""), authn_context.PASSWORD_PROTECTED_TRANSPORT)


@receiver(user_logged_in)
def remember_authentication(sender, request, user, **kwargs):
    """When the user proved who they are: ForceAuthn and AuthnStatement need it."""
    request.session[AUTHN_INSTANT] = time.time()
    # Signing in again in the same session (ForceAuthn, a step-up) keeps its index: the SPs
    # hold it, and single logout must end this browser's session by it. login() flushes the
    # session of another user; a revoked one (even if this worker has not heard yet) is new.
    if not _still_open(request.session.get(SESSION_INDEX)):
        request.session[SESSION_INDEX] = "_" + secrets.token_hex(16)
    request.session[AUTHN_CLASS] = getattr(request, AUTHN_CLASS_ATTRIBUTE, None) or password_class(
        user
    )
    # A password login on top of a picked session proves the user after all.
    request.session.pop(PICKED_LOGIN, None)


def _still_open(session_index: str | None) -> bool:
    from .models import RevokedSession  # here: this module loads before the app registry

    return bool(session_index) and not (
        RevokedSession.objects.filter(session_index=session_index).exists()
    )


@receiver(user_logged_out)
def revoke_session(sender, request, user, **kwargs):
    """A signed cookie cannot be taken back, so the session is refused on the server."""
    from .sessions import revoke  # sessions.py imports this module

    if request is not None:
        revoke(request.session.get(SESSION_INDEX, ""), user.get_username() if user else "")
