"""RQ entry points. A job takes a run id, loads everything from the database, and is safe to re-run."""

from __future__ import annotations

import logging
import os
import socket
import traceback

from django.db import close_old_connections

from pipelines.common.store import fenced_writes
from pipelines.errors import InvalidConfigError, InvalidInputError, RunCancelled
from webapp.runs import services
from webapp.runs.models import PipelineRun
from workers.database import retry_through_outage
from workers.progress import DbProgress
from workers.runner import run_job

logger = logging.getLogger(__name__)


def run_pipeline_job(run_id: int, attempt: int) -> str:
    """Run one attempt of a pipeline run; a stale attempt (superseded by a resume) does nothing.

    The attempt is fenced (webapp/runs/services.py): every database write and every file the
    pipeline renames into the run directory first checks that this is still the run's current
    running attempt, and a fenced attempt returns "fenced" having written nothing more.
    """
    close_old_connections()  # the database restarted since the last job: reconnect, do not fail this one
    run = PipelineRun.objects.get(pk=run_id)
    if run.attempt != attempt or run.status != PipelineRun.Status.QUEUED:
        logger.info("run %s attempt %s is %s (current attempt %s); skipping", run_id, attempt, run.status, run.attempt)
        return "skipped"
    run = services.run_mark_started(run=run, worker_name=_worker_name())
    progress = DbProgress(run_id=run.pk, attempt=attempt)
    progress.start_heartbeat()
    with services.attempt_scope(run_id=run.pk, attempt=attempt), fenced_writes(progress.check_fenced):
        return _run_fenced(run, attempt, progress)


def _run_fenced(run: PipelineRun, attempt: int, progress: DbProgress) -> str:
    try:
        run_job(run, progress)
    except services.AttemptFenced as fenced:
        progress.close()
        logger.warning("%s", fenced)
        return "fenced"
    except RunCancelled as cancelled:
        # The pipeline's message says where it stopped (a trainer names its last checkpoint).
        try:
            stopped = str(cancelled)
            progress.log(stopped)
            progress.close()
            retry_through_outage(
                lambda: services.run_update_summary(run_id=run.pk, values={"stopped": stopped}, attempt=attempt)
            )
        except services.AttemptFenced as fenced:
            logger.warning("%s", fenced)
            return "fenced"
        retry_through_outage(lambda: services.run_mark_cancelled(run_id=run.pk, attempt=attempt))
        return "cancelled"
    except (InvalidConfigError, InvalidInputError) as error:
        progress.close()
        message, traceback_text = str(error), traceback.format_exc()
        retry_through_outage(
            lambda: services.run_mark_failed(
                run_id=run.pk, error=message, traceback_text=traceback_text, attempt=attempt
            )
        )
        return "failed"
    except BaseException as error:
        progress.close()
        message, traceback_text = f"{type(error).__name__}: {error}", traceback.format_exc()
        retry_through_outage(
            lambda: services.run_mark_failed(
                run_id=run.pk, error=message, traceback_text=traceback_text, attempt=attempt
            )
        )
        raise
    progress.close()
    if not retry_through_outage(lambda: services.run_mark_succeeded(run_id=run.pk, attempt=attempt)):
        logger.warning(
            "run %s attempt %s finished but was fenced meanwhile; its status was left alone", run.pk, attempt
        )
        return "fenced"
    return "succeeded"


def _worker_name() -> str:
    from rq import get_current_job

    job = get_current_job()
    name = getattr(job, "worker_name", None) if job else None
    return name or f"{socket.gethostname()}.{os.getpid()}"
