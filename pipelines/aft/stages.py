"""The stages AFT's two runs report, in order (the run page's whole-run progress)."""

from __future__ import annotations

from pipelines.common.progress_plan import PlannedStage

from .run import STAGE


def inference_stages() -> list[PlannedStage]:
    """Propose and aggregate, batch by batch, then the table."""
    return [PlannedStage(STAGE, weight=10.0), PlannedStage("export", weight=0.2)]


def data_stages() -> list[PlannedStage]:
    """Group the responses by prompt, write the targets (a model's work with the aggregator rule), the table."""
    return [
        PlannedStage("group responses", weight=0.2),
        PlannedStage("write targets", weight=10.0),
        PlannedStage("export", weight=0.2),
    ]
