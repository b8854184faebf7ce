from django.apps import AppConfig


class EvaluationConfig(AppConfig):
    name = "webapp.evaluation"

    def ready(self) -> None:
        from webapp.runs.registry import register

        from .kinds import EVALUATION

        register(EVALUATION)
