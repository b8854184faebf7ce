"""The stages an AugCon run reports, in order (the run page's whole-run progress).

Question trees, negatives, the scorer's training (under "scorer · "), scoring, ranking, the
demonstrations, the answers, the export: `run_augcon`'s order.
"""

from __future__ import annotations

from pipelines.common.progress_plan import PlannedStage
from pipelines.training.stages import trainer_stages


def augcon_stages() -> list[PlannedStage]:
    return [
        PlannedStage("questions", weight=10.0),
        PlannedStage("negatives", weight=3.0),
        *trainer_stages("scorer · "),
        PlannedStage("score", weight=3.0),
        PlannedStage("rank", weight=0.2),
        PlannedStage("demonstrations", weight=1.0),
        PlannedStage("answers", weight=10.0),
        PlannedStage("export", weight=0.2),
    ]
