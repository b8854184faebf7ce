"""Every write to runs and artifacts: create, enqueue, progress, finish, cancel, resume, lost detection.

Fencing: an attempt may write only while it is the run's current attempt and the run is running.
Workers pass `attempt` (or run inside `attempt_scope`, which supplies it), and every write a worker
makes (progress, heartbeat, metrics, summary, artifacts, status, a trained model's registration via
`run_fence`) checks it; result writes lock the run's row for the check, so a resume or a lost-mark
waits for them and they never land after it. A fenced attempt gets AttemptFenced and stops: a resume
can never run beside a live old attempt. Files are fenced too: the job wraps the pipeline in
`pipelines.common.store.fenced_writes`, so a fenced attempt's next file is not renamed into place.

Lost detection (`runs_mark_lost`) asks RQ before declaring a running run lost: a stale database
heartbeat alone (database writes blocked by a long import, say) is not enough while the worker that
holds the run is registered in Redis with it as its current job and the job is in the started registry.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import timedelta
from pathlib import Path
from typing import Any

import django_rq
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from webapp.core.submissions import DuplicateSubmission, current_submission_key
from webapp.library.artifacts import artifact_save, dataset_file_summary
from webapp.library.models import Artifact
from webapp.webhooks.services import webhooks_run_finished

from .models import PipelineRun
from .registry import run_kind

JOB_FUNCTION = "workers.jobs.run_pipeline_job"
METRIC_ROWS_KEPT = 5000


logger = logging.getLogger(__name__)


class RunStateError(Exception):
    """The requested transition is not allowed from the run's current status."""


class AttemptFenced(Exception):
    """This attempt is no longer the run's current, running attempt: it must stop and write nothing more.

    Not a RunCancelled on purpose: a cancel saves a checkpoint and records where it stopped, and a
    fenced attempt must write neither (the current attempt owns the run directory and the row).
    """


# The (run id, attempt) of the job this worker thread is running; set by workers.jobs.
_attempt_in_scope: ContextVar[tuple[int, int] | None] = ContextVar("attempt_in_scope", default=None)


@contextlib.contextmanager
def attempt_scope(*, run_id: int, attempt: int) -> Iterator[None]:
    """Within it, worker-side writes that name only the run (a method's summary) are fenced on `attempt`."""
    token = _attempt_in_scope.set((run_id, attempt))
    try:
        yield
    finally:
        _attempt_in_scope.reset(token)


def _attempt_for(run_id: int, attempt: int | None) -> int | None:
    if attempt is not None:
        return attempt
    scope = _attempt_in_scope.get()
    return scope[1] if scope is not None and scope[0] == run_id else None


def run_fence(*, run_id: int, attempt: int | None = None) -> None:
    """Raise AttemptFenced unless `attempt` (or the one in scope) is the run's current running attempt.

    Call it inside `transaction.atomic()` before writing a result: it locks the run's row until the
    commit, so a resume (which locks the row too) cannot slip in between the check and the write.
    Outside a worker's attempt scope and without `attempt` it checks nothing (a shell, a test).
    """
    attempt = _attempt_for(run_id, attempt)
    if attempt is None:
        return
    current = PipelineRun.objects.select_for_update().filter(pk=run_id).values_list("attempt", "status").first()
    if current != (attempt, PipelineRun.Status.RUNNING):
        raise AttemptFenced(_fenced_message(run_id, attempt, current))


def _fenced_message(run_id: int, attempt: int, current: tuple[int, str] | None) -> str:
    if current is None:
        return f"run {run_id} no longer exists; attempt {attempt} stops"
    return (
        f"run {run_id} attempt {attempt} is fenced: the run is at attempt {current[0]}, {current[1]}; "
        "this attempt stops and writes nothing more"
    )


def run_attempt_state(*, run_id: int, attempt: int) -> tuple[bool, bool]:
    """(is this attempt still the current running one, is a cancel requested): one query per batch."""
    current = PipelineRun.objects.filter(pk=run_id).values_list("attempt", "status", "cancel_requested").first()
    if current is None:
        return False, False
    return (current[0], current[1]) == (attempt, PipelineRun.Status.RUNNING), current[2]


