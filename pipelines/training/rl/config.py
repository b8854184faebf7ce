"""RL from a reward model: the config of the stage (PPO as ALMoST's RLSF, or TRL's critic-free RLOO/GRPO).

Nothing here imports torch: the web process validates an RL config with this module alone.

Defaults and where they come from:
- PPO: the settings of TRL's PPOTrainer (`trl.experimental.ppo`, last shipped in TRL 1.12; ALMoST's
  authors used PPO and promised a TRL version): learning rate 3e-6, KL coefficient 0.05 (per-token
  penalty, k1 estimator), 4 PPO epochs per batch, clip range 0.2, value clip 0.2, value loss weight
  0.1, gamma 1, lambda 0.95, temperature 0.7, 53 response tokens.
- RLOO and GRPO: TRL 1.16's RLOOTrainer / GRPOTrainer with the reward model as the reward function;
  KL coefficient 0.05 (RLOO's default; GRPO's own default is 0, which drops the reference: we keep
  0.05 so every algorithm reports and pays KL, and say so on the form).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from pipelines.common.config_fields import known_fields
from pipelines.errors import InvalidConfigError
from pipelines.training.arguments import TrainingArgs, check_choice

RL_ALGORITHMS = ("ppo", "rloo", "grpo")
MAX_RESPONSE_TOKENS = 4096
MAX_GROUP = 64


def rl_training_defaults() -> TrainingArgs:
    """TRL's PPO settings where TrainingArgs has them: lr 3e-6, linear decay, AdamW; batch of 8 prompts a step.

    `max_length`/`max_prompt_length` bound the prompt (responses are bounded by `max_new_tokens`).
    """
    return TrainingArgs(
        learning_rate=3e-6,
        num_epochs=1.0,
        lr_scheduler="linear",
        optimizer="adamw",
        per_device_batch_size=8,
        max_length=1024,
        max_prompt_length=512,
        save_steps=10,
        adapter="full",
    )


@dataclass(frozen=True)
class PPOSettings:
    """The PPO-only knobs (TRL PPOConfig names and defaults)."""

    num_ppo_epochs: int = 4
    """Passes of the PPO update over each batch of rollouts."""
    num_mini_batches: int = 1
    """Each batch of rollouts is split into this many mini-batches per PPO epoch."""
    cliprange: float = 0.2
    """Policy ratio clip (epsilon)."""
    cliprange_value: float = 0.2
    """Value prediction clip around the rollout's values."""
    vf_coef: float = 0.1
    """Weight of the value loss in the total loss."""
    gamma: float = 1.0
    """Discount over response tokens."""
    lam: float = 0.95
    """GAE lambda."""
    whiten_rewards: bool = False
    """Whiten the per-token rewards before GAE (TRL's default: off; advantages are always whitened)."""

    def __post_init__(self) -> None:
        for name in ("num_ppo_epochs", "num_mini_batches"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 64:
                raise InvalidConfigError(f"ppo.{name} must be a whole number between 1 and 64, got {value!r}")
        for name in ("cliprange", "cliprange_value", "vf_coef"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 10:
                raise InvalidConfigError(f"ppo.{name} must be in (0, 10], got {value!r}")
        for name in ("gamma", "lam"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise InvalidConfigError(f"ppo.{name} must be in [0, 1], got {value!r}")
        if not isinstance(self.whiten_rewards, bool):
            raise InvalidConfigError(f"ppo.whiten_rewards must be true or false, got {self.whiten_rewards!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PPOSettings:
        return cls(**known_fields(cls, data, "ppo settings"))


@dataclass(frozen=True)
class RLConfig:
    """Reinforcement learning of a policy against a reward model, with a KL pull to a frozen reference.

    The reference is the policy as it starts (ALMoST: the SFT model). Each optimizer step samples
    responses for `training.per_device_batch_size` prompts (x `num_generations` for RLOO/GRPO), scores
    them with the reward model and updates the policy. Held-out prompts are scored every `eval_steps`.
    """

    algorithm: str = "ppo"
    """ppo (ALMoST's RLSF: a value model, per-token KL penalty), rloo or grpo (TRL's critic-free trainers)."""
    training: TrainingArgs = field(default_factory=rl_training_defaults)
    """Optimisation and hardware settings; `max_steps` counts RL steps (one batch of prompts each); -1 runs
    `num_epochs` passes over the training prompts (`rl_steps`)."""
    kl_coef: float = 0.05
    """Strength of the KL penalty to the reference (PPO's kl_coef, RLOO's and GRPO's beta)."""
    max_new_tokens: int = 53
    """Longest sampled response in tokens (TRL PPO's response_length); a response cut here is counted."""
    temperature: float = 0.7
    """Sampling temperature of the rollouts (TRL PPO's default)."""
    top_p: float = 1.0
    """Nucleus sampling of the rollouts; 1.0 samples the whole distribution."""
    num_generations: int = 4
    """RLOO/GRPO: responses per prompt compared with each other (the group); PPO samples one per prompt."""
    missing_eos_penalty: float | None = None
    """Subtracted from the reward of a response that never ends (cut at `max_new_tokens`); None: no penalty."""
    held_out_prompts: int = 16
    """Prompts kept out of training, on which reward, KL and length are measured (0: none)."""
    eval_steps: int = 10
    """Held-out figures every this many steps (and at the start and the end)."""
    samples_per_eval: int = 3
    """Held-out responses saved at each evaluation, so reward hacking shows as it happens."""
    reward_batch_size: int = 8
    """(prompt, response) pairs per reward model forward pass."""
    ppo: PPOSettings = field(default_factory=PPOSettings)
    """PPO-only settings (ignored by RLOO/GRPO, which say so in their log)."""

    def __post_init__(self) -> None:
        if not isinstance(self.training, TrainingArgs):
            raise InvalidConfigError("training must be a TrainingArgs or a JSON object of its fields")
        if not isinstance(self.ppo, PPOSettings):
            raise InvalidConfigError("ppo must be a PPOSettings or a JSON object of its fields")
        check_choice("algorithm", self.algorithm, RL_ALGORITHMS)
        _check_number("kl_coef", self.kl_coef, 0, 10)
        _check_number("temperature", self.temperature, 0.01, 5)
        _check_number("top_p", self.top_p, 0.01, 1)
        _check_whole("max_new_tokens", self.max_new_tokens, 1, MAX_RESPONSE_TOKENS)
        _check_whole("num_generations", self.num_generations, 1, MAX_GROUP)
        _check_whole("held_out_prompts", self.held_out_prompts, 0, 10_000)
        _check_whole("eval_steps", self.eval_steps, 1, 1_000_000)
        _check_whole("samples_per_eval", self.samples_per_eval, 0, 100)
        _check_whole("reward_batch_size", self.reward_batch_size, 1, 4096)
        if self.missing_eos_penalty is not None:
            _check_number("missing_eos_penalty", self.missing_eos_penalty, 0, 1000)
        if self.algorithm in ("rloo", "grpo") and self.num_generations < 2:
            raise InvalidConfigError(
                f"{self.algorithm} compares responses to the same prompt: num_generations must be at least 2",
                field="num_generations",
            )

    def rl_steps(self, train_prompts: int, processes: int = 1) -> int:
        """Steps the run takes: `max_steps`, or enough batches (of every process) for `num_epochs` passes."""
        if self.training.max_steps > 0:
            return self.training.max_steps
        return max(1, math.ceil(self.training.num_epochs * train_prompts / (self.prompts_per_step * processes)))

    @property
    def prompts_per_step(self) -> int:
        """Prompts sampled per optimizer step on one device."""
        return self.training.per_device_batch_size * self.training.gradient_accumulation_steps

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RLConfig:
        values = known_fields(cls, data, "rl config")
        if isinstance(values.get("training"), dict):
            values["training"] = TrainingArgs.from_dict(values["training"])
        if isinstance(values.get("ppo"), dict):
            values["ppo"] = PPOSettings.from_dict(values["ppo"])
        return cls(**values)


def _check_number(name: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidConfigError(f"{name} must be a number in [{low}, {high}], got {value!r}", field=name)


def _check_whole(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidConfigError(f"{name} must be a whole number between {low} and {high}, got {value!r}", field=name)
