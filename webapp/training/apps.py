from django.apps import AppConfig


class TrainingConfig(AppConfig):
    """Training jobs from the browser: SFT, preference (DPO/SPIN) and reward models."""

    name = "webapp.training"