def run_directory(run: PipelineRun) -> Path:
    return Path(settings.ARTIFACT_ROOT) / "runs" / run.run_dir_name


@transaction.atomic
def run_create(
    *,
    user: Any,
    kind: str,
    config: dict[str, Any],
    name: str = "",
    submission_key: str | None = None,
    cloned_from: PipelineRun | None = None,
) -> PipelineRun:
    """Save a run whose config its kind's app validated, and enqueue it after commit on its kind's queue.

    `cloned_from`: the run whose settings the form started from ("Clone and edit"); it becomes the
    run's `parent` and its summary's `cloned_from`, so the lineage shows on the run page.

    `submission_key` (by default the key of the form POST being handled, see webapp/core/submissions.py)
    makes a repeated submission of the same form queue nothing: it raises DuplicateSubmission naming
    the run the first one queued, also when two identical POSTs race (the key is unique in the table).
    Raised inside the caller's transaction, it also rolls back what the caller saved before (an
    evaluation's own row).
    """
    key = current_submission_key() if submission_key is None else submission_key
    if key:
        _refuse_repeated_submission(key, user)
    run = PipelineRun(
        kind=kind,
        config=config,
        name=name,
        created_by=user,
        queue_name=run_kind(kind).queue_for(config),
        queued_at=timezone.now(),
        submission_key=key,
        parent=cloned_from,
        summary={"cloned_from": cloned_from.pk} if cloned_from is not None else {},
    )
    run.full_clean(validate_constraints=False)
    try:
        with transaction.atomic():
            run.save()
    except IntegrityError:
        if key:
            _refuse_repeated_submission(key, user)
        raise
    _enqueue(run)
    return run


def _refuse_repeated_submission(key: str, user: Any) -> None:
    earlier = PipelineRun.objects.filter(submission_key=key).first()
    if earlier is None:
        return
    if earlier.created_by_id != getattr(user, "pk", None):
        raise PermissionDenied("That form submission belongs to someone else.")
    raise DuplicateSubmission(
        earlier, f"This form was already submitted: it queued run #{earlier.pk}, so no second run was queued."
    )


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


def run_write_progress(*, run_id: int, attempt: int, **fields: Any) -> bool:
    """Write progress; False when the attempt is fenced (superseded, or the run no longer running)."""
    return bool(
        PipelineRun.objects.filter(pk=run_id, attempt=attempt, status=PipelineRun.Status.RUNNING).update(
            heartbeat_at=timezone.now(), **fields
        )
    )


def run_heartbeat(*, run_id: int, attempt: int) -> bool:
    """Beat; False when the attempt is fenced."""
    return bool(
        PipelineRun.objects.filter(pk=run_id, attempt=attempt, status=PipelineRun.Status.RUNNING).update(
            heartbeat_at=timezone.now()
        )
    )


@transaction.atomic
def run_append_metrics(*, run_id: int, rows: list[dict[str, Any]], attempt: int | None = None) -> None:
    run_fence(run_id=run_id, attempt=attempt)
    run = PipelineRun.objects.select_for_update().only("metrics").get(pk=run_id)
    run.metrics = (list(run.metrics) + rows)[-METRIC_ROWS_KEPT:]
    run.save(update_fields=["metrics"])


@transaction.atomic
def run_update_summary(*, run_id: int, values: dict[str, Any], attempt: int | None = None) -> None:
    """Merge `values` into the summary; a fenced attempt (given, or the worker's in scope) is refused."""
    run_fence(run_id=run_id, attempt=attempt)
    run = PipelineRun.objects.select_for_update().only("summary").get(pk=run_id)
    run.summary = {**run.summary, **values}
    run.save(update_fields=["summary"])


def run_cancel_requested(*, run_id: int) -> bool:
    return PipelineRun.objects.filter(pk=run_id, cancel_requested=True).exists()


