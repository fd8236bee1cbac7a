from django.apps import AppConfig


class IdpConfig(AppConfig):
    name = "idp"
    verbose_name = "Identity provider"

    def ready(self) -> None:
        from . import checks, signals  # noqa: F401
