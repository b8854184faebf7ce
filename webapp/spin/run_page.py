"""SPIN's section of the run page: one row per iteration and a few real-vs-generated pairs side by side."""

from __future__ import annotations

from typing import Any

from webapp.runs.models import PipelineRun

TEMPLATE = "spin/partials/_run_section.html"
SAMPLE_PAIRS = 3


def context(run: PipelineRun) -> dict[str, Any]:
    from webapp.spin.services import training_summary

    iterations = _with_model_names(run, run.summary.get("iterations", []))
    samples = []
    for artifact in run.artifacts.filter(name__startswith="pairs-iter").order_by("name"):
        samples.append({"artifact": artifact, "pairs": artifact.preview[:SAMPLE_PAIRS]})
    return {
        "iterations": iterations,
        "samples": samples,
        "planned": run.config.get("spin", {}).get("iterations"),
        "training": training_summary(run.config) if run.config.get("spin") else {},
        "prompts": run.summary.get("prompts"),
        # Each iteration's token lengths and the pairs cut or dropped (shown as on a training run).
        "length_rows": [
            {"label": f"iter {row['iteration']}", "lengths": row["lengths"]} for row in iterations if row.get("lengths")
        ],
    }


def _with_model_names(run: PipelineRun, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The iteration table's rows with each iteration's registry entry (found by its `spin_iteration`)."""
    entries = {
        entry.training_config.get("spin_iteration"): entry
        for entry in run.produced_models.only("pk", "name", "training_config")
    }
    named = []
    for row in rows:
        entry = entries.get(row["iteration"])
        if entry is not None:
            row = {**row, "model": entry.name, "model_id": entry.pk}
        named.append(row)
    return named
