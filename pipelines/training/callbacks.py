"""The bridge from a transformers Trainer to the run's `Progress`: steps, live metrics and cancel. Imports torch."""

from __future__ import annotations

from typing import Any

import torch
from transformers import TrainerCallback

from pipelines.common.progress import Progress
from pipelines.errors import RunCancelled


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


