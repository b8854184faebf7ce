"""TRANSITION: helpers of the method handlers not yet converted to workers/kinds/ (removed in this change)."""

from __future__ import annotations

import time

from django.conf import settings

from pipelines.common.progress import Progress
from webapp.runs import services
from webapp.runs.models import PipelineRun
from workers.database import retry_through_outage


def final_metrics(metrics: dict) -> dict:  # type: ignore[type-arg]
    """The figures worth keeping on a registry entry: losses, accuracies, margins, runtime; rounded."""
    kept = {}
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if any(word in name for word in ("loss", "accurac", "margin", "runtime")):
            kept[name] = round(float(value), 5)
    return kept


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
    retry_through_outage(
        lambda: services.run_update_summary(
            run_id=run.pk, values={"model_load_seconds": seconds, "model_cache_hit": was_cached}
        )
    )
    progress.advance(1)
    return backend
