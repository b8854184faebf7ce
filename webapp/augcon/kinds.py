"""The run kinds of this app, declared once (registered in apps.py)."""

from __future__ import annotations

from webapp.runs.registry import RunKind, RunSection

from . import run_page

AUGCON = RunKind(
    kind="augcon",
    label="AugCon: SFT data from a corpus",
    queue="gpu",
    job="workers.kinds.augcon.prepare",
    section=RunSection(template=run_page.TEMPLATE, context=run_page.context),
    form="webapp.augcon.forms.AugConRunForm",
    config_build="webapp.augcon.forms.augcon_run_config",
)
