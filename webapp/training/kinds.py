"""The run kinds of this app, declared once (registered in apps.py)."""

from __future__ import annotations

from pipelines.training.stages import training_stages
from webapp.runs.registry import RunClone, RunKind, RunSection

from . import rl_run_page
from .clone import training_form_data
from .rl_forms import rl_form_data

TRAINING_CLONE = RunClone(
    form_url="training:new", paths={"dataset": "dataset_artifact_id"}, form_data=training_form_data
)

TRAIN_SFT = RunKind(
    kind="train_sft",
    label="Train: SFT",
    queue="gpu",
    job="workers.kinds.training.prepare",
    trains=True,
    form="webapp.training.forms.TrainingRunForm",
    config_build="webapp.training.forms.training_run_config",
    kind_from_config="webapp.training.services.training_kind",
    clone=TRAINING_CLONE,
    stages=lambda config: training_stages(config["trainer"]),
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
    clone=TRAINING_CLONE,
    stages=lambda config: training_stages(config["trainer"]),
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
    clone=TRAINING_CLONE,
    stages=lambda config: training_stages(config["trainer"]),
)

TRAIN_RL = RunKind(
    kind="train_rl",
    label="Train: RL from a reward model",
    queue="gpu",
    job="workers.kinds.training_rl.prepare",
    trains=True,
    form="webapp.training.rl_forms.RLRunForm",
    config_build="webapp.training.rl_forms.rl_run_config",
    clone=RunClone(form_url="training:rl-new", form_data=rl_form_data),
    section=RunSection(template=rl_run_page.TEMPLATE, context=rl_run_page.context),
    stages=lambda config: training_stages("rl"),
)
