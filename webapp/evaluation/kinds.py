"""The run kinds of this app, declared once (registered in apps.py)."""

from __future__ import annotations

from pipelines.evaluation.config import EvaluationConfig
from pipelines.evaluation.stages import evaluation_stages
from webapp.runs.registry import RunClone, RunKind, RunSection

from . import run_page
from .clone import evaluation_form_data

EVALUATION = RunKind(
    kind="evaluation",
    label="Win-rate evaluation",
    queue="gpu",
    job="workers.kinds.evaluation.prepare",
    section=RunSection(template=run_page.TEMPLATE, context=run_page.context),
    clone=RunClone(form_url="evaluation:new", form_data=evaluation_form_data),
    stages=lambda config: evaluation_stages(EvaluationConfig.from_dict(config["evaluation"])),
)
