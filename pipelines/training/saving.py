"""A training run's final output in the run store: the model (or adapter and merge) under final/,
saved atomically, its `TrainingResult`, and the record of what was trained.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import Trainer

from pipelines.common.progress import Progress
from pipelines.common.store import RunStore
from pipelines.training.arguments import TrainingArgs
from pipelines.training.formatting import TRAINING_FORMAT_FILE
from pipelines.training.result import TrainingResult

FINAL_DIR = "final"
RESULT_FILE = "result.json"


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
    """Save the model (full) or the adapter and its merge (LoRA) under final/, each folder atomically.

    In a process group every rank calls it (a sharded model's save gathers across ranks) but only the
    main process writes final/; the others wait for it, so no rank ends before the model is there.
    """
    main_process = trainer.args.should_save
    final_root = store.path(FINAL_DIR)
    final_root.mkdir(parents=True, exist_ok=True)
    progress.stage("save", total=2 if args.adapter == "lora" and merge else 1)
    adapter_dir = merged_dir = None
    if args.adapter == "lora":
        adapter_dir = _save_atomically(final_root / "adapter", trainer, tokenizer, args.prompt_format)
        progress.advance()
        if merge and main_process:
            from pipelines.training.merge import merge_lora

            merged_dir = (merge_fn or merge_lora)(Path(base_dir), adapter_dir, final_root / "merged")
            progress.advance()
        elif merge:
            merged_dir = final_root / "merged"  # the main process merges it
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
    if main_process:
        store.write_json(result.to_dict(), FINAL_DIR, RESULT_FILE)
        progress.log(f"saved {output_dir}")
    trainer.accelerator.wait_for_everyone()
    return result


def _save_atomically(target: Path, trainer: Trainer, tokenizer: Any, prompt_format: str) -> Path:
    staging = target.with_name(f".staging-{target.name}")
    main_process = trainer.args.should_save
    if main_process:
        shutil.rmtree(staging, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    trainer.save_model(str(staging))  # every rank: a sharded (FSDP, ZeRO-3) model gathers here
    if not main_process:
        return target
    tokenizer.save_pretrained(str(staging))
    (staging / TRAINING_FORMAT_FILE).write_text(json.dumps({"prompt_format": prompt_format}))
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)
    return target


def write_training_config(
    store: RunStore, kind: str, config: Any, model_dir: str | Path, dataset_path: str | Path
) -> None:
    """Record what the run trains, beside its outputs (a lineage entry can be built from it)."""
    store.write_json(
        {"kind": kind, "config": config.to_dict(), "model_dir": str(model_dir), "dataset_path": str(dataset_path)},
        "training_config.json",
    )
