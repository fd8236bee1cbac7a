"""Django's model backend, reading signed-in users from the per-process cache."""

from django.contrib.auth.backends import ModelBackend

from . import config


class CachedModelBackend(ModelBackend):
    """Every request resolves its user; from memory, until that user changes (config.py)."""

    def get_user(self, user_id):
        user = config.user(user_id)
        return user if user is not None and self.user_can_authenticate(user) else None
