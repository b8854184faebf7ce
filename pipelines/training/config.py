"""Configs of the training layer: the SFT, preference and reward-model configs, their shared
optimisation settings (`TrainingArgs`, `LoraSettings`) and the papers' defaults.

Nothing here imports torch: the web process validates a config with this module alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pipelines.common.config_fields import known_fields
from pipelines.errors import InvalidConfigError

PREFERENCE_LOSSES = ("sigmoid", "spin", "ipo", "hinge")
OPTIMIZERS = ("adamw", "rmsprop", "sgd", "adafactor")
SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")
DTYPES = ("auto", "float32", "bfloat16", "float16")
DEVICES = ("auto", "cpu", "cuda")
ADAPTERS = ("lora", "full")
OVER_LENGTH_RULES = ("cut", "refuse", "drop")
PROMPT_FORMATS = ("chat_template", "raw_assistant")
RAW_ASSISTANT_SEPARATOR = "\n\nAssistant:"
"""What `raw_assistant` puts between the prompt and the reply (ALMoST: `prompt\n\nAssistant: reply<eos>`)."""

TRAINING_FORMAT_FILE = "refinery_training_format.json"
"""Written beside every saved model: how its examples were formatted, so a scorer formats alike."""

MAX_TRAINING_STEPS = 10_000_000
MAX_EPOCHS = 1000
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class LoraSettings:
    """A LoRA adapter's shape (PEFT `LoraConfig`)."""

    r: int = 16
    """Rank of the low-rank update matrices."""
    alpha: int = 32
    """Scaling numerator: the update is multiplied by alpha / r."""
    dropout: float = 0.05
    """Dropout on the adapter's input."""
    target_modules: str | list[str] = "all-linear"
    """Which linear layers get an adapter: "all-linear" or a list of module names such as ["q_proj", "v_proj"]."""

    def __post_init__(self) -> None:
        for name in ("r", "alpha"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidConfigError(f"lora.{name} must be a whole number, got {value!r}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, int | float):
            raise InvalidConfigError(f"lora.dropout must be a number, got {self.dropout!r}")
        if not 1 <= self.r <= 1024:
            raise InvalidConfigError(f"lora.r must be between 1 and 1024, got {self.r}")
        if self.alpha <= 0:
            raise InvalidConfigError(f"lora.alpha must be positive, got {self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise InvalidConfigError(f"lora.dropout must be in [0, 1), got {self.dropout}")
        if isinstance(self.target_modules, str):
            if not self.target_modules:
                raise InvalidConfigError('lora.target_modules is empty; use "all-linear" or a list of module names')
        elif not self.target_modules or not all(isinstance(name, str) and name for name in self.target_modules):
            raise InvalidConfigError("lora.target_modules must be a non-empty list of module names")


@dataclass(frozen=True)
class TrainingArgs:
    """Optimisation and hardware settings shared by every trainer."""

    learning_rate: float = 2e-5
    """Peak learning rate after warmup."""
    num_epochs: float = 1.0
    """Passes over the dataset; ignored when `max_steps` is positive."""
    max_steps: int = -1
    """Optimizer steps to run; -1 runs `num_epochs` epochs."""
    per_device_batch_size: int = 4
    """Examples (pairs, for preference and reward training) per device per forward pass."""
    gradient_accumulation_steps: int = 1
    """Forward passes summed into one optimizer step; effective batch = per-device batch x this x devices."""
    warmup_ratio: float = 0.0
    """Fraction of the total steps over which the learning rate rises linearly from 0."""
    lr_scheduler: str = "linear"
    """Learning-rate schedule after warmup: linear, cosine, constant or constant_with_warmup."""
    optimizer: str = "adamw"
    """adamw, rmsprop (SPIN's choice), sgd or adafactor."""
    weight_decay: float = 0.0
    """Decoupled weight decay (AdamW) or L2 penalty (the others)."""
    max_grad_norm: float = 1.0
    """Gradients are clipped to this global norm; 0 disables clipping."""
    max_length: int = 512
    """Longest tokenized example (prompt + completion)."""
    max_prompt_length: int = 256
    """Longest prompt (chat header, instructions and turns before the reply)."""
    over_length: str = "cut"
    """What happens to an example over `max_prompt_length` or `max_length`, always counted in the run's
    summary: "cut" (an aggregation prompt loses the ends of its proposals, never its header,
    instruction or question; another prompt keeps its last tokens, as TRL and ALMoST truncate; a
    reply loses its end), "refuse" (the run stops before training, naming the rows and the lengths
    that would fit) or "drop" (the example is left out)."""
    prompt_format: str = "chat_template"
    """How an example becomes text: "chat_template" (the tokenizer's chat template) or "raw_assistant",
    the paper format of ALMoST for base models without one: `prompt\n\nAssistant: reply<eos>`, no BOS."""
    seed: int = 42
    """Seed for weight init of new heads, data order and dropout."""
    save_steps: int = 50
    """A checkpoint every this many optimizer steps (and always at the end or on cancel)."""
    save_total_limit: int = 2
    """Checkpoints kept; older ones are deleted. 0 keeps them all."""
    logging_steps: int = 1
    """Metrics (loss, learning rate, grad norm ...) every this many optimizer steps."""
    adapter: str = "lora"
    """"lora": train a LoRA adapter and merge it at the end; "full": train every weight."""
    lora: LoraSettings = field(default_factory=LoraSettings)
    """The adapter's shape when `adapter` is "lora"."""
    qlora: bool = False
    """Load the frozen base in 4-bit (bitsandbytes NF4) under the LoRA adapter; needs CUDA and bitsandbytes."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: less memory, about a third more compute."""
    deepspeed_config: str = ""
    """Path of a DeepSpeed JSON config (e.g. the shipped ZeRO-3 one); empty for none. GPU hosts only."""
    trainer_overrides: dict[str, Any] = field(default_factory=dict)
    """Extra `transformers.TrainingArguments` fields passed through as is (accelerate/FSDP/DDP settings)."""
    dtype: str = "auto"
    """Compute dtype: auto (bfloat16 on a CUDA GPU that supports it, else float32), float32, bfloat16, float16."""
    device: str = "auto"
    """auto (CUDA when present, else CPU), cpu or cuda."""
    torch_threads: int = 0
    """CPU threads for torch; 0 uses every core."""

    def __post_init__(self) -> None:
        _check_types(self)
        if not 0 < self.learning_rate <= 1e-2:
            raise InvalidConfigError(f"learning_rate must be in (0, 0.01], got {self.learning_rate}")
        if self.max_steps == -1 and not self.num_epochs > 0:
            raise InvalidConfigError(f"num_epochs must be positive when max_steps is -1, got {self.num_epochs}")
        if not self.num_epochs <= MAX_EPOCHS:
            raise InvalidConfigError(f"num_epochs must be at most {MAX_EPOCHS}, got {self.num_epochs}")
        if self.max_steps == 0 or self.max_steps < -1 or self.max_steps > MAX_TRAINING_STEPS:
            raise InvalidConfigError(
                f"max_steps must be -1 (run num_epochs) or between 1 and {MAX_TRAINING_STEPS}, got {self.max_steps}"
            )
        if not 0 <= self.seed <= MAX_SEED:
            raise InvalidConfigError(f"seed must be between 0 and {MAX_SEED}, got {self.seed}")
        if not 1 <= self.per_device_batch_size <= 4096:
            raise InvalidConfigError(
                f"per_device_batch_size must be between 1 and 4096, got {self.per_device_batch_size}"
            )
        if not 1 <= self.gradient_accumulation_steps <= 4096:
            raise InvalidConfigError(
                f"gradient_accumulation_steps must be between 1 and 4096, got {self.gradient_accumulation_steps}"
            )
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise InvalidConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        _check_choice("lr_scheduler", self.lr_scheduler, SCHEDULERS)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        if self.weight_decay < 0:
            raise InvalidConfigError(f"weight_decay must not be negative, got {self.weight_decay}")
        if self.max_grad_norm < 0:
            raise InvalidConfigError(f"max_grad_norm must not be negative, got {self.max_grad_norm}")
        if not 8 <= self.max_length <= 1_000_000:
            raise InvalidConfigError(f"max_length must be between 8 and 1000000, got {self.max_length}")
        if not 1 <= self.max_prompt_length < self.max_length:
            raise InvalidConfigError(
                f"max_prompt_length must be at least 1 and below max_length ({self.max_length}), "
                f"got {self.max_prompt_length}"
            )
        _check_choice("over_length", self.over_length, OVER_LENGTH_RULES)
        _check_choice("prompt_format", self.prompt_format, PROMPT_FORMATS)
        if not 1 <= self.save_steps <= MAX_TRAINING_STEPS:
            raise InvalidConfigError(f"save_steps must be between 1 and {MAX_TRAINING_STEPS}, got {self.save_steps}")
        if self.save_total_limit < 0:
            raise InvalidConfigError(f"save_total_limit must not be negative, got {self.save_total_limit}")
        if not 1 <= self.logging_steps <= MAX_TRAINING_STEPS:
            raise InvalidConfigError(
                f"logging_steps must be between 1 and {MAX_TRAINING_STEPS}, got {self.logging_steps}"
            )
        _check_choice("adapter", self.adapter, ADAPTERS)
        if self.qlora and self.adapter != "lora":
            raise InvalidConfigError('qlora trains a LoRA adapter on a 4-bit base: set adapter to "lora"')
        _check_choice("dtype", self.dtype, DTYPES)
        _check_choice("device", self.device, DEVICES)
        if self.deepspeed_config and self.device == "cpu":
            raise InvalidConfigError("deepspeed_config needs CUDA GPUs; clear it or set device to cuda")
        if self.torch_threads < 0:
            raise InvalidConfigError(f"torch_threads must be 0 (all cores) or positive, got {self.torch_threads}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingArgs:
        values = known_fields(cls, data, "training")
        if isinstance(values.get("lora"), dict):
            values["lora"] = LoraSettings(**known_fields(LoraSettings, values["lora"], "training.lora"))
        return cls(**values)


_INTEGER_FIELDS = (
    "max_steps",
    "per_device_batch_size",
    "gradient_accumulation_steps",
    "max_length",
    "max_prompt_length",
    "seed",
    "save_steps",
    "save_total_limit",
    "logging_steps",
    "torch_threads",
)
_NUMBER_FIELDS = ("learning_rate", "num_epochs", "warmup_ratio", "weight_decay", "max_grad_norm")
_TEXT_FIELDS = (
    "lr_scheduler",
    "optimizer",
    "over_length",
    "prompt_format",
    "adapter",
    "dtype",
    "device",
    "deepspeed_config",
)
_SWITCH_FIELDS = ("qlora", "gradient_checkpointing")


def _check_types(args: TrainingArgs) -> None:
    """Refuse a value of the wrong JSON type by name (YAML and the form's JSON box bypass the form's fields)."""
    for name in _INTEGER_FIELDS:
        value = getattr(args, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidConfigError(f"training.{name} must be a whole number, got {value!r}")
    for name in _NUMBER_FIELDS:
        value = getattr(args, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise InvalidConfigError(f"training.{name} must be a number, got {value!r}")
    for name in _TEXT_FIELDS:
        if not isinstance(getattr(args, name), str):
            raise InvalidConfigError(f"training.{name} must be text, got {getattr(args, name)!r}")
    for name in _SWITCH_FIELDS:
        if not isinstance(getattr(args, name), bool):
            raise InvalidConfigError(f"training.{name} must be true or false, got {getattr(args, name)!r}")
    if not isinstance(args.lora, LoraSettings):
        raise InvalidConfigError(
            "training.lora must be a JSON object of LoRA fields (r, alpha, dropout, target_modules)"
        )
    if not isinstance(args.trainer_overrides, dict):
        raise InvalidConfigError("training.trainer_overrides must be a JSON object of TrainingArguments fields")
    for name, value in args.trainer_overrides.items():
        if name in _OWN_TRAINER_ARGUMENTS:
            raise InvalidConfigError(
                f"training.trainer_overrides.{name} is set from training.{_OWN_TRAINER_ARGUMENTS[name]}; "
                "set that field instead (its limits apply there)"
            )
        if name == "warmup_steps" and (
            isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TRAINING_STEPS
        ):
            raise InvalidConfigError(
                f"training.trainer_overrides.warmup_steps must be a whole number between 0 and {MAX_TRAINING_STEPS}, "
                f"got {value!r}"
            )


# TrainingArguments fields that TrainingArgs fields set: an override would bypass their checks.
_OWN_TRAINER_ARGUMENTS = {
    "output_dir": "the run directory",
    "learning_rate": "learning_rate",
    "num_train_epochs": "num_epochs",
    "max_steps": "max_steps",
    "per_device_train_batch_size": "per_device_batch_size",
    "per_device_eval_batch_size": "per_device_batch_size",
    "gradient_accumulation_steps": "gradient_accumulation_steps",
    "lr_scheduler_type": "lr_scheduler",
    "optim": "optimizer",
    "weight_decay": "weight_decay",
    "max_grad_norm": "max_grad_norm",
    "seed": "seed",
    "data_seed": "seed",
    "save_steps": "save_steps",
    "save_total_limit": "save_total_limit",
    "logging_steps": "logging_steps",
    "bf16": "dtype",
    "fp16": "dtype",
    "use_cpu": "device",
    "deepspeed": "deepspeed_config",
}


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InvalidConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _from_dict_with_training(cls: type, data: dict[str, Any], where: str) -> Any:
    values = known_fields(cls, data, where)
    if isinstance(values.get("training"), dict):
        values["training"] = TrainingArgs.from_dict(values["training"])
    return cls(**values)


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


def effective_batch(args: TrainingArgs, devices: int = 1) -> int:
    """Examples (pairs) per optimizer step: per-device batch x gradient accumulation x devices."""
    return args.per_device_batch_size * args.gradient_accumulation_steps * max(devices, 1)


def effective_batch_text(args: TrainingArgs, devices: int = 1) -> str:
    """The effective batch spelt out, as the form and the run summary show it: "4 x 32 x 1 device = 128"."""
    devices = max(devices, 1)
    return (
        f"{args.per_device_batch_size} per device x {args.gradient_accumulation_steps} accumulation x "
        f"{devices} device{'s' if devices != 1 else ''} = {effective_batch(args, devices)}"
    )


def accumulation_for_effective_batch(target: int, per_device_batch_size: int, devices: int) -> int:
    """The gradient accumulation that keeps `target` examples a step on `devices` devices (at least 1).

    Refuses a target the per-device batch and devices cannot reach exactly, rather than stepping on a
    different batch in silence.
    """
    per_pass = per_device_batch_size * max(devices, 1)
    if target % per_pass:
        raise InvalidConfigError(
            f"an effective batch of {target} is not a whole number of {per_device_batch_size} per device x "
            f"{devices} device(s); choose a per-device batch and device count that divide it"
        )
    return max(1, target // per_pass)


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
        if not isinstance(self.training, TrainingArgs):
            raise InvalidConfigError("training must be a TrainingArgs or a JSON object of its fields")
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
        if not isinstance(self.training, TrainingArgs):
            raise InvalidConfigError("training must be a TrainingArgs or a JSON object of its fields")
        _check_choice("loss", self.loss, PREFERENCE_LOSSES)
        if not 0 < self.beta <= 100:
            raise InvalidConfigError(f"beta must be in (0, 100], got {self.beta}")
        if not 1 <= self.reference_batch_size <= 4096:
            raise InvalidConfigError(
                f"reference_batch_size must be between 1 and 4096, got {self.reference_batch_size}"
            )
        if not 0.0 <= self.eval_fraction < 1.0:
            raise InvalidConfigError(f"eval_fraction must be in [0, 1), got {self.eval_fraction}")
        if isinstance(self.eval_steps, bool) or not isinstance(self.eval_steps, int):
            raise InvalidConfigError(f"eval_steps must be a whole number, got {self.eval_steps!r}")
        if not 0 <= self.eval_steps <= MAX_TRAINING_STEPS:
            raise InvalidConfigError(f"eval_steps must be between 0 and {MAX_TRAINING_STEPS}, got {self.eval_steps}")

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
        if not isinstance(self.training, TrainingArgs):
            raise InvalidConfigError("training must be a TrainingArgs or a JSON object of its fields")
        if not 0.0 <= self.eval_fraction < 1.0:
            raise InvalidConfigError(f"eval_fraction must be in [0, 1), got {self.eval_fraction}")
        if isinstance(self.eval_steps, bool) or not isinstance(self.eval_steps, int):
            raise InvalidConfigError(f"eval_steps must be a whole number, got {self.eval_steps!r}")
        if not 0 <= self.eval_steps <= MAX_TRAINING_STEPS:
            raise InvalidConfigError(f"eval_steps must be between 0 and {MAX_TRAINING_STEPS}, got {self.eval_steps}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RewardConfig:
        return _from_dict_with_training(cls, data, "reward config")

