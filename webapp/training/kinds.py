"""The run kinds of this app, declared once (registered in apps.py)."""

from __future__ import annotations

from webapp.runs.registry import RunKind

TRAIN_SFT = RunKind(
    kind="train_sft",
    label="Train: SFT",
    queue="gpu",
    job="workers.kinds.training.prepare",
    trains=True,
    form="webapp.training.forms.TrainingRunForm",
    config_build="webapp.training.forms.training_run_config",
    kind_from_config="webapp.training.services.training_kind",
)

TRAIN_PREFERENCE = RunKind(
    kind="train_preference",
    label="Train: preference (DPO/SPIN)",
    queue="gpu",
    job="workers.kinds.training.prepare",
    trains=True,
    form="webapp.training.forms.TrainingRunForm",
    config_build="webapp.training.forms.training_run_config",
    kind_from_config="webapp.training.services.training_kind",
)

TRAIN_REWARD = RunKind(
    kind="train_reward",
    label="Train: reward model",
    queue="gpu",
    job="workers.kinds.training.prepare",
    trains=True,
    form="webapp.training.forms.TrainingRunForm",
    config_build="webapp.training.forms.training_run_config",
    kind_from_config="webapp.training.services.training_kind",
)
