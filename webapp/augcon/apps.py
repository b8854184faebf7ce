from django.apps import AppConfig


class AugconConfig(AppConfig):
    name = "webapp.augcon"

    def ready(self) -> None:
        from webapp.runs.registry import register

        from .kinds import AUGCON

        register(AUGCON)
