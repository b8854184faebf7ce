"""SPIN (self-play fine-tuning): the model learns to tell real answers from its own, iteration by iteration."""

from pipelines.spin.config import SPIN_PRESETS, SpinConfig

__all__ = ["SPIN_PRESETS", "SpinConfig"]
