"""SPIN's configuration: iterations, generation by the current model, and the SPIN objective per iteration.

`SpinConfig()` is the paper's zephyr-7b setting (uclaml/SPIN): full fine-tuning (every weight),
RMSprop, learning rate 5e-7 for iterations 0 and 1 and 1e-7 from iteration 2, beta 0.1 (5.0 at
iteration 3), linear schedule, warmup 0.1, max length 1024, max prompt length 512, 2 epochs per
iteration (the paper's text; their config says 3, their scripts 6), an effective batch of 64
(8 per device x 8 accumulation steps on one device; `batch_for_devices` keeps 64 on more devices);
256 new tokens per generated answer sampled at temperature 1.0, top_p 1.0 (their vLLM generation
script); each iteration from iteration 1 on trains on its own pairs mixed with the previous
iteration's; pairs are built from the first user turn and its reply, as their code does on UltraChat.

Settings that are ours, not the paper's, are named as such: the `lora` preset (an adapter, at a
learning rate that moves one) and the `tiny-cpu-demo` preset. Every bound lives in the config
(`SpinConfig.__post_init__` for SPIN's own fields; the training layer's `TrainingArgs` for epochs,
steps, lengths and its seed), so the form and any other caller meet the same limits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from pipelines.common.config_fields import check_seed, known_fields
from pipelines.common.presets import Preset
from pipelines.errors import InvalidConfigError
from pipelines.llm.types import SamplingParams
from pipelines.training.arguments import LoraSettings, TrainingArgs
from pipelines.training.config import PreferenceConfig, preference_training_defaults

CONVERSATION_TURNS = ("first", "last", "every")
"""Which assistant reply of a multi-turn SFT row becomes the real answer; its prompt is always every
turn before it. `first` is SPIN's (their code takes messages[0] and messages[1] of UltraChat)."""
PAPER_EFFECTIVE_BATCH = 64
"""Pairs per optimizer step in the paper: 8 per device x 8 GPUs x 1 accumulation step."""
MAX_ITERATIONS = 20
MAX_NEW_TOKENS = 32768
MAX_PROMPTS = 10_000_000
MAX_GENERATION_BATCH = 1024
MAX_TEMPERATURE = 2.0
LORA_LEARNING_RATE = 5e-6
"""Ours: the `lora` preset's rate, 10x the paper's. A LoRA adapter starts at zero (B = 0) and only its
low-rank product moves the weights, so at the paper's 5e-7 it moves about a tenth as far as full
fine-tuning does (measured on the tiny model over the same steps, a test keeps it so); at 5e-6 it
moves about as far. alignment-handbook's zephyr-7b QLoRA DPO recipe uses the same 5e-6. Not tuned on
the paper's setting."""
TINY_LEARNING_RATE = 5e-5
"""Ours, for the CPU demo only: 8 steps must show the rewards move."""


def paper_training_args() -> TrainingArgs:
    """The zephyr-7b training settings of SPIN's configs and scripts (effective batch 64 on one device).

    The preference defaults are that config already; the paper adds 2 epochs, full fine-tuning and 8 x 8 a step.
    """
    return replace(
        preference_training_defaults(), num_epochs=2.0, gradient_accumulation_steps=8, adapter="full", seed=42
    )


def _spin_training() -> PreferenceConfig:
    # SPIN is the DPO logistic loss with real = chosen, generated = rejected, reference = p_t.
    return PreferenceConfig(training=paper_training_args(), loss="spin", beta=0.1, merge_adapter=True)