def _finish(run_id: int, status: str, attempt: int | None, **fields: Any) -> bool:
    """Move a running run to `status`; only its current attempt may (filtered on it when known)."""
    running = PipelineRun.objects.filter(pk=run_id, status=PipelineRun.Status.RUNNING)
    attempt = _attempt_for(run_id, attempt)
    if attempt is not None:
        running = running.filter(attempt=attempt)
    finished = bool(
        running.update(status=status, finished_at=timezone.now(), eta_seconds=None, call_progress={}, **fields)
    )
    if finished:
        # After commit and robust: a failing hook or an unreachable Redis never fails or blocks the run.
        transaction.on_commit(lambda: webhooks_run_finished(run_id=run_id), robust=True)
    return finished


def run_mark_succeeded(*, run_id: int, attempt: int | None = None) -> bool:
    return _finish(run_id, PipelineRun.Status.SUCCEEDED, attempt)


def run_mark_failed(*, run_id: int, error: str, traceback_text: str = "", attempt: int | None = None) -> bool:
    return _finish(run_id, PipelineRun.Status.FAILED, attempt, error=error[:5000], traceback=traceback_text[-20000:])


def run_mark_cancelled(*, run_id: int, attempt: int | None = None) -> bool:
    return _finish(run_id, PipelineRun.Status.CANCELLED, attempt)


@transaction.atomic
def run_request_cancel(*, run: PipelineRun) -> PipelineRun:
    """Ask a run to stop: a queued run stops at once; a running one stops at its next batch boundary.

    A lost run (its worker died) is cancelled at once too: nothing runs it, and cancelling says
    that nobody means to resume it (it still can be, as any cancelled run).
    """
    run = PipelineRun.objects.select_for_update().get(pk=run.pk)
    if run.status not in (*PipelineRun.ACTIVE_STATUSES, PipelineRun.Status.LOST):
        raise RunStateError(
            f"run {run.pk} is {run.get_status_display().lower()}; only queued, running or lost runs can be cancelled"
        )
    run.cancel_requested = True
    if run.status == PipelineRun.Status.LOST:
        run.status = PipelineRun.Status.CANCELLED
    elif run.status == PipelineRun.Status.QUEUED:
        run.status = PipelineRun.Status.CANCELLED
        run.finished_at = timezone.now()
        transaction.on_commit(lambda: _cancel_rq_job(run.queue_name, run.rq_job_id))
    run.save(update_fields=["cancel_requested", "status", "finished_at"])
    if run.status == PipelineRun.Status.CANCELLED:
        transaction.on_commit(lambda: webhooks_run_finished(run_id=run.pk), robust=True)
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
        raise RunStateError(
            f"run {run.pk} is {run.get_status_display().lower()}; only failed, cancelled or lost runs can be resumed"
        )
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
LOST_RUN_CHECKS_PER_SWEEP = 100


def runs_mark_lost() -> int:
    """Mark runs that can no longer finish as lost; returns how many.

    A running run is lost when its heartbeat stopped AND RQ no longer has it running: the worker that
    holds it is gone from Redis (its registration expires a few heartbeats after the process dies, see
    workers/worker.py), is working on another job, or the job left the started registry. A stale
    heartbeat with a live holder (its database writes are blocked) is left running. When Redis cannot
    be asked, nothing is marked: a healthy run must never be declared lost on a guess.
    A queued run whose job is gone from Redis (Redis restarted or was flushed) will never be picked up.
    """
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.RUN_HEARTBEAT_STALE_SECONDS)
    stale = list(
        PipelineRun.objects.filter(status=PipelineRun.Status.RUNNING, heartbeat_at__lt=cutoff).values_list(
            "pk", "attempt", "worker_name", "rq_job_id", "queue_name"
        )[:LOST_RUN_CHECKS_PER_SWEEP]
    )
    lost = 0
    for run_id, attempt, worker_name, job_id, queue_name in stale:
        reason = _why_rq_no_longer_runs(worker_name=worker_name, job_id=job_id, queue_name=queue_name)
        if reason is None:
            continue
        # Filtered on what was read: a run that beat, finished or was resumed meanwhile is left alone.
        lost += PipelineRun.objects.filter(
            pk=run_id, attempt=attempt, status=PipelineRun.Status.RUNNING, heartbeat_at__lt=cutoff
        ).update(
            status=PipelineRun.Status.LOST,
            finished_at=now,
            error=f"The worker stopped sending heartbeats and {reason} (killed or crashed). "
            "Resume to continue from the last finished batch.",
        )
    for run_id, reason in _queued_runs_without_job(older_than=now - timedelta(seconds=QUEUED_JOB_GRACE_SECONDS)):
        lost += PipelineRun.objects.filter(pk=run_id, status=PipelineRun.Status.QUEUED).update(
            status=PipelineRun.Status.LOST, finished_at=now, error=f"{reason} Resume to queue it again."
        )
    return lost


