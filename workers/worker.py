"""The RQ worker class Refinery runs: jobs execute in the worker process so loaded models stay warm.

RQ's default worker forks a fresh work horse per job, which throws away a model loaded by the
previous job. Generation and training jobs are dominated by model loading on small jobs, so the
worker runs jobs in-process (RQ's `SimpleWorker`) and the backend cache in `pipelines.llm.factory`
keeps loaded models between jobs, keyed by model and dtype, least recently used first out when
they would exceed `REFINERY_BACKEND_CACHE_BYTES` (40% of RAM by default). A second job on a warm
model starts generating at once; its run page shows `model_cache_hit` and `model_load_seconds`.
A crash of the process loses no finished work: pipelines write each batch atomically and the run
is detected as lost by its stopped heartbeat.
"""
from __future__ import annotations

from rq.worker import SimpleWorker


class ModelCachingWorker(SimpleWorker):
    """SimpleWorker whose registry heartbeat covers the whole job (RQ sets it to job timeout + 60 s)."""
