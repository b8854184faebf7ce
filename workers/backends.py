"""The worker's model loader: the process's warm backends, each load logged and put on the run page."""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings

from pipelines.common.progress import Progress
from pipelines.llm.factory import backend_cache, build_backend, get_backend, model_directory
from pipelines.llm.loader import BackendSpec, spec_name
from pipelines.llm.token_progress import report_tokens_to
from pipelines.llm.types import LLMBackend
from webapp.runs import services
from workers.database import retry_through_outage


class WorkerBackends:
    """Implements `pipelines.llm.loader.BackendLoader` for one run.

    Warm backends stay in the worker between jobs (`pipelines.llm.factory.backend_cache`), so the
    next run on the same model starts at once; the summary says whether this run found it warm.
    Every backend handed out reports its calls' tokens to this run's progress (the hook is set
    again on each load, so a warm backend reports to the run that loaded it last).
    """

    def __init__(self, run_id: int, progress: Progress) -> None:
        self.run_id = run_id
        self.progress = progress
        self.model_cache_dir = Path(settings.MODEL_CACHE_DIR)

    def load(self, spec: BackendSpec, *, fresh: bool = False) -> LLMBackend:
        started = time.monotonic()
        if fresh:
            backend, was_cached = build_backend(spec, model_cache_dir=self.model_cache_dir), False
        else:
            backend, was_cached = get_backend(spec, model_cache_dir=self.model_cache_dir)
        seconds = round(time.monotonic() - started, 2)
        report_tokens_to(backend, self.progress)
        name = spec.get("name") or spec_name(spec)
        self.progress.log(f"model {name} {'reused from memory' if was_cached else 'loaded'} in {seconds}s")
        values: dict[str, object] = {"model_load_seconds": seconds, "model_cache_hit": was_cached}
        # A CPU model registered with dtype "auto" may run in bfloat16: the run says so, and why.
        dtype_choice = getattr(backend, "dtype_choice", None)
        if dtype_choice is not None:
            values["model_dtype"] = dtype_choice.dtype
            values["model_dtype_reason"] = dtype_choice.reason
            self.progress.log(f"model {name} runs in {dtype_choice.dtype}: {dtype_choice.reason}")
        retry_through_outage(lambda: services.run_update_summary(run_id=self.run_id, values=values))
        return backend

    def release_all(self) -> None:
        backend_cache.clear()

    def model_directory(self, spec: BackendSpec) -> Path:
        return model_directory(spec, self.model_cache_dir)
