from django.apps import AppConfig


class AlmostConfig(AppConfig):
    name = "webapp.almost"

    def ready(self) -> None:
        from webapp.runs.registry import register

        from .kinds import ALMOST

        register(ALMOST)
