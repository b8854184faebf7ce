"""The training layer's method configs: SFT, preference (DPO family, SPIN) and reward models, each with
its paper's defaults.

Their shared optimisation settings (`TrainingArgs`, `LoraSettings`) live in `arguments.py`. Nothing here
imports torch: the web process validates a config with this module alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pipelines.common.config_fields import known_fields
from pipelines.errors import InvalidConfigError
from pipelines.training.arguments import MAX_TRAINING_STEPS, TrainingArgs, check_choice

PREFERENCE_LOSSES = ("sigmoid", "spin", "ipo", "hinge")


def _from_dict_with_training(cls: type, data: dict[str, Any], where: str) -> Any:
    values = known_fields(cls, data, where)
    if isinstance(values.get("training"), dict):
        values["training"] = TrainingArgs.from_dict(values["training"])
    return cls(**values)


def _check_training(training: Any) -> None:
    """`training` is a TrainingArgs once `from_dict` has read it; a dict passed to the constructor is not."""
    if not isinstance(training, TrainingArgs):
        raise InvalidConfigError("training must be a TrainingArgs or a JSON object of its fields")


def _check_held_out(eval_fraction: float, eval_steps: int) -> None:
    """The held-out share and evaluation interval the preference and reward trainers both take."""
    if not 0.0 <= eval_fraction < 1.0:
        raise InvalidConfigError(f"eval_fraction must be in [0, 1), got {eval_fraction}")
    if isinstance(eval_steps, bool) or not isinstance(eval_steps, int):
        raise InvalidConfigError(f"eval_steps must be a whole number, got {eval_steps!r}")
    if not 0 <= eval_steps <= MAX_TRAINING_STEPS:
        raise InvalidConfigError(f"eval_steps must be between 0 and {MAX_TRAINING_STEPS}, got {eval_steps}")


def _sft_training_defaults() -> TrainingArgs:
    # ALMoST's SFT on RM-selected demonstrations: lr 2e-5, 3 epochs, max length 512.
    return TrainingArgs(learning_rate=2e-5, num_epochs=3.0, max_length=512, max_prompt_length=384)


def preference_training_defaults() -> TrainingArgs:
    # SPIN's zephyr-7b config (also DPO's usual one): lr 5e-7, linear, warmup 0.1, RMSprop, 3 epochs,
    # max length 1024, max prompt length 512.
    return TrainingArgs(
        learning_rate=5e-7,
        num_epochs=3.0,
        warmup_ratio=0.1,
        lr_scheduler="linear",
        optimizer="rmsprop",
        max_length=1024,
        max_prompt_length=512,
        per_device_batch_size=8,
    )


REWARD_EFFECTIVE_BATCH = 128
"""ALMoST's reward model steps on 128 pairs: 4 per device x 8 accumulation x 4 GPUs."""


def _reward_training_defaults() -> TrainingArgs:
    # ALMoST's reward model (naver-ai/ALMoST README): lr 2e-5, weight decay 0.1, 1 epoch, cosine, 3% warmup,
    # max length 1024, full fine-tuning, 128 pairs a step. On one device that is 4 x 32 accumulation x 1;
    # `accumulation_for_effective_batch` gives the accumulation for more devices.
    return TrainingArgs(
        learning_rate=2e-5,
        num_epochs=1.0,
        weight_decay=0.1,
        lr_scheduler="cosine",
        warmup_ratio=0.03,
        max_length=1024,
        max_prompt_length=512,
        per_device_batch_size=4,
        gradient_accumulation_steps=REWARD_EFFECTIVE_BATCH // 4,
        adapter="full",
    )


