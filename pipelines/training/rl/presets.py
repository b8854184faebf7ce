"""RL presets: named sets of settings laid over the RL stage's defaults (`RLConfig`).

Each is a `pipelines.common.presets.Preset`, like every method's presets. The settings stay data
(`training`, `options`) so the form can show what a preset sets without applying it. Imports no
torch: the web form lists and applies them.

The 8-GPU preset is RLOO: TRL's critic-free trainers run as a torchrun group (one rank per GPU, each
with its own copies of the models), while our PPO runs in one process. There is no full fine-tuning 7B
preset: `rl_memory_estimate` puts full RLOO of a 7B policy far over one 80 GB GPU (training the policy
alone needs ~147 GiB, and DDP does not shard it), so it would only fail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from pipelines.common.presets import Preset, preset_choices, preset_named
from pipelines.training.memory import estimate_memory_fits
from pipelines.training.rl.config import RLConfig, rl_training_defaults

GIB = 1024**3
BYTES_PER_WEIGHT = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass(frozen=True)
class RLPreset(Preset[RLConfig]):
    """A preset whose `apply` lays `training` (TrainingArgs fields) and `options` (RLConfig fields) over a config."""

    apply: Callable[[RLConfig], RLConfig] = field(init=False, repr=False, compare=False)
    training: dict[str, Any] = field(default_factory=dict)
    """TrainingArgs fields the preset sets; `lora` is merged into the config's LoRA settings."""
    options: dict[str, Any] = field(default_factory=dict)
    """RLConfig fields outside `training` (algorithm, kl_coef, max_new_tokens ...)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "apply", self._lay_over)

    def _lay_over(self, config: RLConfig) -> RLConfig:
        return RLConfig.from_dict(self.lay_over_values(config.to_dict()))

    def lay_over_values(self, values: dict[str, Any]) -> dict[str, Any]:
        """The preset's settings over a config's values (a dict, so a config not yet valid can be layered)."""
        return lay_over(values, {**self.options, "training": self.training})


def lay_over(values: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`changes` over `values`, nested objects (training, training.lora, ppo) merged key by key."""
    merged = dict(values)
    for key, value in changes.items():
        base = merged.get(key)
        merged[key] = lay_over(base, value) if isinstance(value, dict) and isinstance(base, dict) else value
    return merged


def rl_default_values() -> dict[str, Any]:
    """The RL stage's defaults as config values (TRL's PPO settings), for the presets and the form to lay over."""
    return {"training": rl_training_defaults().to_dict()}


