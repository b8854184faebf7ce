from django.apps import AppConfig


class TrainingConfig(AppConfig):
    """Training jobs from the browser: SFT, preference (DPO/SPIN), reward models and RL from a reward model."""

    name = "webapp.training"

    def ready(self) -> None:
        from webapp.runs.registry import register

        from .kinds import TRAIN_PREFERENCE, TRAIN_REWARD, TRAIN_RL, TRAIN_SFT

        register(TRAIN_SFT, TRAIN_PREFERENCE, TRAIN_REWARD, TRAIN_RL)