@dataclass(frozen=True)
class SFTConfig:
    """Supervised fine-tuning on prompt -> completion examples, loss on the completion tokens only."""

    training: TrainingArgs = field(default_factory=_sft_training_defaults)
    """Optimisation and hardware settings."""
    packing: bool = False
    """Pack several examples into each `max_length` row (no padding); attention stays within an example."""
    include_context: bool = False
    """For question/answer rows with a `context`: put the context before the question in the prompt.
    AugCon trains question -> answer without the context, hence off."""
    completion_only_loss: bool = True
    """Loss on the reply's tokens only (TRL's default, ALMoST's SFT). Off: on every token, the chat
    header and prompt included, as AugCon's `finetune.py` trains (labels = all input ids)."""
    merge_adapter: bool = True
    """With LoRA, also save the adapter merged into the base as a full model under final/merged."""

    def __post_init__(self) -> None:
        _check_training(self.training)
        for name in ("packing", "include_context", "completion_only_loss", "merge_adapter"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SFTConfig:
        return _from_dict_with_training(cls, data, "sft config")


@dataclass(frozen=True)
class PreferenceConfig:
    """Pairwise preference training against a frozen reference: DPO and its variants, and SPIN.

    SPIN (METHODS.md) is the DPO logistic loss with real = chosen, generated = rejected and the
    reference = the model that generated the rejected answers (p_t), frozen:
    mean(log(1 + exp(-(beta*log(p(y_real|x)/p_t(y_real|x)) - beta*log(p(y_gen|x)/p_t(y_gen|x)))))).
    """

    training: TrainingArgs = field(default_factory=preference_training_defaults)
    """Optimisation and hardware settings (defaults: SPIN's zephyr-7b config)."""
    loss: str = "sigmoid"
    """sigmoid (DPO), spin (the same logistic loss, rows as real/generated), ipo, or hinge (SLiC)."""
    beta: float = 0.1
    """Strength of the pull towards the reference; for ipo the regularisation tau."""
    reference_batch_size: int = 8
    """Pairs per forward pass in the one reference pass made before training."""
    eval_fraction: float = 0.0
    """Share of the pairs held out to report implicit-reward accuracy and margins (at the start, the end
    and every `eval_steps`); 0 trains on every pair."""
    eval_steps: int = 0
    """Held-out metrics every this many steps; 0 evaluates at the start and at the end only."""
    merge_adapter: bool = True
    """With LoRA, also save the merged model (SPIN's next iteration needs the merged model as its reference)."""
    disable_dropout: bool = True
    """Switch off every dropout of the policy (the model's and LoRA's) while it trains, as TRL's DPOTrainer
    does: the reference log-probs are taken without dropout, so the policy's must be too, or the implicit
    reward carries dropout noise from the first step."""

    def __post_init__(self) -> None:
        _check_training(self.training)
        check_choice("loss", self.loss, PREFERENCE_LOSSES)
        if not 0 < self.beta <= 100:
            raise InvalidConfigError(f"beta must be in (0, 100], got {self.beta}")
        if not 1 <= self.reference_batch_size <= 4096:
            raise InvalidConfigError(
                f"reference_batch_size must be between 1 and 4096, got {self.reference_batch_size}"
            )
        _check_held_out(self.eval_fraction, self.eval_steps)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreferenceConfig:
        return _from_dict_with_training(cls, data, "preference config")


@dataclass(frozen=True)
class RewardConfig:
    """A scalar reward model trained with the Bradley-Terry loss -log sigmoid(r_chosen - r_rejected)."""

    training: TrainingArgs = field(default_factory=_reward_training_defaults)
    """Optimisation and hardware settings (defaults: ALMoST's reward model)."""
    eval_fraction: float = 0.1
    """Share of the pairs held out to measure pairwise accuracy (how often r_chosen > r_rejected).
    Ours: ALMoST trains on every comparison; 0 does the same."""
    eval_steps: int = 0
    """Held-out accuracy every this many steps; 0 evaluates at the start and at the end only."""
    merge_adapter: bool = True
    """With LoRA, also save the merged reward model (what `RewardScorer` loads fastest)."""

    def __post_init__(self) -> None:
        _check_training(self.training)
        _check_held_out(self.eval_fraction, self.eval_steps)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RewardConfig:
        return _from_dict_with_training(cls, data, "reward config")
