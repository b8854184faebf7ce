"""AFT jobs: propose-and-aggregate answers for a prompt set, and aggregation training data from an artifact."""

from __future__ import annotations

from typing import Any

from pipelines.common.progress import Progress
from pipelines.common.store import RunStore
from webapp.library.models import Artifact
from webapp.runs import services
from webapp.runs.models import PipelineRun
from workers.database import retry_through_outage


def handle(run: PipelineRun, progress: Progress) -> None:
    """Both AFT run kinds share this module; the run's kind picks the job."""
    if run.kind == "aft_inference":
        handle_inference(run, progress)
    elif run.kind == "aft_data":
        handle_data(run, progress)
    else:
        raise ValueError(f"workers.methods.aft cannot run a {run.kind!r} run")


def handle_inference(run: PipelineRun, progress: Progress) -> None:
    """Answer the run's prompt set with its model through the configured layers (or one plain sample)."""
    from webapp.runs.kinds import write_prompt_snapshot

    from pipelines.aft import AftConfig, run_aft
    from workers.handlers import load_backend

    config = AftConfig.from_dict(run.config["aft"])
    store = RunStore(services.run_directory(run))
    write_prompt_snapshot(run=run, store=store)
    backend = load_backend(run, progress)
    result = run_aft(config, backend, store, progress)
    retry_through_outage(
        lambda: services.artifact_register(
            run=run,
            name="aggregations" if config.mode == "aggregate" else "single samples",
            kind=Artifact.Kind.AGGREGATIONS,
            jsonl_path=result.jsonl_path,
            parquet_path=result.parquet_path,
        )
    )
    retry_through_outage(
        lambda: services.run_update_summary(
            run_id=run.pk, values=_flat_summary(result.summary, result.generated_this_attempt)
        )
    )


def _flat_summary(summary: dict[str, Any], batches_this_attempt: int) -> dict[str, Any]:
    """The run page shows the summary as a flat table: one line per layer's tokens."""
    values = {key: value for key, value in summary.items() if not isinstance(value, dict)}
    for name, tokens in summary.get("completion_tokens_per_layer", {}).items():
        values[f"completion tokens · {name}"] = tokens
    values["batches_generated_this_attempt"] = batches_this_attempt
    return values


def handle_data(run: PipelineRun, progress: Progress) -> None:
    """Build aggregation SFT rows from the source artifact; the `aggregator` rule loads the run's model."""
    from pipelines.aft import AggregationDataConfig, run_aggregation_data

    config = AggregationDataConfig.from_dict(run.config["data"])
    source = Artifact.objects.get(pk=run.config["source_artifact_id"])
    store = RunStore(services.run_directory(run))
    backend = None
    if config.needs_model:
        from workers.handlers import load_backend

        backend = load_backend(run, progress)
    result = run_aggregation_data(config, source.jsonl_path, store, progress, backend=backend)
    artifact = retry_through_outage(
        lambda: services.artifact_register(
            run=run,
            name="aggregation sft",
            kind=Artifact.Kind.SFT,
            jsonl_path=result.jsonl_path,
            parquet_path=result.parquet_path,
        )
    )
    retry_through_outage(
        lambda: services.run_update_summary(
            run_id=run.pk,
            values={
                "rows": result.row_count,
                "aggregation_rows": result.aggregation_rows,
                "plain_rows": result.plain_rows,
                **{f"groups · {key}": value for key, value in result.counts.items()},
                "batches_generated_this_attempt": result.generated_this_attempt,
                "sft_artifact_id": artifact.pk,
            },
        )
    )
