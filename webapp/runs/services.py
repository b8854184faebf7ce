"""Every write to runs and artifacts: create, enqueue, progress, finish, cancel, resume, lost detection.

Workers call the progress functions with ids and `attempt`, and the updates are filtered on the
attempt, so a superseded attempt (a worker thought dead that comes back) cannot overwrite a resumed run.
"""
from __future__ import annotations

import contextlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import django_rq
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .models import Artifact, PipelineRun

JOB_FUNCTION = "workers.jobs.run_pipeline_job"
PREVIEW_ROWS = 20
METRIC_ROWS_KEPT = 5000


class RunStateError(Exception):
    """The requested transition is not allowed from the run's current status."""


def run_directory(run: PipelineRun) -> Path:
    return Path(settings.ARTIFACT_ROOT) / "runs" / run.run_dir_name


@transaction.atomic
def run_create(*, user: Any, kind: str, config: dict[str, Any], name: str = "", queue_name: str = "gpu") -> PipelineRun:
    """Save a run whose config was validated by `webapp.runs.kinds`, and enqueue it after commit."""
    run = PipelineRun(kind=kind, config=config, name=name, created_by=user, queue_name=queue_name, queued_at=timezone.now())
    run.full_clean()
    run.save()
    _enqueue(run)
    return run


def _enqueue(run: PipelineRun) -> None:
    """Enqueue on commit (django-rq COMMIT_MODE); the job id is derived, so it is known before commit."""
    job_id = f"run-{run.pk}-{run.attempt}"
    PipelineRun.objects.filter(pk=run.pk).update(rq_job_id=job_id)
    run.rq_job_id = job_id
    queue = django_rq.get_queue(run.queue_name)
    queue.enqueue(
        JOB_FUNCTION,
        run.pk,
        run.attempt,
        job_id=job_id,
        job_timeout=settings.RQ_QUEUES[run.queue_name]["DEFAULT_TIMEOUT"],
        result_ttl=24 * 3600,
        failure_ttl=7 * 24 * 3600,
    )


def run_mark_started(*, run: PipelineRun, worker_name: str) -> PipelineRun:
    now = timezone.now()
    updated = PipelineRun.objects.filter(pk=run.pk, attempt=run.attempt, status=PipelineRun.Status.QUEUED).update(
        status=PipelineRun.Status.RUNNING,
        worker_name=worker_name,
        started_at=now,
        heartbeat_at=now,
        error="",
        traceback="",
    )
    if not updated:
        raise RunStateError(f"run {run.pk} attempt {run.attempt} is no longer queued")
    run.refresh_from_db()
    return run


def run_write_progress(*, run_id: int, attempt: int, **fields: Any) -> None:
    PipelineRun.objects.filter(pk=run_id, attempt=attempt).update(heartbeat_at=timezone.now(), **fields)


def run_heartbeat(*, run_id: int, attempt: int) -> None:
    PipelineRun.objects.filter(pk=run_id, attempt=attempt, status=PipelineRun.Status.RUNNING).update(
        heartbeat_at=timezone.now()
    )


@transaction.atomic
def run_append_metrics(*, run_id: int, rows: list[dict[str, Any]]) -> None:
    run = PipelineRun.objects.select_for_update().only("metrics").get(pk=run_id)
    run.metrics = (list(run.metrics) + rows)[-METRIC_ROWS_KEPT:]
    run.save(update_fields=["metrics"])


@transaction.atomic
def run_update_summary(*, run_id: int, values: dict[str, Any]) -> None:
    run = PipelineRun.objects.select_for_update().only("summary").get(pk=run_id)
    run.summary = {**run.summary, **values}
    run.save(update_fields=["summary"])


def run_cancel_requested(*, run_id: int) -> bool:
    return PipelineRun.objects.filter(pk=run_id, cancel_requested=True).exists()


def _finish(run_id: int, status: str, **fields: Any) -> None:
    PipelineRun.objects.filter(pk=run_id, status=PipelineRun.Status.RUNNING).update(
        status=status, finished_at=timezone.now(), eta_seconds=None, **fields
    )


def run_mark_succeeded(*, run_id: int) -> None:
    _finish(run_id, PipelineRun.Status.SUCCEEDED)


def run_mark_failed(*, run_id: int, error: str, traceback_text: str = "") -> None:
    _finish(run_id, PipelineRun.Status.FAILED, error=error[:5000], traceback=traceback_text[-20000:])


def run_mark_cancelled(*, run_id: int) -> None:
    _finish(run_id, PipelineRun.Status.CANCELLED)


