"""Training presets: named sets of settings laid over a trainer's paper defaults.

Each is a `pipelines.common.presets.Preset`, like every method's presets. Imports no torch: the web
form lists and applies them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from pipelines.common.presets import Preset, preset_named
from pipelines.errors import InvalidConfigError
from pipelines.training.arguments import TrainingArgs
from pipelines.training.config import PreferenceConfig, RewardConfig, SFTConfig

DEEPSPEED_DIR = Path(__file__).resolve().parent / "deepspeed"
ZERO3_CONFIG_PATH = DEEPSPEED_DIR / "zero3.json"
ZERO2_CONFIG_PATH = DEEPSPEED_DIR / "zero2.json"

TrainerConfig = SFTConfig | PreferenceConfig | RewardConfig
TRAINERS = ("sft", "preference", "reward")
"""The kinds of training, as `validate_dataset_fields` and the training form name them."""


def trainer_kind(config: TrainerConfig) -> str:
    """The kind of training a config is for: "sft", "preference" or "reward"."""
    return {SFTConfig: "sft", PreferenceConfig: "preference", RewardConfig: "reward"}[type(config)]


@dataclass(frozen=True)
class TrainingPreset(Preset[TrainerConfig]):
    """A preset whose `apply` lays `training` (TrainingArgs fields) and `options` (trainer fields) over a config.

    The settings stay data rather than a function so the form can show them, tell whether the
    preset sets a field (the reward model's accumulation, the prompt format) and measure the
    lengths of a data-sized preset, all without applying it.
    """

    apply: Callable[[TrainerConfig], TrainerConfig] = field(init=False, repr=False, compare=False)
    training: dict[str, Any] = field(default_factory=dict)
    """TrainingArgs fields the preset sets; `lora` is merged into the config's LoRA settings."""
    options: dict[str, Any] = field(default_factory=dict)
    """Trainer-level fields (outside TrainingArgs) the preset also sets."""
    trainers: tuple[str, ...] = TRAINERS
    """The kinds of training the preset is made for; applying it to another is refused."""
    sized_from_data: bool = False
    """max_length / max_prompt_length are measured from the dataset when the run is built."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "apply", self._lay_over)

    def _lay_over(self, config: TrainerConfig) -> TrainerConfig:
        trainer = trainer_kind(config)
        if trainer not in self.trainers:
            raise InvalidConfigError(
                f"preset {self.name!r} is for {' or '.join(self.trainers)} training, not {trainer}", field="preset"
            )
        training = config.training.to_dict()
        for key, value in self.training.items():
            training[key] = {**training[key], **value} if isinstance(value, dict) and key == "lora" else value
        config = replace(config, training=TrainingArgs.from_dict(training))
        return replace(config, **self.options) if self.options else config


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

_FULL_8GPU = {
    # Full fine-tuning of a 7B model on a worker owning 8 GPUs; the presets differ in how they split it.
    "per_device_batch_size": 8,
    "gradient_accumulation_steps": 1,
    "save_steps": 500,
    "logging_steps": 10,
    "adapter": "full",
    "gradient_checkpointing": True,
    "dtype": "bfloat16",
    "device": "cuda",
}

TRAINING_PRESETS: tuple[TrainingPreset, ...] = (
    TrainingPreset(
        "tiny-cpu-demo",
        "20 LoRA steps on CPU in float32 with gradient checkpointing; for the embedded 135M model and demos.",
        training={
            "max_steps": 20,
            "per_device_batch_size": 2,
            "gradient_accumulation_steps": 1,
            "max_length": 256,
            "max_prompt_length": 128,
            "save_steps": 10,
            "logging_steps": 1,
            "adapter": "lora",
            "lora": {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": "all-linear"},
            # ALMoST's reward model on the demo seeds: peak 3.5 -> 2.3 GB in a fresh process, ~10% slower.
            "gradient_checkpointing": True,
            "dtype": "float32",
            "device": "cpu",
        },
    ),
    TrainingPreset(
        "7b-lora-1gpu",
        "LoRA r=16 on all linear layers, bf16, gradient checkpointing, effective batch 16 on one GPU.",
        training={
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
    ),
    TrainingPreset(
        "7b-full-8gpu-zero3",
        "Full fine-tuning, bf16, DeepSpeed ZeRO-3 across 8 GPUs (a worker with REFINERY_TRAINING_DEVICES=0,...,7).",
        training={**_FULL_8GPU, "deepspeed_config": str(ZERO3_CONFIG_PATH)},
    ),
    TrainingPreset(
        "7b-full-8gpu-zero2",
        "Full fine-tuning, bf16, DeepSpeed ZeRO-2 across 8 GPUs: optimizer state and gradients split, "
        "weights whole on each GPU (faster than ZeRO-3 where a 7B model's weights fit; a worker owning 8 GPUs).",
        training={**_FULL_8GPU, "deepspeed_config": str(ZERO2_CONFIG_PATH)},
    ),
    TrainingPreset(
        "7b-full-8gpu-fsdp",
        "Full fine-tuning, bf16, PyTorch FSDP (full shard, one wrap per decoder layer) across 8 GPUs: "
        "ZeRO-3's split without DeepSpeed (a worker owning 8 GPUs).",
        training={
            **_FULL_8GPU,
            "trainer_overrides": {
                "fsdp": "full_shard auto_wrap",
                "fsdp_config": {"transformer_layer_cls_to_wrap": "auto", "use_orig_params": True},
            },
        },
    ),
    TrainingPreset(
        "7b-lora-8gpu-ddp",
        "LoRA r=16 on all linear layers, bf16, plain DDP across 8 GPUs (each GPU holds the whole model; "
        "the batch is split): effective batch 8 x 2 x 8 = 128.",
        training={
            "per_device_batch_size": 8,
            "gradient_accumulation_steps": 2,
            "save_steps": 200,
            "logging_steps": 10,
            "adapter": "lora",
            "lora": {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": "all-linear"},
            "gradient_checkpointing": True,
            "dtype": "bfloat16",
            "device": "cuda",
        },
    ),
    TrainingPreset(
        "augcon-sft",
        "AugCon's SFT (finetune.py): LoRA r32 alpha 32, lr 5e-5, 4 epochs, batch 4, 50 warmup steps then "
        "constant, wd 0.01, loss on all tokens. Plain LoRA: the paper's 4-bit base needs a GPU (augcon-sft-qlora).",
        training={**_AUGCON_SFT, "qlora": False},
        options={"completion_only_loss": False},  # finetune.py: labels = every input id
        trainers=("sft",),
    ),
    TrainingPreset(
        "augcon-sft-qlora",
        "augcon-sft on a 4-bit NF4 base (QLoRA) as the paper; needs a CUDA worker with bitsandbytes.",
        training={**_AUGCON_SFT, "qlora": True, "device": "cuda"},
        options={"completion_only_loss": False},
        trainers=("sft",),
    ),
    TrainingPreset(
        "aft-aggregation",
        "Aggregation SFT: max_length and max_prompt_length sized from the dataset's longest rows, "
        "so no aggregation prompt is cut; where a cut is forced, drafts lose their ends, never the header or "
        "instruction.",
        # Aggregation prompts hold several full drafts: the lengths come from the dataset, and a prompt
        # that must be cut loses the ends of its drafts only.
        training={"over_length": "cut"},
        trainers=("sft",),
        sized_from_data=True,
    ),
)


def training_preset(name: str) -> TrainingPreset:
    """The training preset called `name`, or a config error (on the `preset` field) listing the ones there are."""
    return cast(TrainingPreset, preset_named(TRAINING_PRESETS, name))
