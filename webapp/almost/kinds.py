"""The run kinds of this app, declared once (registered in apps.py)."""

from __future__ import annotations

from pipelines.training.presets import TRAINING_PRESETS
from webapp.runs.registry import RunKind, RunSection

from . import run_page, services

ALMOST = RunKind(
    kind="almost",
    label="ALMoST: synthetic comparisons",
    queue="gpu",
    job="workers.kinds.almost.prepare",
    section=RunSection(template=run_page.TEMPLATE, context=run_page.context),
    estimate=services.almost_cost_estimate,
    presets=TRAINING_PRESETS,  # the reward model's training settings
    form_url="almost:new",
)
