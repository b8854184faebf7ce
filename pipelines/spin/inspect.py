"""What SPIN's pages show, read from the run directory (Django-free): the iteration table.

The file names of the run directory's top level and of each `iter-<t>/` that readers outside the
pipeline need live here; `pipelines/spin/run.py` documents the whole layout.
"""

from __future__ import annotations

from typing import Any

from pipelines.common.store import RunStore

SPIN_PROMPTS_FILE = "prompts.jsonl"
PROMPTS_SUMMARY_FILE = "prompts-summary.json"
SUMMARY_FILE = "summary.json"
"""An iteration's result, in `iter-<t>/`; its presence means the iteration is done."""


def iteration_rows(store: RunStore, count: int) -> list[dict[str, Any]]:
    """One row of the iteration table per iteration 0 .. count-1 (all finished), from the summaries on disk.

    The rows hold no model names: the run page finds each iteration's registry entry by its
    `spin_iteration` (the registry names the entries, not the pipeline).
    """
    from pipelines.training.saving import finished_result  # the training layer imports transformers

    rows = []
    for iteration in range(count):
        summary = store.read_json(f"iter-{iteration}", SUMMARY_FILE)
        metrics = summary["metrics"]
        # The iteration's training length report: its pairs against the limits, and those cut or dropped.
        training = finished_result(RunStore(store.path(f"iter-{iteration}", "train")))
        rows.append(
            {
                "iteration": iteration,
                "pairs": summary["pairs"],
                "train_pairs": summary["train_pairs"],
                "learning_rate": summary["learning_rate"],
                "beta": summary["beta"],
                "steps": summary["steps"],
                "train_loss": metrics.get("train_loss"),
                "last_loss": metrics.get("loss"),
                "reward_accuracy": metrics.get("rewards/accuracies"),
                "reward_margin": metrics.get("rewards/margins"),
                "generation_seconds": summary["generation_seconds"],
                "seconds": summary["seconds"],
                "lengths": dict(training.lengths) if training is not None else {},
            }
        )
    return rows
