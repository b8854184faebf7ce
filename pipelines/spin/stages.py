"""The stages a SPIN run reports, in order (the run page's whole-run progress).

The model is loaded once; each iteration t generates p_t's answers and exports them (the generate
pipeline), then trains p_{t+1} (the preference trainer), all under the prefix "iter t · ".
"""

from __future__ import annotations

from pipelines.common.progress_plan import PlannedStage
from pipelines.generate.stages import generate_stages
from pipelines.training.stages import trainer_stages

from .config import SpinConfig


def spin_stages(config: SpinConfig) -> list[PlannedStage]:
    stages = [PlannedStage("load model", weight=0.5)]
    for iteration in range(config.iterations):
        prefix = f"iter {iteration} · "
        stages += [*generate_stages(prefix), *trainer_stages(prefix, reference=True)]
    return stages
