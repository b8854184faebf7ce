from django.apps import AppConfig


class SpinConfig(AppConfig):
    name = "webapp.spin"

    def ready(self) -> None:
        from webapp.runs.registry import register

        from .kinds import SPIN

        register(SPIN)
