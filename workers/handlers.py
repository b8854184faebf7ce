"""One handler per run kind: build the pipeline's config, backend and store from the run, call it."""
from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings

from pipelines.common.progress import Progress
from pipelines.common.store import RunStore
from webapp.runs import services
from webapp.runs.models import Artifact, PipelineRun


def handle_generate(run: PipelineRun, progress: Progress) -> None:
    """Answer the run's prompt set with its model; the artifact is the generations dataset."""
    from pipelines.generate import GenerateConfig, run_generate
    from webapp.runs.kinds import write_prompt_snapshot

    config = GenerateConfig.from_dict(run.config["generate"])
    store = RunStore(services.run_directory(run))
    write_prompt_snapshot(run=run, store=store)
    backend = load_backend(run, progress)
    result = run_generate(config, backend, store, progress)
    services.artifact_register(
        run=run,
        name="generations",
        kind=Artifact.Kind.GENERATIONS,
        jsonl_path=result.jsonl_path,
        parquet_path=result.parquet_path,
    )
    services.run_update_summary(
        run_id=run.pk,
        values={
            "rows": result.row_count,
            "completion_tokens": result.completion_tokens,
            "tokens_per_second": round(result.tokens_per_second, 2),
            "batches_generated_this_attempt": result.generated_this_attempt,
        },
    )


def load_backend(run: PipelineRun, progress: Progress):  # type: ignore[no-untyped-def]
    """Load (or reuse) the run's model; the load time and cache hit go on the run page."""
    from pipelines.llm.factory import get_backend
    from webapp.registry.models import ModelEntry

    entry = ModelEntry.objects.get(pk=run.config["model_id"])
    progress.stage("load model", total=1)
    started = time.monotonic()
    backend, was_cached = get_backend(entry.backend_spec(), model_cache_dir=settings.MODEL_CACHE_DIR)
    seconds = round(time.monotonic() - started, 2)
    progress.log(f"model {entry.name} {'reused from memory' if was_cached else 'loaded'} in {seconds}s")
    services.run_update_summary(run_id=run.pk, values={"model_load_seconds": seconds, "model_cache_hit": was_cached})
    progress.advance(1)
    return backend


HANDLERS: dict[str, Callable[[PipelineRun, Progress], None]] = {
    PipelineRun.Kind.GENERATE: handle_generate,
}
