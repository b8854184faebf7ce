"""Reads for run pages: lists, one run, the whole run's progress, artifact rows, and the queue/worker picture from Redis."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import django_rq
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from pipelines.common.progress_plan import RunProgress, whole_run_progress
from pipelines.errors import InvalidConfigError
from webapp.library.models import Artifact

from .models import PipelineRun
from .registry import UnknownRunKind, run_kind

QUEUE_NAMES = ("gpu", "default")

logger = logging.getLogger(__name__)


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


def run_progress(run: PipelineRun) -> RunProgress | None:
    """The whole run's progress across its kind's stages (`RunKind.stages`), or None when it cannot be told.

    None for a kind without a stage plan, a run not started, or a stage its plan does not name (the
    page then shows the current stage's counts alone rather than a whole-run figure it cannot vouch for).
    """
    if run.status == PipelineRun.Status.QUEUED or not run.stage:
        return None
    try:
        stages = run_kind(run.kind).stages
        plan = stages(run.config) if stages is not None else None
    except (UnknownRunKind, InvalidConfigError, KeyError, TypeError, ValueError) as error:
        logger.warning("run %s: no stage plan for its config (%s)", run.pk, error)
        return None
    if not plan:
        return None
    return whole_run_progress(
        plan,
        stage=run.stage,
        done=run.progress_done,
        total=run.progress_total,
        finished=run.status == PipelineRun.Status.SUCCEEDED,
    )


def runs_with_live_state(runs: Sequence[PipelineRun]) -> Sequence[PipelineRun]:
    """`runs`, each with `whole_progress` (see `run_progress`) and, when queued, `queue_position`.

    The position is the run's place in its RQ queue (1 = next to be picked), read from Redis with one
    read per queue; None when Redis cannot say or the job is not waiting in the queue.
    """
    positions = queue_positions()
    for run in runs:
        run.whole_progress = run_progress(run)  # type: ignore[attr-defined]
        run.queue_position = (  # type: ignore[attr-defined]
            positions.get(run.rq_job_id) if run.status == PipelineRun.Status.QUEUED else None
        )
    return runs


def run_queue_position(run: PipelineRun) -> int | None:
    """A queued run's place in its RQ queue (1 = next), or None (not queued, or Redis cannot say)."""
    return queue_positions().get(run.rq_job_id) if run.status == PipelineRun.Status.QUEUED else None


def queue_positions() -> dict[str, int]:
    """Job id -> its 1-based place in its queue, for every job waiting in the run queues (read-only)."""
    from redis.exceptions import RedisError

    positions: dict[str, int] = {}
    try:
        for name in QUEUE_NAMES:
            for place, job_id in enumerate(django_rq.get_queue(name).get_job_ids(), start=1):
                positions[job_id] = place
    except RedisError as error:
        logger.warning("queue positions unknown: Redis did not answer (%s)", error)
        return {}
    return positions


def queue_overview() -> dict[str, Any]:
    """Queue depths and live workers, each with the run it is on; says so instead of failing when Redis
    cannot be reached. Read-only: nothing is written to Redis or the database."""
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
    runs_by_job = {
        run.rq_job_id: run
        for run in PipelineRun.objects.filter(
            rq_job_id__in=[worker["current_job"] for worker in workers if worker["current_job"]]
        )
    }
    for worker in workers:
        worker["run"] = runs_by_job.get(worker["current_job"])
    return {"available": True, "error": "", "queues": queues, "workers": workers}
