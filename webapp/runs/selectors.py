"""Reads for run pages: lists, one run, artifact rows, and the queue/worker picture from Redis."""
from __future__ import annotations

import json
from itertools import islice
from pathlib import Path
from typing import Any

import django_rq
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from webapp.library.models import Artifact

from .models import PipelineRun

QUEUE_NAMES = ("gpu", "default")


def run_list(*, status: str = "") -> QuerySet[PipelineRun]:
    runs = PipelineRun.objects.select_related("created_by").order_by("-created_at")
    return runs.filter(status=status) if status else runs


def runs_in_flight() -> QuerySet[PipelineRun]:
    return run_list().filter(status__in=PipelineRun.ACTIVE_STATUSES)


def run_get(*, run_id: int) -> PipelineRun:
    return get_object_or_404(PipelineRun.objects.select_related("created_by"), pk=run_id)


def artifact_get(*, artifact_id: int) -> Artifact:
    return get_object_or_404(Artifact.objects.select_related("run"), pk=artifact_id)


def artifact_list_recent(*, limit: int = 10) -> QuerySet[Artifact]:
    return Artifact.objects.select_related("run").order_by("-created_at")[:limit]


def artifact_rows(*, artifact: Artifact, offset: int, limit: int) -> list[dict[str, Any]]:
    """Rows [offset, offset+limit) read lazily from the JSONL, so a large artifact is never loaded whole."""
    with Path(artifact.jsonl_path).open(encoding="utf-8") as handle:
        lines = (line for line in handle if line.strip())
        return [json.loads(line) for line in islice(lines, offset, offset + limit)]


def queue_overview() -> dict[str, Any]:
    """Queue depths and live workers; says so instead of failing when Redis cannot be reached."""
    from redis.exceptions import RedisError
    from rq import Worker

    try:
        queues = [{"name": name, "depth": django_rq.get_queue(name).count} for name in QUEUE_NAMES]
        connection = django_rq.get_connection("default")
        workers = [
            {
                "name": worker.name,
                "state": worker.get_state(),
                "queues": ", ".join(worker.queue_names()),
                "current_job": worker.get_current_job_id() or "",
            }
            for worker in Worker.all(connection=connection)
        ]
    except RedisError as error:
        return {"available": False, "error": str(error), "queues": [], "workers": []}
    return {"available": True, "error": "", "queues": queues, "workers": workers}
