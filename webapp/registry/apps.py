from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "webapp.registry"

    def ready(self) -> None:
        """Hand the endpoint policy from settings to the pipelines, which enforce it in the worker too."""
        from pipelines.llm.endpoint_policy import configure

        from .services import endpoint_policy

        configure(endpoint_policy())
