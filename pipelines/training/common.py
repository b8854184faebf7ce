"""What every trainer shares: hardware setup, model loading with LoRA/QLoRA, atomic checkpoints in the
run store, resume, cancel, live metrics, and saving the final model. Imports torch: workers only.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments

from pipelines.common.progress import Progress
from pipelines.common.store import RunStore
from pipelines.errors import InvalidConfigError, RunCancelled
from pipelines.training.config import TRAINING_FORMAT_FILE, TrainingArgs, TrainingResult

CHECKPOINTS_DIR = "checkpoints"
FINAL_DIR = "final"
RESULT_FILE = "result.json"
EVAL_AT_START_FILE = "eval_at_start.json"
_CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")
_OPTIMIZER_NAMES = {"adamw": "adamw_torch", "rmsprop": "rmsprop", "sgd": "sgd", "adafactor": "adafactor"}


@dataclass(frozen=True)
class Runtime:
    """Where and in which precision a run computes, resolved from `device`/`dtype` on this host."""

    device: str
    dtype: str

    @property
    def use_cpu(self) -> bool:
        return self.device == "cpu"


def resolve_runtime(args: TrainingArgs) -> Runtime:
    """Check the host can run `args` (QLoRA, DeepSpeed, CUDA) and set torch's threads."""
    has_cuda = torch.cuda.is_available()
    device = args.device if args.device != "auto" else ("cuda" if has_cuda else "cpu")
    if device == "cuda" and not has_cuda:
        raise InvalidConfigError("device is cuda but this host has no CUDA device; set device to auto or cpu")
    if args.qlora:
        if not has_cuda:
            raise InvalidConfigError(
                "qlora needs a CUDA GPU (bitsandbytes 4-bit kernels) and this host has none; "
                "set qlora to false to train a plain LoRA adapter on CPU"
            )
        try:
            import bitsandbytes  # noqa: F401
        except ImportError as error:
            raise InvalidConfigError(
                "qlora needs the bitsandbytes package: `pip install bitsandbytes`, or set qlora to false"
            ) from error
    if args.deepspeed_config:
        if not Path(args.deepspeed_config).is_file():
            raise InvalidConfigError(f"deepspeed_config {args.deepspeed_config} does not exist")
        try:
            import deepspeed  # noqa: F401
        except ImportError as error:
            raise InvalidConfigError("deepspeed_config is set but the deepspeed package is not installed") from error
    dtype = args.dtype
    if dtype == "auto":
        # CPUs without AVX512-BF16/AMX emulate bfloat16 matmuls, an order of magnitude slower than float32.
        dtype = "bfloat16" if device == "cuda" and torch.cuda.is_bf16_supported() else "float32"
    threads = args.torch_threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    return Runtime(device=device, dtype=dtype)


def load_tokenizer(model_dir: str | Path, prompt_format: str = "chat_template") -> Any:
    """The model's tokenizer, checked against how examples will be formatted.

    A base model without a chat template trains with `prompt_format` "raw_assistant" (ALMoST's
    `prompt\n\nAssistant: reply<eos>`), which needs an end-of-sequence token to end the reply.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if prompt_format == "chat_template" and tokenizer.chat_template is None:
        raise InvalidConfigError(
            f"{model_dir} has no chat template; set prompt_format to raw_assistant to train this base model on "
            "`prompt\n\nAssistant: reply<eos>` text (ALMoST's format)"
        )
    if prompt_format == "raw_assistant" and tokenizer.eos_token_id is None:
        raise InvalidConfigError(f"{model_dir} has no end-of-sequence token to end a raw_assistant reply with")
    return tokenizer


def disable_dropout(model: Any) -> int:
    """Set every dropout probability of `model` (its own and LoRA's) to 0; returns how many were set.

    TRL's DPOTrainer does this to the policy (`disable_dropout=True`): the reference log-probs are
    taken in eval mode, and a policy trained with dropout would be compared with them through noise.
    """
    changed = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout) and module.p > 0:
            module.p = 0.0
            changed += 1
        # Attention dropout is often a float handed to scaled_dot_product_attention (Llama, Qwen, Mistral),
        # not a module; TRL's helper misses it, so it is set here too.
        for name in ("attention_dropout", "dropout"):
            value = getattr(module, name, None)
            if isinstance(value, float) and value > 0:
                setattr(module, name, 0.0)
                changed += 1
    return changed


def load_model(model_dir: str | Path, args: TrainingArgs, runtime: Runtime, *, reward_head: bool = False) -> Any:
    """The model to train in float32 master weights (mixed precision autocasts), 4-bit under QLoRA."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    kwargs: dict[str, Any] = {"dtype": torch.float32}
    if args.qlora:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16 if runtime.dtype == "bfloat16" else torch.float16,
        )
    if reward_head:
        model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1, **kwargs)
    else:
        model = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs)
    model.config.use_cache = False
    return model


