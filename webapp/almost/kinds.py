"""The run kinds of this app, declared once (registered in apps.py)."""

from __future__ import annotations

from webapp.runs.registry import RunKind, RunSection

from . import run_page

ALMOST = RunKind(
    kind="almost",
    label="ALMoST: synthetic comparisons",
    queue="gpu",
    job="workers.kinds.almost.prepare",
    section=RunSection(template=run_page.TEMPLATE, context=run_page.context),
    form="webapp.almost.forms.AlmostRunForm",
    config_build="webapp.almost.forms.almost_run_config",
)
