"""The stages a win-rate evaluation reports, in order (the run page's whole-run progress).

Every contestant's answers (baseline included), then per candidate its judgments and statistics.
"""

from __future__ import annotations

from pipelines.common.progress_plan import PlannedStage

from .config import EvaluationConfig


def evaluation_stages(config: EvaluationConfig) -> list[PlannedStage]:
    stages = [PlannedStage(f"answers · {contestant.label}", weight=5.0) for contestant in config.contestants]
    for candidate in config.candidates:
        stages += [
            PlannedStage(f"judge · {candidate.label}", weight=5.0),
            PlannedStage(f"statistics · {candidate.label}", weight=0.1),
        ]
    return stages
