"""Generate runs: snapshot the prompt set; the pipeline answers it with the run's model."""

from __future__ import annotations

from pipelines.common.store import RunStore
from pipelines.generate import GenerateConfig, GenerateInputs, run_generate
from webapp.registry.models import ModelEntry
from webapp.runs.models import PipelineRun
from workers.kinds.prompts import snapshot_prompt_set
from workers.runner import PreparedJob


def prepare(run: PipelineRun, store: RunStore) -> PreparedJob:
    snapshot_prompt_set(prompt_set_id=run.config["prompt_set_id"], store=store)
    model = ModelEntry.objects.get(pk=run.config["model_id"])
    return PreparedJob(
        pipeline=run_generate,
        config=GenerateConfig.from_dict(run.config["generate"]),
        inputs=GenerateInputs(model=model.backend_spec()),
        models={"model": model},
    )