@transaction.atomic
def run_request_cancel(*, run: PipelineRun) -> PipelineRun:
    """Ask a run to stop: a queued run stops at once; a running one stops at its next batch boundary."""
    run = PipelineRun.objects.select_for_update().get(pk=run.pk)
    if run.status not in PipelineRun.ACTIVE_STATUSES:
        raise RunStateError(f"run {run.pk} is {run.get_status_display().lower()}; only queued or running runs can be cancelled")
    run.cancel_requested = True
    if run.status == PipelineRun.Status.QUEUED:
        run.status = PipelineRun.Status.CANCELLED
        run.finished_at = timezone.now()
        transaction.on_commit(lambda: _cancel_rq_job(run.queue_name, run.rq_job_id))
    run.save(update_fields=["cancel_requested", "status", "finished_at"])
    return run


def _cancel_rq_job(queue_name: str, job_id: str) -> None:
    from rq.exceptions import InvalidJobOperation, NoSuchJobError
    from rq.job import Job

    with contextlib.suppress(NoSuchJobError, InvalidJobOperation):
        Job.fetch(job_id, connection=django_rq.get_connection(queue_name)).cancel()


@transaction.atomic
def run_resume(*, run: PipelineRun) -> PipelineRun:
    """Queue a new attempt of a failed, cancelled or lost run; the pipeline skips finished work."""
    run = PipelineRun.objects.select_for_update().get(pk=run.pk)
    if run.status not in (PipelineRun.Status.FAILED, PipelineRun.Status.CANCELLED, PipelineRun.Status.LOST):
        raise RunStateError(f"run {run.pk} is {run.get_status_display().lower()}; only failed, cancelled or lost runs can be resumed")
    run.attempt = F("attempt") + 1
    run.status = PipelineRun.Status.QUEUED
    run.cancel_requested = False
    run.finished_at = None
    run.error = ""
    run.traceback = ""
    run.queued_at = timezone.now()
    run.save(update_fields=["attempt", "status", "cancel_requested", "finished_at", "error", "traceback", "queued_at"])
    run.refresh_from_db()
    _enqueue(run)
    return run


QUEUED_JOB_GRACE_SECONDS = 30


def runs_mark_lost() -> int:
    """Mark runs that can no longer finish as lost; returns how many.

    A running run whose heartbeat stopped lost its worker (killed or crashed); a queued run whose
    job is gone from Redis (Redis restarted or was flushed) will never be picked up.
    """
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.RUN_HEARTBEAT_STALE_SECONDS)
    lost = PipelineRun.objects.filter(status=PipelineRun.Status.RUNNING, heartbeat_at__lt=cutoff).update(
        status=PipelineRun.Status.LOST,
        finished_at=now,
        error="The worker stopped sending heartbeats (killed or crashed). Resume to continue from the last finished batch.",
    )
    vanished = _queued_runs_without_job(older_than=now - timedelta(seconds=QUEUED_JOB_GRACE_SECONDS))
    if vanished:
        lost += PipelineRun.objects.filter(pk__in=vanished, status=PipelineRun.Status.QUEUED).update(
            status=PipelineRun.Status.LOST,
            finished_at=now,
            error="Its job is no longer in the queue (Redis was restarted or flushed). Resume to queue it again.",
        )
    return lost


def _queued_runs_without_job(*, older_than) -> list[int]:  # type: ignore[no-untyped-def]
    from redis.exceptions import RedisError
    from rq.job import Job

    queued = list(
        PipelineRun.objects.filter(status=PipelineRun.Status.QUEUED, queued_at__lt=older_than)
        .exclude(rq_job_id="")
        .values_list("pk", "rq_job_id", "queue_name")[:100]
    )
    try:
        return [pk for pk, job_id, queue in queued if not Job.exists(job_id, connection=django_rq.get_connection(queue))]
    except RedisError:
        return []  # Redis unreachable: say nothing rather than mark healthy runs lost.


def artifact_register(
    *, run: PipelineRun | None, name: str, kind: str, jsonl_path: Path, parquet_path: Path | None = None
) -> Artifact:
    """Record a finished dataset; counting rows streams the file, the preview keeps the first rows."""
    preview: list[dict[str, Any]] = []
    columns: list[str] = []
    row_count = 0
    with Path(jsonl_path).open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            if row_count < PREVIEW_ROWS:
                row = json.loads(line)
                preview.append(row)
                columns.extend(key for key in row if key not in columns)
            row_count += 1
    artifact, _ = Artifact.objects.update_or_create(
        run=run,
        name=name,
        defaults={
            "kind": kind,
            "jsonl_path": str(jsonl_path),
            "parquet_path": str(parquet_path or ""),
            "row_count": row_count,
            "columns": columns,
            "preview": preview,
        },
    )
    return artifact