def apply_lora(model: Any, args: TrainingArgs, *, task_type: str = "CAUSAL_LM") -> Any:
    """Wrap `model` in a fresh LoRA adapter (a reward model's score head is trained in full)."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if args.qlora:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=args.gradient_checkpointing)
    lora = args.lora
    target = lora.target_modules if isinstance(lora.target_modules, str) else list(lora.target_modules)
    peft_config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=target,
        task_type=task_type,
    )
    # The adapter's A matrices are drawn from torch's global generator: seed it, or the weights depend on
    # whatever the process drew before (a resumed run, a warm worker's earlier job) and reruns differ.
    torch.manual_seed(args.seed)
    return get_peft_model(model, peft_config)


def parameter_counts(model: Any) -> tuple[int, int]:
    total = sum(parameter.numel() for parameter in model.parameters())
    trainable = sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)
    return total, trainable


def training_arguments(args: TrainingArgs, runtime: Runtime, output_dir: Path, **overrides: Any) -> TrainingArguments:
    values: dict[str, Any] = {
        "output_dir": str(output_dir),
        "learning_rate": args.learning_rate,
        "num_train_epochs": args.num_epochs,
        "max_steps": args.max_steps,
        "per_device_train_batch_size": args.per_device_batch_size,
        "per_device_eval_batch_size": args.per_device_batch_size,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "warmup_steps": args.warmup_ratio,
        "lr_scheduler_type": args.lr_scheduler,
        "optim": _OPTIMIZER_NAMES[args.optimizer],
        "weight_decay": args.weight_decay,
        "max_grad_norm": args.max_grad_norm,
        "seed": args.seed,
        "data_seed": args.seed,
        "save_strategy": "steps",
        "save_steps": args.save_steps,
        "save_total_limit": args.save_total_limit or None,
        "logging_strategy": "steps",
        "logging_steps": args.logging_steps,
        "logging_first_step": True,
        "bf16": runtime.dtype == "bfloat16",
        "fp16": runtime.dtype == "float16",
        "use_cpu": runtime.use_cpu,
        "report_to": "none",
        "disable_tqdm": True,
        "remove_unused_columns": False,
        "dataloader_num_workers": 0,
        "dataloader_pin_memory": not runtime.use_cpu,
    }
    if args.gradient_checkpointing:
        # transformers 5 renamed the field; accept either spelling of the installed version.
        known = {f.name for f in dataclasses.fields(TrainingArguments)}
        values["activation_checkpointing" if "activation_checkpointing" in known else "gradient_checkpointing"] = True
    if args.deepspeed_config:
        values["deepspeed"] = args.deepspeed_config
    values.update(overrides)
    values.update(args.trainer_overrides)
    try:
        return TrainingArguments(**values)
    except (TypeError, ValueError) as error:
        raise InvalidConfigError(f"training settings rejected by transformers: {error}") from error


# --- checkpoints --------------------------------------------------------------------------------


def latest_checkpoint(checkpoints_dir: Path) -> Path | None:
    """The newest complete `checkpoint-<step>` (incomplete ones never get that name: see AtomicCheckpoints)."""
    if not checkpoints_dir.is_dir():
        return None
    found = [
        (int(match.group(1)), path)
        for path in checkpoints_dir.iterdir()
        if path.is_dir() and (match := _CHECKPOINT_NAME.match(path.name))
    ]
    return max(found)[1] if found else None


class AtomicCheckpoints(Trainer):
    """A Trainer whose checkpoints appear atomically: written to a hidden staging folder, then renamed.

    A worker killed mid-save therefore leaves no half-written `checkpoint-<step>` for resume to trip on.
    """

    _staging_root: Path | None = None

    def _get_output_dir(self, trial: Any) -> str:
        if self._staging_root is not None:
            return str(self._staging_root)
        return super()._get_output_dir(trial)

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        final_root = Path(self.args.output_dir)
        name = f"checkpoint-{self.state.global_step}"
        staging_root = final_root / f".staging-{name}"
        shutil.rmtree(staging_root, ignore_errors=True)
        self._staging_root = staging_root
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._staging_root = None
        if self.args.should_save:
            target = final_root / name
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging_root / name, target)
            shutil.rmtree(staging_root, ignore_errors=True)
            self._rotate_store_checkpoints(final_root)

    def _rotate_store_checkpoints(self, root: Path) -> None:
        limit = self.args.save_total_limit
        if not limit:
            return
        found = sorted(
            (int(match.group(1)), path)
            for path in root.iterdir()
            if path.is_dir() and (match := _CHECKPOINT_NAME.match(path.name))
        )
        for _step, path in found[:-limit]:
            shutil.rmtree(path, ignore_errors=True)


class ProgressCallback(TrainerCallback):
    """Forwards steps and metrics to `Progress`, and turns a cancel into save-then-stop."""

    def __init__(self, progress: Progress, stage: str) -> None:
        self.progress = progress
        self.stage_name = stage
        self.cancelled: RunCancelled | None = None
        self.last_metrics: dict[str, Any] = {}
        self.summary: dict[str, Any] = {}

    def on_train_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        self.progress.stage(self.stage_name, total=state.max_steps, done=state.global_step)
        if state.global_step:
            self.progress.log(f"resumed from step {state.global_step} of {state.max_steps}")

    def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        self.progress.advance(1)
        try:
            self.progress.check_cancelled()
        except RunCancelled as error:
            self.cancelled = error
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):  # type: ignore[no-untyped-def]
        logs = dict(logs or {})
        if "train_runtime" in logs:  # the end-of-run summary, not a step
            self.summary.update(logs)
            return
        row = {key: _plain(value) for key, value in logs.items()}
        row["step"] = state.global_step
        self.last_metrics.update(row)
        self.progress.metrics(row)


def _plain(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item()
    return value


def quiet(trainer: Trainer) -> Trainer:
    """Drop the Trainer's stdout printer: metrics go to Progress, and a worker's log stays readable."""
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    return trainer


def train_with_resume(trainer: Trainer, callback: ProgressCallback, checkpoints_dir: Path, progress: Progress) -> int:
    """Train, resuming from the newest checkpoint in the store; a cancel saves first, then raises."""
    resume_from = latest_checkpoint(checkpoints_dir)
    if resume_from is not None:
        progress.log(f"resuming from {resume_from}")
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    step = trainer.state.global_step
    if callback.cancelled is not None:
        saved = latest_checkpoint(checkpoints_dir)
        raise RunCancelled(
            f"{callback.cancelled}; stopped at step {step}, checkpoint saved at {saved}; "
            "run again with the same run directory to resume from it"
        )
    return step


def train_and_save(
    *,
    trainer: Trainer,
    callback: ProgressCallback,
    tokenizer: Any,
    store: RunStore,
    args: TrainingArgs,
    base_dir: str | Path,
    merge: bool,
    counts: tuple[int, int],
    progress: Progress,
    evaluate: bool = False,
    lengths: dict[str, Any] | None = None,
) -> TrainingResult:
    """The recipe every trainer here shares: train (resuming), gather the metrics, save under final/.

    With `evaluate`, the held-out set is scored before the first step (once: a resumed run reads the
    first score back from eval_at_start.json, reported as `start_*`) and after the last, so a run
    reports how far training moved the held-out metrics.
    """
    quiet(trainer)
    checkpoints_dir = store.path(CHECKPOINTS_DIR)
    if evaluate and latest_checkpoint(checkpoints_dir) is None:
        store.write_json(trainer.evaluate(), EVAL_AT_START_FILE)
    steps = train_with_resume(trainer, callback, checkpoints_dir, progress)
    metrics = {**callback.last_metrics, **callback.summary}
    if evaluate:
        metrics.update(trainer.evaluate())
        if store.exists(EVAL_AT_START_FILE):
            metrics.update({f"start_{key}": value for key, value in store.read_json(EVAL_AT_START_FILE).items()})
    return save_final(
        trainer=trainer,
        tokenizer=tokenizer,
        store=store,
        args=args,
        base_dir=base_dir,
        merge=merge,
        metrics=metrics,
        steps=steps,
        counts=counts,
        progress=progress,
        lengths=lengths,
    )


# --- final output -------------------------------------------------------------------------------


def finished_result(store: RunStore) -> TrainingResult | None:
    """The result of a run that already finished in this store (a rerun then does nothing)."""
    if store.exists(FINAL_DIR, RESULT_FILE):
        return TrainingResult.from_dict(store.read_json(FINAL_DIR, RESULT_FILE))
    return None


def save_final(
    *,
    trainer: Trainer,
    tokenizer: Any,
    store: RunStore,
    args: TrainingArgs,
    base_dir: str | Path,
    merge: bool,
    metrics: dict[str, Any],
    steps: int,
    counts: tuple[int, int],
    progress: Progress,
    merge_fn: Callable[[Path, Path, Path], Path] | None = None,
    lengths: dict[str, Any] | None = None,
) -> TrainingResult:
    """Save the model (full) or the adapter and its merge (LoRA) under final/, each folder atomically."""
    final_root = store.path(FINAL_DIR)
    final_root.mkdir(parents=True, exist_ok=True)
    progress.stage("save", total=2 if args.adapter == "lora" and merge else 1)
    adapter_dir = merged_dir = None
    if args.adapter == "lora":
        adapter_dir = _save_atomically(final_root / "adapter", trainer, tokenizer, args.prompt_format)
        progress.advance()
        if merge:
            from pipelines.training.merge import merge_lora

            merged_dir = (merge_fn or merge_lora)(Path(base_dir), adapter_dir, final_root / "merged")
            progress.advance()
        output_dir = merged_dir or adapter_dir
    else:
        output_dir = _save_atomically(final_root / "model", trainer, tokenizer, args.prompt_format)
        progress.advance()
    result = TrainingResult(
        output_dir=str(output_dir),
        adapter_dir=str(adapter_dir) if adapter_dir else None,
        merged_dir=str(merged_dir) if merged_dir else None,
        metrics=metrics,
        steps=steps,
        parameter_count=counts[0],
        trainable_parameter_count=counts[1],
        lengths=dict(lengths or {}),
    )
    store.write_json(result.to_dict(), FINAL_DIR, RESULT_FILE)
    progress.log(f"saved {output_dir}")
    return result


def _save_atomically(target: Path, trainer: Trainer, tokenizer: Any, prompt_format: str) -> Path:
    staging = target.with_name(f".staging-{target.name}")
    shutil.rmtree(staging, ignore_errors=True)
    trainer.save_model(str(staging))
    tokenizer.save_pretrained(str(staging))
    (staging / TRAINING_FORMAT_FILE).write_text(json.dumps({"prompt_format": prompt_format}))
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)
    return target


def write_config(store: RunStore, kind: str, config: Any, model_dir: str | Path, dataset_path: str | Path) -> None:
    """Record what the run trains, beside its outputs (a lineage entry can be built from it)."""
    store.write_json(
        {"kind": kind, "config": config.to_dict(), "model_dir": str(model_dir), "dataset_path": str(dataset_path)},
        "training_config.json",
    )


def dataset_fingerprint(*parts: Any) -> str:
    """A short hash of the inputs that determine cached per-dataset values (reference log-probs)."""
    import hashlib

    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path) and part.is_file():
            digest.update(part.read_bytes())
        else:
            digest.update(json.dumps(part, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]
