"""AFT inference runs: snapshot the prompt set; the pipeline answers it through propose-and-aggregate layers."""

from __future__ import annotations

from pipelines.aft import AftConfig, AftInputs, run_aft
from pipelines.common.store import RunStore
from webapp.registry.models import ModelEntry
from webapp.runs.models import PipelineRun
from workers.kinds.prompts import snapshot_prompt_set
from workers.runner import PreparedJob


def prepare(run: PipelineRun, store: RunStore) -> PreparedJob:
    snapshot_prompt_set(prompt_set_id=run.config["prompt_set_id"], store=store)
    model = ModelEntry.objects.get(pk=run.config["model_id"])
    return PreparedJob(
        pipeline=run_aft,
        config=AftConfig.from_dict(run.config["aft"]),
        inputs=AftInputs(model=model.backend_spec()),
        models={"model": model},
    )
