import secrets
import time

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

AUTHN_INSTANT = "fedmock_authn_instant"
SESSION_INDEX = "fedmock_session_index"


@receiver(user_logged_in)
def remember_authentication(sender, request, user, **kwargs):
    """When the user proved who they are: ForceAuthn and AuthnStatement need it."""
    request.session[AUTHN_INSTANT] = time.time()
    request.session[SESSION_INDEX] = "_" + secrets.token_hex(16)
