"""The run kinds of this app, declared once (registered in apps.py)."""

from __future__ import annotations

from pipelines.augcon.stages import augcon_stages
from webapp.runs.registry import RunClone, RunKind, RunSection

from . import run_page
from .clone import augcon_form_data
from .forms import FLOAT_SETTINGS, INTEGER_SETTINGS

# Settings named like a scorer setting too (max_length, seed ...) are the top level's; the scorer's have
# their own form fields (scorer_learning_rate ...), filled by augcon_form_data.
AUGCON_PATHS = {name: f"augcon.{name}" for name in INTEGER_SETTINGS + FLOAT_SETTINGS}

AUGCON = RunKind(
    kind="augcon",
    label="AugCon: SFT data from a corpus",
    queue="gpu",
    job="workers.kinds.augcon.prepare",
    section=RunSection(template=run_page.TEMPLATE, context=run_page.context),
    form="webapp.augcon.forms.AugConRunForm",
    config_build="webapp.augcon.forms.augcon_run_config",
    clone=RunClone(form_url="augcon:new", paths=AUGCON_PATHS, form_data=augcon_form_data),
    stages=lambda config: augcon_stages(),
)
