"""AFT aggregation-data runs: the source artifact's rows in, aggregation SFT rows out.

The source is read once into the run directory (`groups.jsonl`), so a resume builds from the same
groups. Only the `aggregator` rule has a model (the form stores none for `best_response`), and the
pipeline loads it only then: a rule-based run needs no GPU worker.
"""

from __future__ import annotations

from pathlib import Path

from pipelines.aft import AggregationDataConfig, AggregationDataInputs, run_aggregation_data
from pipelines.common.store import RunStore
from webapp.library.models import Artifact
from webapp.registry.models import ModelEntry
from webapp.runs.models import PipelineRun
from workers.runner import PreparedJob


def prepare(run: PipelineRun, store: RunStore) -> PreparedJob:
    source = Artifact.objects.get(pk=run.config["source_artifact_id"])
    model_id = run.config.get("model_id")
    model = ModelEntry.objects.get(pk=model_id) if model_id else None
    return PreparedJob(
        pipeline=run_aggregation_data,
        config=AggregationDataConfig.from_dict(run.config["data"]),
        inputs=AggregationDataInputs(
            source_path=Path(source.jsonl_path), model=model.backend_spec() if model is not None else None
        ),
        models={"model": model} if model is not None else {},
        datasets={"dataset": source},
    )
