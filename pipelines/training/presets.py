"""Training presets: named sets of settings laid over a trainer's paper defaults.

Imports no torch: the web form lists and applies them.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from pipelines.errors import InvalidConfigError
from pipelines.training.config import PreferenceConfig, RewardConfig, SFTConfig, TrainingArgs

DEEPSPEED_DIR = Path(__file__).resolve().parent / "deepspeed"
ZERO3_CONFIG_PATH = DEEPSPEED_DIR / "zero3.json"


# Presets are data: overrides of TrainingArgs fields, applied over the trainer's own defaults.
PRESETS: dict[str, dict[str, Any]] = {
    "tiny-cpu-demo": {
        "max_steps": 20,
        "per_device_batch_size": 2,
        "gradient_accumulation_steps": 1,
        "max_length": 256,
        "max_prompt_length": 128,
        "save_steps": 10,
        "logging_steps": 1,
        "adapter": "lora",
        "lora": {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": "all-linear"},
        "dtype": "float32",
        "device": "cpu",
    },
    "7b-lora-1gpu": {
        "per_device_batch_size": 4,
        "gradient_accumulation_steps": 4,
        "save_steps": 200,
        "logging_steps": 10,
        "adapter": "lora",
        "lora": {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": "all-linear"},
        "gradient_checkpointing": True,
        "dtype": "bfloat16",
        "device": "cuda",
    },
    "7b-full-8gpu-zero3": {
        "per_device_batch_size": 8,
        "gradient_accumulation_steps": 1,
        "save_steps": 500,
        "logging_steps": 10,
        "adapter": "full",
        "gradient_checkpointing": True,
        "deepspeed_config": str(ZERO3_CONFIG_PATH),
        "dtype": "bfloat16",
        "device": "cuda",
    },
}
_AUGCON_SFT = {
    # quanshr/AugCon finetune.py: lr 5e-5, 4 epochs, batch 4, warmup 50 steps, weight decay 0.01, LoRA r 32
    # alpha 32 all-linear dropout 0.05 on a 4-bit base, DeepSpeed ZeRO-2 whose WarmupLR warms up and then
    # holds the rate (HF's constant_with_warmup).
    "learning_rate": 5e-5,
    "num_epochs": 4.0,
    "max_steps": -1,
    "per_device_batch_size": 4,
    "gradient_accumulation_steps": 1,
    "weight_decay": 0.01,
    "warmup_ratio": 0.0,
    "lr_scheduler": "constant_with_warmup",
    "trainer_overrides": {"warmup_steps": 50},
    "adapter": "lora",
    "lora": {"r": 32, "alpha": 32, "dropout": 0.05, "target_modules": "all-linear"},
}
PRESETS["augcon-sft"] = {**_AUGCON_SFT, "qlora": False}
PRESETS["augcon-sft-qlora"] = {**_AUGCON_SFT, "qlora": True, "device": "cuda"}
PRESETS["aft-aggregation"] = {
    # Aggregation prompts hold several full drafts: the lengths come from the dataset (see
    # DATA_SIZED_PRESETS), and a prompt that must be cut loses the ends of its drafts only.
    "over_length": "cut",
}

PRESET_DESCRIPTIONS = {
    "tiny-cpu-demo": "20 LoRA steps on CPU in float32; for the embedded 135M model and demos.",
    "7b-lora-1gpu": "LoRA r=16 on all linear layers, bf16, gradient checkpointing, effective batch 16 on one GPU.",
    "7b-full-8gpu-zero3": "Full fine-tuning, bf16, DeepSpeed ZeRO-3 across 8 GPUs (launch with accelerate/deepspeed).",
    "augcon-sft": "AugCon's SFT (finetune.py): LoRA r32 alpha 32, lr 5e-5, 4 epochs, batch 4, 50 warmup steps then "
    "constant, wd 0.01, loss on all tokens. Plain LoRA: the paper's 4-bit base needs a GPU (augcon-sft-qlora).",
    "augcon-sft-qlora": "augcon-sft on a 4-bit NF4 base (QLoRA) as the paper; needs a CUDA worker with bitsandbytes.",
    "aft-aggregation": "Aggregation SFT: max_length and max_prompt_length sized from the dataset's longest rows, "
    "so no aggregation prompt is cut; where a cut is forced, drafts lose their ends, never the header or instruction.",
}
PRESET_OPTIONS: dict[str, dict[str, Any]] = {
    "augcon-sft": {"completion_only_loss": False},
    "augcon-sft-qlora": {"completion_only_loss": False},
}
"""Trainer-level fields (outside TrainingArgs) a preset also sets."""
PRESET_TRAINERS: dict[str, tuple[str, ...]] = {
    "augcon-sft": ("sft",),
    "augcon-sft-qlora": ("sft",),
    "aft-aggregation": ("sft",),
}
"""Presets made for one kind of training; the others suit every trainer."""
DATA_SIZED_PRESETS = ("aft-aggregation",)
"""Presets whose max_length / max_prompt_length are measured from the dataset when the run is built."""


def _trainer_of(config: SFTConfig | PreferenceConfig | RewardConfig) -> str:
    return {SFTConfig: "sft", PreferenceConfig: "preference", RewardConfig: "reward"}[type(config)]


def apply_preset(config: SFTConfig | PreferenceConfig | RewardConfig, preset: str) -> Any:
    """The config with the preset's training settings (and trainer options) laid over its current ones."""
    if preset not in PRESETS:
        raise InvalidConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    trainer = _trainer_of(config)
    if trainer not in PRESET_TRAINERS.get(preset, (trainer,)):
        raise InvalidConfigError(
            f"preset {preset!r} is for {' or '.join(PRESET_TRAINERS[preset])} training, not {trainer}"
        )
    training = config.training.to_dict()
    for key, value in PRESETS[preset].items():
        training[key] = {**training[key], **value} if isinstance(value, dict) and key == "lora" else value
    config = replace(config, training=TrainingArgs.from_dict(training))
    options = PRESET_OPTIONS.get(preset, {})
    return replace(config, **options) if options else config
