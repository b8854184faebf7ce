"""The run kinds of this app, declared once (registered in apps.py)."""

from __future__ import annotations

from pipelines.spin.config import SpinConfig
from pipelines.spin.stages import spin_stages
from webapp.runs.registry import RunClone, RunKind, RunSection

from . import run_page

SPIN = RunKind(
    kind="spin",
    label="SPIN: self-play fine-tuning",
    queue="gpu",
    job="workers.kinds.spin.prepare",
    section=RunSection(template=run_page.TEMPLATE, context=run_page.context),
    trains=True,
    form="webapp.spin.forms.SpinRunForm",
    config_build="webapp.spin.forms.spin_run_config",
    clone=RunClone(
        form_url="spin:new",
        paths={
            "dataset": "dataset_artifact_id",
            "max_new_tokens": "spin.generation.max_tokens",
            "learning_rate": "spin.training.training.learning_rate",
            "max_steps": "spin.training.training.max_steps",
            "beta": "spin.training.beta",
        },
    ),
    stages=lambda config: spin_stages(SpinConfig.from_dict(config["spin"])),
)