def _why_rq_no_longer_runs(*, worker_name: str, job_id: str, queue_name: str) -> str | None:
    """Why RQ says the run's job is not running any more, or None while it is (or Redis cannot say)."""
    from redis.exceptions import RedisError
    from rq.registry import StartedJobRegistry
    from rq.utils import current_timestamp
    from rq.worker import Worker

    try:
        connection = django_rq.get_connection(queue_name)
        worker = (
            Worker.find_by_key(Worker.redis_worker_namespace_prefix + worker_name, connection=connection)
            if worker_name
            else None
        )
        if worker is None:
            return f"its worker {worker_name or '(unnamed)'} is no longer registered in Redis"
        current_job = worker.get_current_job_id()
        if current_job != job_id:
            return f"its worker {worker_name} is on {current_job or 'no job'}, not {job_id}"
        registry = StartedJobRegistry(queue_name, connection=connection)
        # Entries whose heartbeat expired are dead even before RQ's own cleanup removes them.
        live_entries = connection.zrangebyscore(registry.key, current_timestamp(), "+inf")
        if not any(registry.parse_job_id(entry) == job_id for entry in live_entries):
            return f"its job {job_id} is no longer in RQ's started registry"
    except RedisError as error:
        logger.warning("lost-run check of job %s skipped: Redis did not answer (%s)", job_id, error)
        return None
    return None


def _queued_runs_without_job(*, older_than) -> list[tuple[int, str]]:  # type: ignore[no-untyped-def]
    """Queued runs (queued before `older_than`) that no worker will ever pick up, each with the reason.

    Their job is gone from Redis (restarted or flushed), or RQ already ended it without running our
    code to the end: failed (a worker died on it and RQ's cleanup failed it, or it raised before the
    run started), stopped or cancelled. Such a job stays in Redis, so checking existence alone left
    its run queued forever.
    """
    from redis.exceptions import RedisError
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus

    ended = {JobStatus.FAILED: "failed", JobStatus.STOPPED: "was stopped", JobStatus.CANCELED: "was cancelled"}
    queued = list(
        PipelineRun.objects.filter(status=PipelineRun.Status.QUEUED, queued_at__lt=older_than)
        .exclude(rq_job_id="")
        .values_list("pk", "rq_job_id", "queue_name")[:100]
    )
    gone: list[tuple[int, str]] = []
    try:
        for pk, job_id, queue in queued:
            try:
                status = Job.fetch(job_id, connection=django_rq.get_connection(queue)).get_status(refresh=False)
            except NoSuchJobError:
                gone.append((pk, "Its job is no longer in the queue (Redis was restarted or flushed)."))
                continue
            if status in ended:
                gone.append((pk, f"Its job {job_id} {ended[status]} in RQ before the run started."))
    except RedisError:
        return []  # Redis unreachable: say nothing rather than mark healthy runs lost.
    return gone


def artifact_register(
    *, run: PipelineRun | None, name: str, kind: str, jsonl_path: Path, parquet_path: Path | None = None
) -> Artifact:
    """Record a finished dataset; counting rows streams the file, the preview keeps the first rows.

    In a worker's attempt scope, only the run's current running attempt may register it; the site
    adds artifacts to finished runs too (human-judging pairs), outside any scope.
    """
    summary = dataset_file_summary(Path(jsonl_path))
    with transaction.atomic():
        if run is not None:
            run_fence(run_id=run.pk)
        return artifact_save(
            run=run, name=name, kind=kind, jsonl_path=jsonl_path, parquet_path=parquet_path, summary=summary
        )
