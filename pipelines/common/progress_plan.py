"""The whole run's progress, from the stage a pipeline reports and the stages it will go through.

A pipeline reports one stage at a time (`Progress.stage(name, total)`, then `advance`), so the
database holds only the current stage's counts: "1/1 (100%)" of a short stage says nothing about
the run. A method declares its stages in order, each with a weight (its share of the run's time,
roughly), as a function of the run's config (SPIN's iterations, ALMoST's configurations); this
module turns (plan, current stage, done, total) into the run's fraction. Finished stages count in
full, the current one by its counts, later ones not at all: the fraction never goes back while
the pipeline moves forward through its plan, and it reaches 1 only when the last stage is done.

Pure Python, no Django: the run page and a test compute it the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PlannedStage:
    """One stage of a method's plan.

    - `name`: the stage name the pipeline reports, or (with `prefix`) the start of it, for a stage
      whose name carries details (ALMoST's "rmsp · sample (A, n=4)"). One planned stage is one
      reported stage: a group of stages listed as one would make the bar go back between them.
    - `weight`: the stage's share of the run, relative to the other stages' (model calls and
      training weigh more than writing a file).
    - `label`: how the page names it ("reward model"); the name when empty.
    """

    name: str
    weight: float = 1.0
    prefix: bool = False
    label: str = ""

    def matches(self, stage: str) -> bool:
        return stage.startswith(self.name) if self.prefix else stage == self.name

    @property
    def title(self) -> str:
        return self.label or self.name.strip(" ·")


@dataclass(frozen=True)
class RunProgress:
    """Where a run stands: its fraction, and which stage of how many (1-based), with that stage's counts."""

    fraction: float
    stage_number: int
    stage_count: int
    stage: str
    done: int
    total: int

    @property
    def percent(self) -> int:
        # Rounded down (after clearing float noise: 0.99 * 100 is 98.99999...), so 100% means complete.
        return int(round(self.fraction * 100, 6))


def planned_stage_index(plan: Sequence[PlannedStage], stage: str, *, after: int = 0) -> int | None:
    """The index of the plan's stage that `stage` belongs to (the first at or after `after`), or None."""
    for index in range(after, len(plan)):
        if plan[index].matches(stage):
            return index
    return None


def whole_run_progress(
    plan: Sequence[PlannedStage], *, stage: str, done: int, total: int, finished: bool = False
) -> RunProgress | None:
    """The run's progress at `stage` with `done` of `total`; None when the stage is not in the plan.

    `finished`: the run succeeded (every stage is complete, whatever the last counts said).
    A stage reported with no total counts as not started (nothing is known of it yet).
    """
    if not plan:
        return None
    weights = [max(planned.weight, 0.0) for planned in plan]
    whole = sum(weights) or 1.0
    if finished:
        return RunProgress(1.0, len(plan), len(plan), stage, done, total)
    index = planned_stage_index(plan, stage)
    if index is None:
        return None
    within = min(1.0, done / total) if total > 0 else 0.0
    fraction = (sum(weights[:index]) + weights[index] * within) / whole
    # The last stage at 100% is still running until the run says it finished (registration follows).
    fraction = min(fraction, 0.99)
    return RunProgress(fraction, index + 1, len(plan), stage, done, total)