def _paper_schedule() -> list[dict[str, Any]]:
    # Per-iteration changes of the paper's scripts (iteration index -> overrides); later ones repeat the last.
    # The learning rate is a factor of iteration 0's (5e-7 -> 1e-7), so a changed base rate keeps the ratio.
    return [
        {},
        {},
        {"learning_rate_factor": 0.2},
        {"learning_rate_factor": 0.2, "beta": 5.0},
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
    """Per-iteration changes (index = iteration; the last entry repeats): `learning_rate_factor`
    (times iteration 0's rate), or an absolute `learning_rate`, and an absolute `beta`."""
    mix_previous: bool = True
    """From iteration 1 on, train on this iteration's pairs plus the previous iteration's."""
    max_prompts: int = 0
    """Use at most this many rows of the SFT dataset (0: all), in dataset order."""
    conversation_turn: str = "first"
    """Multi-turn rows: `first` (SPIN's: the first user turn and its reply), `last` (the last reply,
    with the whole conversation before it as the prompt) or `every` (one pair per reply, each with
    the whole conversation before it). A later turn never loses the turns before it."""

    def __post_init__(self) -> None:
        if not 1 <= self.iterations <= MAX_ITERATIONS:
            raise InvalidConfigError(
                f"iterations must be between 1 and {MAX_ITERATIONS}, got {self.iterations}", field="iterations"
            )
        if self.generation.n != 1:
            raise InvalidConfigError(
                f"SPIN generates one answer per prompt; generation.n must be 1, got {self.generation.n}",
                field="generation.n",
            )
        if not 1 <= self.generation.max_tokens <= MAX_NEW_TOKENS:
            raise InvalidConfigError(
                f"generation.max_tokens must be between 1 and {MAX_NEW_TOKENS}, got {self.generation.max_tokens}",
                field="generation.max_tokens",
            )
        if self.generation.temperature > MAX_TEMPERATURE:
            raise InvalidConfigError(
                f"generation.temperature must be between 0 and {MAX_TEMPERATURE:g}, got {self.generation.temperature}",
                field="generation.temperature",
            )
        check_seed("generation.seed", self.generation.seed)
        if not 1 <= self.generation_batch_size <= MAX_GENERATION_BATCH:
            raise InvalidConfigError(
                f"generation_batch_size must be between 1 and {MAX_GENERATION_BATCH}, got {self.generation_batch_size}",
                field="generation_batch_size",
            )
        if self.training.loss not in ("spin", "sigmoid", "hinge"):
            raise InvalidConfigError(
                f"SPIN trains with the spin (logistic) or hinge loss, got {self.training.loss!r}", field="training.loss"
            )
        if not 0 <= self.max_prompts <= MAX_PROMPTS:
            raise InvalidConfigError(
                f"max_prompts must be 0 (all) or up to {MAX_PROMPTS}, got {self.max_prompts}", field="max_prompts"
            )
        if self.conversation_turn not in CONVERSATION_TURNS:
            raise InvalidConfigError(
                f"conversation_turn must be one of {', '.join(CONVERSATION_TURNS)}, got {self.conversation_turn!r}",
                field="conversation_turn",
            )
        if len(self.schedule) > MAX_ITERATIONS:
            raise InvalidConfigError(
                f"schedule has {len(self.schedule)} entries; at most {MAX_ITERATIONS}", field="schedule"
            )
        for index, overrides in enumerate(self.schedule):
            if not isinstance(overrides, dict):
                raise InvalidConfigError(
                    f"schedule[{index}] must be an object, got {type(overrides).__name__}", field="schedule"
                )
            unknown = set(overrides) - {"learning_rate", "learning_rate_factor", "beta"}
            if unknown:
                raise InvalidConfigError(
                    f"schedule[{index}] may set learning_rate_factor, learning_rate and beta only, "
                    f"not {', '.join(sorted(unknown))}",
                    field="schedule",
                )
            if {"learning_rate", "learning_rate_factor"} <= set(overrides):
                raise InvalidConfigError(
                    f"schedule[{index}] sets both learning_rate and learning_rate_factor; give one", field="schedule"
                )
            self.training_for(index)  # validates the values

    def training_for(self, iteration: int) -> PreferenceConfig:
        """Iteration `iteration`'s preference config: `training` with that iteration's schedule applied."""
        overrides = self.schedule[min(iteration, len(self.schedule) - 1)] if self.schedule else {}
        config = self.training
        learning_rate = config.training.learning_rate
        if "learning_rate_factor" in overrides:
            learning_rate = learning_rate * float(overrides["learning_rate_factor"])
        if "learning_rate" in overrides:
            learning_rate = float(overrides["learning_rate"])
        if learning_rate != config.training.learning_rate:
            config = replace(config, training=replace(config.training, learning_rate=learning_rate))
        if "beta" in overrides:
            config = replace(config, beta=float(overrides["beta"]))
        return config

    def plan(self) -> list[dict[str, Any]]:
        """Each iteration's learning rate and beta, as training will use them (shown before queueing)."""
        return [
            {
                "iteration": index,
                "learning_rate": self.training_for(index).training.learning_rate,
                "beta": self.training_for(index).beta,
            }
            for index in range(self.iterations)
        ]

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


def effective_batch(args: TrainingArgs, devices: int) -> dict[str, int]:
    """Pairs per optimizer step: per-device batch x accumulation steps x devices."""
    return {
        "per_device": args.per_device_batch_size,
        "accumulation": args.gradient_accumulation_steps,
        "devices": devices,
        "effective": args.per_device_batch_size * args.gradient_accumulation_steps * devices,
    }


def batch_for_devices(config: SpinConfig, devices: int, effective: int = PAPER_EFFECTIVE_BATCH) -> SpinConfig:
    """The config with per-device batch x accumulation x `devices` = `effective` (the paper's 64).

    Keeps the paper's 8 per device where it can (8 x 8 on one GPU, 8 x 1 on eight); more devices than
    that get a smaller per-device batch. Refuses a device count that cannot reach `effective` exactly.
    """
    if devices < 1 or effective % devices:
        raise InvalidConfigError(
            f"an effective batch of {effective} cannot be split over {devices} devices; choose a device count "
            f"that divides {effective}",
            field="devices",
        )
    per_device = min(8, effective // devices)
    while (effective // devices) % per_device:
        per_device -= 1
    accumulation = effective // (devices * per_device)
    args = replace(config.training.training, per_device_batch_size=per_device, gradient_accumulation_steps=accumulation)
    return replace(config, training=replace(config.training, training=args))


def lora_preset(config: SpinConfig) -> SpinConfig:
    """Ours: the paper's settings but a LoRA adapter (r 16, alpha 32, no dropout) at lr 5e-6.

    For when full fine-tuning does not fit; the schedule's factors keep the paper's 5:1 drop from
    iteration 2. Dropout is 0 because the policy and the frozen reference must score a pair alike.
    """
    args = replace(
        config.training.training,
        adapter="lora",
        learning_rate=LORA_LEARNING_RATE,
        lora=LoraSettings(r=16, alpha=32, dropout=0.0, target_modules="all-linear"),
    )
    return replace(config, training=replace(config.training, training=args))


def tiny_cpu_preset(config: SpinConfig) -> SpinConfig:
    """Ours, for demos and tests: minutes on a 2-core CPU with the 135M model, a few LoRA steps per iteration."""
    training = replace(
        config.training,
        training=TrainingArgs.from_dict(
            {
                **config.training.training.to_dict(),
                "max_steps": 8,
                "per_device_batch_size": 2,
                "gradient_accumulation_steps": 1,
                "max_length": 256,
                "max_prompt_length": 128,
                "save_steps": 4,
                "learning_rate": TINY_LEARNING_RATE,
                "adapter": "lora",
                "lora": {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": "all-linear"},
                "device": "cpu",
                "dtype": "float32",
            }
        ),
    )
    generation = SamplingParams.from_dict({**config.generation.to_dict(), "max_tokens": 48})
    return replace(config, training=training, generation=generation, max_prompts=16)


def gpu_7b_preset(config: SpinConfig) -> SpinConfig:
    """The paper's zephyr-7b setting on 8 GPUs: full fine-tuning, bf16, ZeRO-3 (launch with accelerate)."""
    from pipelines.training.presets import training_preset

    merged = {**config.training.training.to_dict(), **training_preset("7b-full-8gpu-zero3").training, "num_epochs": 2.0}
    return replace(config, training=replace(config.training, training=TrainingArgs.from_dict(merged)))


PAPER_SETTINGS = "the paper's settings: full fine-tuning, RMSprop, lr 5e-7, effective batch 64"
"""What the form calls no preset at all: `SpinConfig()` itself."""
SPIN_PRESETS: tuple[Preset[SpinConfig], ...] = (
    Preset("lora", "LoRA r16 at lr 5e-6 (ours: the paper fine-tunes every weight)", lora_preset),
    Preset(
        "tiny-cpu-demo",
        "tiny CPU demo (ours): LoRA r8 at lr 5e-5, 8 steps of batch 2, 48-token answers",
        tiny_cpu_preset,
    ),
    Preset(
        "7b-8gpu-zero3", "the paper's settings on 8 GPUs: full fine-tuning, bf16, ZeRO-3, 8 per device", gpu_7b_preset
    ),
)
"""The named settings the form offers over `SpinConfig()`; the descriptions say which are ours."""
PRESETS_WITH_PAPER_BATCH = ("", "lora", "7b-8gpu-zero3")
"""Presets whose effective batch is the paper's 64 on whatever device count the run asks for ("": no preset)."""
