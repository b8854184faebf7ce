"""The optimisation and hardware settings every trainer shares (`TrainingArgs`, `LoraSettings`), their
checks, and the effective batch they make.

Kept apart from the method configs (`config.py`) because every method's config (SPIN, AugCon, ALMoST)
embeds a `TrainingArgs`, while only the training layer knows SFT, preference and reward configs.
Nothing here imports torch: the web process validates settings with this module alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pipelines.common.config_fields import MAX_SEED, known_fields
from pipelines.errors import InvalidConfigError

OPTIMIZERS = ("adamw", "rmsprop", "sgd", "adafactor")
SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")
DTYPES = ("auto", "float32", "bfloat16", "float16")
DEVICES = ("auto", "cpu", "cuda")
ADAPTERS = ("lora", "full")
OVER_LENGTH_RULES = ("cut", "refuse", "drop")
PROMPT_FORMATS = ("chat_template", "raw_assistant")
MAX_TRAINING_STEPS = 10_000_000
MAX_EPOCHS = 1000


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
        check_choice("lr_scheduler", self.lr_scheduler, SCHEDULERS)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
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
        check_choice("over_length", self.over_length, OVER_LENGTH_RULES)
        check_choice("prompt_format", self.prompt_format, PROMPT_FORMATS)
        if not 1 <= self.save_steps <= MAX_TRAINING_STEPS:
            raise InvalidConfigError(f"save_steps must be between 1 and {MAX_TRAINING_STEPS}, got {self.save_steps}")
        if self.save_total_limit < 0:
            raise InvalidConfigError(f"save_total_limit must not be negative, got {self.save_total_limit}")
        if not 1 <= self.logging_steps <= MAX_TRAINING_STEPS:
            raise InvalidConfigError(
                f"logging_steps must be between 1 and {MAX_TRAINING_STEPS}, got {self.logging_steps}"
            )
        check_choice("adapter", self.adapter, ADAPTERS)
        if self.qlora and self.adapter != "lora":
            raise InvalidConfigError('qlora trains a LoRA adapter on a 4-bit base: set adapter to "lora"')
        check_choice("dtype", self.dtype, DTYPES)
        check_choice("device", self.device, DEVICES)
        if self.deepspeed_config and self.device == "cpu":
            raise InvalidConfigError("deepspeed_config needs CUDA GPUs; clear it or set device to cuda")
        if self.torch_threads < 0:
            raise InvalidConfigError(f"torch_threads must be 0 (all cores) or positive, got {self.torch_threads}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def length_limits(self) -> dict[str, Any]:
        """The four settings the encoders fit token rows by, as their keyword arguments (encoding.py)."""
        return {
            "max_length": self.max_length,
            "max_prompt_length": self.max_prompt_length,
            "over_length": self.over_length,
            "prompt_format": self.prompt_format,
        }

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


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """Refuse a value outside `choices`, naming the field and the choices."""
    if value not in choices:
        raise InvalidConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


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
