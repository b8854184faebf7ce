"""SPIN's configuration: iterations, generation by the current model, and the SPIN objective per iteration.

Defaults are the paper's (uclaml/SPIN, zephyr-7b configs): beta 0.1, learning rate 5e-7 for
iterations 0 and 1, 1e-7 from iteration 2, beta 5.0 at iteration 3; linear schedule, warmup 0.1,
RMSprop, max length 1024, max prompt length 512; 256 new tokens per generated answer sampled at
temperature 1.0, top_p 1.0 (their vLLM generation script); each iteration from iteration 1 on
trains on its own pairs mixed with the previous iteration's.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from pipelines.common.config_fields import known_fields
from pipelines.errors import InvalidConfigError
from pipelines.llm.types import SamplingParams
from pipelines.training.config import PreferenceConfig, TrainingArgs


def _spin_training() -> PreferenceConfig:
    # SPIN is the DPO logistic loss with real = chosen, generated = rejected, reference = p_t.
    return PreferenceConfig(loss="spin", beta=0.1, merge_adapter=True)


def _paper_schedule() -> list[dict[str, Any]]:
    # Per-iteration changes of the paper's scripts (iteration index -> overrides); later ones repeat the last.
    return [
        {},
        {},
        {"learning_rate": 1e-7},
        {"learning_rate": 1e-7, "beta": 5.0},
    ]


@dataclass(frozen=True)
class SpinConfig:
    """One SPIN run: `iterations` rounds of generate -> pair -> train against the generator, frozen."""

    iterations: int = 2
    """Rounds of self-play; the paper reports iterations 0 to 3 and stops when gains saturate."""
    generation: SamplingParams = field(
        default_factory=lambda: SamplingParams(n=1, temperature=1.0, top_p=1.0, max_tokens=256, seed=42)
    )
    """How the current model answers each prompt (one answer per prompt)."""
    generation_batch_size: int = 8
    """Prompts per generation call; the unit of resume during generation."""
    training: PreferenceConfig = field(default_factory=_spin_training)
    """The SPIN objective and its optimisation settings for iteration 0 (later ones apply `schedule`)."""
    schedule: list[dict[str, Any]] = field(default_factory=_paper_schedule)
    """Per-iteration overrides of `learning_rate` and `beta` (index = iteration; the last entry repeats)."""
    mix_previous: bool = True
    """From iteration 1 on, train on this iteration's pairs plus the previous iteration's."""
    max_prompts: int = 0
    """Use at most this many prompts of the SFT dataset (0: all), in dataset order."""

    def __post_init__(self) -> None:
        if not 1 <= self.iterations <= 20:
            raise InvalidConfigError(f"iterations must be between 1 and 20, got {self.iterations}")
        if self.generation.n != 1:
            raise InvalidConfigError(f"SPIN generates one answer per prompt; generation.n must be 1, got {self.generation.n}")
        if not 1 <= self.generation_batch_size <= 1024:
            raise InvalidConfigError(f"generation_batch_size must be between 1 and 1024, got {self.generation_batch_size}")
        if self.training.loss not in ("spin", "sigmoid", "hinge"):
            raise InvalidConfigError(f"SPIN trains with the spin (logistic) or hinge loss, got {self.training.loss!r}")
        if self.max_prompts < 0:
            raise InvalidConfigError(f"max_prompts must be 0 (all) or positive, got {self.max_prompts}")
        for index, overrides in enumerate(self.schedule):
            unknown = set(overrides) - {"learning_rate", "beta"}
            if unknown:
                raise InvalidConfigError(f"schedule[{index}] may set learning_rate and beta only, not {', '.join(sorted(unknown))}")
            self.training_for(index)  # validates the values

    def training_for(self, iteration: int) -> PreferenceConfig:
        """Iteration `iteration`'s preference config: `training` with that iteration's schedule applied."""
        overrides = self.schedule[min(iteration, len(self.schedule) - 1)] if self.schedule else {}
        config = self.training
        if "learning_rate" in overrides:
            config = replace(config, training=replace(config.training, learning_rate=float(overrides["learning_rate"])))
        if "beta" in overrides:
            config = replace(config, beta=float(overrides["beta"]))
        return config

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["generation"] = self.generation.to_dict()
        data["training"] = self.training.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpinConfig:
        values = known_fields(cls, data, "SPIN config")
        if isinstance(values.get("generation"), dict):
            values["generation"] = SamplingParams.from_dict(values["generation"])
        if isinstance(values.get("training"), dict):
            values["training"] = PreferenceConfig.from_dict(values["training"])
        return cls(**values)


def tiny_cpu_preset(config: SpinConfig) -> SpinConfig:
    """Minutes on a 2-core CPU with the 135M model: short answers, a few LoRA steps per iteration."""
    training = replace(
        config.training,
        training=TrainingArgs.from_dict(
            {
                **config.training.training.to_dict(),
                "max_steps": 8,
                "per_device_batch_size": 2,
                "max_length": 256,
                "max_prompt_length": 128,
                "save_steps": 4,
                "learning_rate": 5e-5,
                "adapter": "lora",
                "lora": {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": "all-linear"},
                "device": "cpu",
                "dtype": "float32",
            }
        ),
    )
    generation = SamplingParams.from_dict({**config.generation.to_dict(), "max_tokens": 48})
    # A LoRA step at 5e-7 moves nothing in 8 steps; keep the paper's ratios between iterations.
    schedule = [{}, {}, {"learning_rate": 1e-5}, {"learning_rate": 1e-5, "beta": 5.0}]
    return replace(config, training=training, generation=generation, schedule=schedule, max_prompts=16)


def gpu_7b_preset(config: SpinConfig) -> SpinConfig:
    """The paper's zephyr-7b setting on GPUs: full fine-tuning, bf16, ZeRO-3 (launch with accelerate)."""
    from pipelines.training.config import PRESETS

    merged = {**config.training.training.to_dict(), **PRESETS["7b-full-8gpu-zero3"], "num_epochs": 2.0}
    return replace(config, training=replace(config.training, training=TrainingArgs.from_dict(merged)))


SPIN_PRESETS = {"tiny-cpu-demo": tiny_cpu_preset, "7b-8gpu-zero3": gpu_7b_preset}
