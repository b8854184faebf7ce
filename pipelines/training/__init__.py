"""The training layer every method uses: SFT, preference (DPO family, SPIN), reward models and RL against them.

Importing this package is light (configs, presets and `run_training`, which loads its trainer when a
run starts); the trainers live in `sft`, `preference`, `reward` and `merge`, which import torch,
transformers and PEFT, and are imported by workers only.
"""

from pipelines.training.arguments import LoraSettings, TrainingArgs
from pipelines.training.config import PreferenceConfig, RewardConfig, SFTConfig
from pipelines.training.layouts import validate_dataset_fields
from pipelines.training.memory import MemoryEstimate, estimate_memory_fits
from pipelines.training.presets import TRAINING_PRESETS, TrainingPreset, training_preset
from pipelines.training.result import TrainingResult
from pipelines.training.rl.config import RLConfig
from pipelines.training.run import TrainingInputs, run_training

__all__ = [
    "TRAINING_PRESETS",
    "LoraSettings",
    "MemoryEstimate",
    "PreferenceConfig",
    "RLConfig",
    "RewardConfig",
    "SFTConfig",
    "TrainingArgs",
    "TrainingInputs",
    "TrainingPreset",
    "TrainingResult",
    "estimate_memory_fits",
    "run_training",
    "training_preset",
    "validate_dataset_fields",
]
