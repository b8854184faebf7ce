"""The training layer every method uses: SFT, preference (DPO family, SPIN) and reward models.

Importing this package is light (configs only); the trainers live in `sft`, `preference`, `reward`
and `merge`, which import torch, transformers and PEFT, and are imported by workers only.
"""

from pipelines.training.config import LoraSettings, PreferenceConfig, RewardConfig, SFTConfig, TrainingArgs
from pipelines.training.layouts import validate_dataset_fields
from pipelines.training.memory import MemoryEstimate, estimate_memory_fits
from pipelines.training.presets import TRAINING_PRESETS, TrainingPreset, training_preset
from pipelines.training.result import TrainingResult

__all__ = [
    "TRAINING_PRESETS",
    "LoraSettings",
    "MemoryEstimate",
    "PreferenceConfig",
    "RewardConfig",
    "SFTConfig",
    "TrainingArgs",
    "TrainingPreset",
    "TrainingResult",
    "estimate_memory_fits",
    "training_preset",
    "validate_dataset_fields",
]
