"""The run kinds of this app, declared once (registered in apps.py)."""

from __future__ import annotations

from pipelines.evaluation.config import EvaluationConfig
from pipelines.evaluation.stages import evaluation_stages
from webapp.runs.registry import RunKind, RunSection

from . import run_page

EVALUATION = RunKind(
    kind="evaluation",
    label="Win-rate evaluation",
    queue="gpu",
    job="workers.kinds.evaluation.prepare",
    section=RunSection(template=run_page.TEMPLATE, context=run_page.context),
    stages=lambda config: evaluation_stages(EvaluationConfig.from_dict(config["evaluation"])),
)
