"""The stages a training run reports, in order, for the run page's whole-run progress.

`run_training` loads the model, an SFT run tokenizes, a preference run scores the reference
log-probabilities, the trainer trains (`ProgressCallback`, one step per count) and saves. Methods
that train inside their run (SPIN, ALMoST's reward model, AugCon's scorer) reuse these names under
their prefix.
"""

from __future__ import annotations

from pipelines.common.progress_plan import PlannedStage

TRAIN_WEIGHT = 20.0
"""Training dominates a run that trains: the other stages are small beside it."""


def trainer_stages(prefix: str = "", *, reference: bool = False) -> list[PlannedStage]:
    """What `train_and_save` (and a preference trainer's reference pass before it) reports."""
    stages = [PlannedStage(f"{prefix}reference", weight=2.0, label="reference log-probs")] if reference else []
    return [*stages, PlannedStage(f"{prefix}train", weight=TRAIN_WEIGHT), PlannedStage(f"{prefix}save", weight=0.5)]


def rl_stages(prefix: str = "") -> list[PlannedStage]:
    """What `run_rl` reports after its model is found: the reward model loads, RL trains, the policy is saved."""
    return [
        PlannedStage(f"{prefix}load reward model", weight=0.5),
        PlannedStage(f"{prefix}train", weight=TRAIN_WEIGHT),
        PlannedStage(f"{prefix}save", weight=0.5),
    ]


def training_stages(trainer: str) -> list[PlannedStage]:
    """A training run of `trainer` ("sft", "preference", "reward" or "rl")."""
    before = [PlannedStage("load model", weight=0.5)]
    if trainer == "rl":
        return [*before, *rl_stages()]
    if trainer == "sft":
        before.append(PlannedStage("tokenize", weight=0.5))
    return [*before, *trainer_stages(reference=trainer == "preference")]
