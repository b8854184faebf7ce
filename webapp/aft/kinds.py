"""The run kinds of this app, declared once (registered in apps.py)."""

from __future__ import annotations

from typing import Any

from webapp.runs.registry import RunKind, RunSection

from . import run_page


def _data_queue(config: dict[str, Any]) -> str:
    """Without a model to run (a rule-based target), the job needs no GPU worker."""
    return "gpu" if config.get("model_id") else "default"


AFT_INFERENCE = RunKind(
    kind="aft_inference",
    label="AFT: propose-and-aggregate answers",
    queue="gpu",
    job="workers.kinds.aft_inference.prepare",
    section=RunSection(template=run_page.TEMPLATE, context=run_page.context),
    form="webapp.aft.forms.AftInferenceForm",
    config_build="webapp.aft.forms.aft_inference_run_config",
)

AFT_DATA = RunKind(
    kind="aft_data",
    label="AFT: aggregation training data",
    queue=_data_queue,
    job="workers.kinds.aft_data.prepare",
    section=RunSection(template=run_page.TEMPLATE, context=run_page.context),
    form="webapp.aft.forms.AggregationDataForm",
    config_build="webapp.aft.forms.aft_data_run_config",
)
