"""SPIN's section of the run page: one row per iteration and a few real-vs-generated pairs side by side."""

from __future__ import annotations

from typing import Any

from webapp.runs.models import PipelineRun

TEMPLATE = "spin/partials/_run_section.html"
SAMPLE_PAIRS = 3


def context(run: PipelineRun) -> dict[str, Any]:
    iterations = run.summary.get("iterations", [])
    samples = []
    for artifact in run.artifacts.filter(name__startswith="pairs-iter").order_by("name"):
        samples.append({"artifact": artifact, "pairs": artifact.preview[:SAMPLE_PAIRS]})
    from webapp.spin.services import training_summary

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
