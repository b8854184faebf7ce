"""The trainer every training here runs on: transformers' `Trainer` with checkpoints in the run store
that appear atomically, resume, cancel, and the recipe train -> evaluate -> save. Imports torch.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainingArguments

from pipelines.common.progress import Progress
from pipelines.common.store import RunStore
from pipelines.errors import InvalidConfigError, RunCancelled
from pipelines.training.arguments import TrainingArgs
from pipelines.training.callbacks import ProgressCallback
from pipelines.training.models import parameter_counts
from pipelines.training.result import TrainingResult
from pipelines.training.runtime import Runtime
from pipelines.training.saving import save_final

CHECKPOINTS_DIR = "checkpoints"
EVAL_AT_START_FILE = "eval_at_start.json"
_CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")
_OPTIMIZER_NAMES = {"adamw": "adamw_torch", "rmsprop": "rmsprop", "sgd": "sgd", "adafactor": "adafactor"}


def training_arguments(args: TrainingArgs, runtime: Runtime, output_dir: Path, **overrides: Any) -> TrainingArguments:
    values = training_argument_values(args, runtime, output_dir, **overrides)
    try:
        return TrainingArguments(**values)
    except (TypeError, ValueError) as error:
        raise InvalidConfigError(f"training settings rejected by transformers: {error}") from error


def training_argument_values(args: TrainingArgs, runtime: Runtime, output_dir: Path, **overrides: Any) -> dict[str, Any]:
    """The `TrainingArguments` fields our settings make, for transformers' class or a TRL config built on it."""
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
    return values


def latest_checkpoint(checkpoints_dir: Path) -> Path | None:
    """The newest complete `checkpoint-<step>` (incomplete ones never get that name: see CheckpointingTrainer)."""
    if not checkpoints_dir.is_dir():
        return None
    found = [
        (int(match.group(1)), path)
        for path in checkpoints_dir.iterdir()
        if path.is_dir() and (match := _CHECKPOINT_NAME.match(path.name))
    ]
    return max(found)[1] if found else None


class CheckpointingTrainer(Trainer):
    """A Trainer whose checkpoints appear atomically: written to a hidden staging folder, then renamed.

    A worker killed mid-save therefore leaves no half-written `checkpoint-<step>` for resume to trip on.
    A subclass with its own loss reports its per-batch figures (accuracy, margins) with
    `record_batch_metrics`; each log then carries their mean over the batches since the last log,
    not the last batch's value, which would be noise at a small batch.
    """

    _staging_root: Path | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._metric_sums: dict[str, float] = {}
        self._metric_batches = 0

    def record_batch_metrics(self, values: dict[str, float]) -> None:
        """Add one training batch's figures to the running sums the next log averages."""
        for name, value in values.items():
            self._metric_sums[name] = self._metric_sums.get(name, 0.0) + value
        self._metric_batches += 1

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self._metric_batches and "loss" in logs:
            logs.update({name: total / self._metric_batches for name, total in self._metric_sums.items()})
            self._metric_sums, self._metric_batches = {}, 0
        super().log(logs, start_time)

    def scored_held_out(self, eval_dataset: Any, score: Callable[[Any, dict[str, Any]], Any]) -> list[Any]:
        """`score(model, batch)` for each evaluation batch of the held-out rows (`eval_dataset`, else the trainer's).

        Why: the pair trainers report held-out figures of their own loss, which Trainer's evaluation loop
        does not compute. Runs without gradients in eval mode; the model's mode comes back after.
        """
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        if not dataset:
            return []
        size = self.args.per_device_eval_batch_size
        was_training = self.model.training
        self.model.eval()
        with torch.inference_mode():
            scores = [
                score(self.model, self._prepare_inputs(self.data_collator(dataset[start : start + size])))
                for start in range(0, len(dataset), size)
            ]
        self.model.train(was_training)
        return scores

    def _get_output_dir(self, trial: Any) -> str:
        if self._staging_root is not None:
            return str(self._staging_root)
        return super()._get_output_dir(trial)

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        final_root = Path(self.args.output_dir)
        name = f"checkpoint-{self.state.global_step}"
        staging_root = final_root / f".staging-{name}"
        # In a process group every rank writes into the staging folder (its own RNG state, shards):
        # only the main process clears and renames it, with every rank's writes finished in between.
        if self.args.should_save:
            shutil.rmtree(staging_root, ignore_errors=True)
        self.accelerator.wait_for_everyone()
        self._staging_root = staging_root
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._staging_root = None
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            target = final_root / name
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging_root / name, target)
            shutil.rmtree(staging_root, ignore_errors=True)
            keep_newest_checkpoints(final_root, self.args.save_total_limit)


def keep_newest_checkpoints(root: Path, limit: int | None) -> None:
    """Delete all but the `limit` newest `checkpoint-<step>` folders under `root` (0 or None keeps all)."""
    if not limit:
        return
    found = sorted(
        (int(match.group(1)), path)
        for path in root.iterdir()
        if path.is_dir() and (match := _CHECKPOINT_NAME.match(path.name))
    )
    for _step, path in found[:-limit]:
        shutil.rmtree(path, ignore_errors=True)


def without_console_printer(trainer: Trainer) -> Trainer:
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
    trainer_class: type[Trainer],
    *,
    model: Any,
    tokenizer: Any,
    train_features: list[dict[str, Any]],
    data_collator: Callable[[list[dict[str, Any]]], dict[str, Any]],
    store: RunStore,
    args: TrainingArgs,
    runtime: Runtime,
    base_dir: str | Path,
    merge: bool,
    progress: Progress,
    eval_features: list[dict[str, Any]] | None = None,
    eval_steps: int = 0,
    lengths: dict[str, Any] | None = None,
    **trainer_options: Any,
) -> TrainingResult:
    """The recipe every trainer here shares: build `trainer_class`, train (resuming), gather the metrics, save under final/.

    With held-out `eval_features`, the held-out set is scored before the first step (once: a resumed run
    reads the first score back from eval_at_start.json, reported as `start_*`), every `eval_steps` when
    set, and after the last, so a run reports how far training moved the held-out metrics.
    `trainer_options` go to the trainer class (a preference loss's beta, for one).
    """
    counts = parameter_counts(model)
    evaluate = bool(eval_features)
    overrides: dict[str, Any] = {}
    if evaluate and eval_steps:
        overrides = {"eval_strategy": "steps", "eval_steps": eval_steps}
    checkpoints_dir = store.path(CHECKPOINTS_DIR)
    callback = ProgressCallback(progress, "train")
    trainer = trainer_class(
        model=model,
        args=training_arguments(args, runtime, checkpoints_dir, **overrides),
        train_dataset=train_features,
        eval_dataset=eval_features or None,
        data_collator=data_collator,
        callbacks=[callback],
        **trainer_options,
    )
    without_console_printer(trainer)
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
