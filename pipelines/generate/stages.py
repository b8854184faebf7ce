"""The stages a generate run reports, in order (the run page's whole-run progress): answer, export."""

from __future__ import annotations

from pipelines.common.progress_plan import PlannedStage

from .run import STAGE


def generate_stages(prefix: str = "") -> list[PlannedStage]:
    """Batches of answers (the model's work), then the table written from them."""
    return [PlannedStage(f"{prefix}{STAGE}", weight=10.0), PlannedStage(f"{prefix}export", weight=0.2)]
