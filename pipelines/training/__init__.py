"""The training layer every method uses: SFT, preference (DPO family, SPIN) and reward models.

Importing this package is light (configs only); the trainers live in `sft`, `preference`, `reward`
and `merge`, which import torch, transformers and PEFT, and are imported by workers only.
"""

from pipelines.training.config import LoraSettings, PreferenceConfig, RewardConfig, SFTConfig, TrainingArgs
from pipelines.training.layouts import validate_dataset_fields
from pipelines.training.memory import MemoryEstimate, estimate_memory_fits
from pipelines.training.presets import PRESETS, apply_preset
from pipelines.training.result import TrainingResult

__all__ = [
    "PRESETS",
    "LoraSettings",
    "MemoryEstimate",
    "PreferenceConfig",
    "RewardConfig",
    "SFTConfig",
    "TrainingArgs",
    "TrainingResult",
    "apply_preset",
    "estimate_memory_fits",
    "validate_dataset_fields",
]
