"""The run kinds of this app, declared once (registered in apps.py)."""

from __future__ import annotations

from typing import Any

from pipelines.aft.stages import data_stages, inference_stages
from webapp.runs.registry import RunClone, RunKind, RunSection

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
    clone=RunClone(
        form_url="aft:new",
        paths={
            "n": "aft.proposal_params.n",
            "max_tokens": "aft.proposal_params.max_tokens",
            "proposal_temperature": "aft.proposal_params.temperature",
            "proposal_top_p": "aft.proposal_params.top_p",
            "aggregation_temperature": "aft.aggregation_params.temperature",
            "aggregation_top_p": "aft.aggregation_params.top_p",
            "final_temperature": "aft.final_params.temperature",
        },
    ),
    stages=lambda config: inference_stages(),
)

AFT_DATA = RunKind(
    kind="aft_data",
    label="AFT: aggregation training data",
    queue=_data_queue,
    job="workers.kinds.aft_data.prepare",
    section=RunSection(template=run_page.TEMPLATE, context=run_page.context),
    form="webapp.aft.forms.AggregationDataForm",
    config_build="webapp.aft.forms.aft_data_run_config",
    clone=RunClone(
        form_url="aft:data-new",
        paths={"source": "source_artifact_id", "aggregator_temperature": "data.aggregator.temperature"},
    ),
    stages=lambda config: data_stages(),
)