_7B_LORA: dict[str, Any] = {
    # A 7B policy with LoRA on CUDA, 8 prompts a step per device: one GPU or one rank of a group alike.
    "max_steps": 200,
    "per_device_batch_size": 8,
    "gradient_accumulation_steps": 1,
    "learning_rate": 1e-5,
    "save_steps": 20,
    "logging_steps": 1,
    "adapter": "lora",
    "lora": {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": "all-linear"},
    "gradient_checkpointing": True,
    "dtype": "auto",
    "device": "cuda",
}

RL_PRESETS: tuple[RLPreset, ...] = (
    RLPreset(
        "cpu-demo",
        "6 PPO steps of the bundled 135M model on CPU with LoRA (r=16 on every linear layer, lr 1e-4) and gradient "
        "checkpointing, about 3 minutes on 2 cores: for seeing the mechanics (rollouts, rewards, the KL, the "
        "held-out curve and samples), not for results. No frozen copy is loaded: the reference and the reward "
        "model are read through the policy's and the value model's adapters switched off.",
        training={
            "max_steps": 6,
            "per_device_batch_size": 4,
            "gradient_accumulation_steps": 1,
            "learning_rate": 1e-4,
            "max_length": 512,
            "max_prompt_length": 256,
            "save_steps": 3,
            "logging_steps": 1,
            "adapter": "lora",
            "lora": {"r": 16, "alpha": 32, "dropout": 0.0, "target_modules": "all-linear"},
            # The update's activations were most of the stage's memory: 4 rollouts of ~300 tokens through
            # the policy and the value model.
            "gradient_checkpointing": True,
            "dtype": "float32",
            "device": "cpu",
        },
        options={
            "algorithm": "ppo",
            "max_new_tokens": 32,
            "held_out_prompts": 8,
            "eval_steps": 3,
            "samples_per_eval": 3,
            "reward_batch_size": 8,
        },
    ),
    RLPreset(
        "7b-lora-1gpu",
        "LoRA r=16 on every linear layer of the policy, bf16, gradient checkpointing, 8 prompts a step, 256-token "
        "responses, 200 steps, lr 1e-5, KL 0.05. For a 7B policy and a 7B reward model on one 80 GB GPU: about "
        "48 GiB with PPO (policy, reward model and a LoRA value model; the reference is the policy with its "
        "adapter off), about 44 GiB with RLOO or GRPO (no value model; a frozen reference for the held-out KL).",
        training=_7B_LORA,
        options={"max_new_tokens": 256, "kl_coef": 0.05, "eval_steps": 20},
    ),
    RLPreset(
        "7b-lora-8gpu-rloo",
        "RLOO on a worker that owns 8 GPUs: one rank per GPU (torchrun), each with the LoRA policy, its frozen "
        "reference and the reward model (about 44 GiB per 80 GB GPU for a 7B policy and a 7B reward model); "
        "8 prompts x 4 responses per GPU, 64 prompts (256 rollouts) a step, 256-token responses, 200 steps, "
        "lr 1e-5, KL 0.05, bf16, gradient checkpointing. PPO runs in one process, so this preset is RLOO.",
        training=_7B_LORA,
        options={"algorithm": "rloo", "num_generations": 4, "max_new_tokens": 256, "kl_coef": 0.05, "eval_steps": 20},
    ),
)


def rl_preset(name: str) -> RLPreset:
    """The RL preset called `name`, or a config error (on the `preset` field) listing the ones there are."""
    return cast(RLPreset, preset_named(RL_PRESETS, name))


def rl_preset_choices() -> list[tuple[str, str]]:
    """(name, description) pairs, in declaration order, for a form's choice field."""
    return preset_choices(RL_PRESETS)


def rl_memory_estimate(
    config: RLConfig, policy_parameter_count: int, reward_parameter_count: int | None = None
) -> dict[str, int]:
    """Bytes one device holds for an RL run, by model: what the training memory rule cannot see alone.

    The policy trains (`estimate_memory_fits`: weights, gradients, optimizer state, +25% activations);
    the reference is a frozen copy of the policy and the reward model a frozen scorer, each its
    weights in the compute dtype; PPO's value model trains like the policy (its own adapter with
    LoRA), starting from the reward model. `reward_parameter_count` defaults to the policy's.

    PPO with LoRA reads its reference through the policy's adapter switched off, so the reference costs
    nothing; it also reads the reward model through the value model's adapter when the value model
    starts from it (same vocabulary), which the counts alone cannot tell, so the reward model stays
    counted: an upper bound by one frozen copy.
    """
    args = config.training
    dtype = "float32" if args.dtype == "auto" and args.device == "cpu" else args.dtype
    dtype = "bfloat16" if dtype == "auto" else dtype
    reward_count = reward_parameter_count or policy_parameter_count
    lora = args.adapter == "lora"

    def trained(parameter_count: int) -> int:
        return estimate_memory_fits(
            parameter_count, dtype, args.device, lora, qlora=args.qlora, available_bytes=1
        ).required_bytes

    parts = {
        "policy": trained(policy_parameter_count),
        "reference": 0 if lora and config.algorithm == "ppo" else policy_parameter_count * BYTES_PER_WEIGHT[dtype],
        "reward_model": reward_count * BYTES_PER_WEIGHT[dtype],
    }
    if config.algorithm == "ppo":
        parts["value_model"] = trained(reward_count)
    parts["total"] = sum(parts.values())
    return parts
