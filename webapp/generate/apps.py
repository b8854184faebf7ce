from django.apps import AppConfig


class GenerateConfig(AppConfig):
    """Generate runs: answer a prompt set with a registered model, n samples each."""

    name = "webapp.generate"

    def ready(self) -> None:
        from webapp.runs.registry import register

        from .kinds import GENERATE

        register(GENERATE)
