from django.apps import AppConfig


class AftConfig(AppConfig):
    name = "webapp.aft"

    def ready(self) -> None:
        from webapp.runs.registry import register

        from .kinds import AFT_DATA, AFT_INFERENCE

        register(AFT_INFERENCE, AFT_DATA)
