"""The run kinds of this app, declared once (registered in apps.py)."""

from __future__ import annotations

from webapp.runs.registry import RunKind, RunSection

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
)
