"""A queued run whose RQ job RQ already ended (failed, stopped, cancelled) is lost and resumable, not queued forever.

Checking only that the job exists missed these: RQ keeps an ended job in Redis (for its failure
TTL, a week here), and no worker will ever take it. Real Redis, real RQ jobs, ended with RQ's own calls.
"""

from __future__ import annotations

import django_rq
import pytest
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry

from tests.fixtures.generate_runs import prompt_set_of, small_generate_config
from webapp.runs import services
from webapp.runs.models import PipelineRun

pytestmark = pytest.mark.django_db(transaction=True)  # the job is enqueued when the run's transaction commits


def queued_run(user, name: str) -> PipelineRun:  # type: ignore[no-untyped-def]
    return services.run_create(user=user, kind="generate", config=small_generate_config(prompt_set_of(2, name)))


def end_job(job: Job, how: str) -> None:
    """End the job as RQ does: a failure (a worker died on it), a stop command, or a cancel."""
    queue = django_rq.get_queue("gpu")
    if how == "cancelled":
        job.cancel()
        return
    queue.remove(job)
    if how == "failed":
        job.set_status(JobStatus.FAILED)
        FailedJobRegistry(queue=queue).add(job, exc_string="Work-horse terminated unexpectedly")
    else:
        job.set_status(JobStatus.STOPPED)


@pytest.mark.parametrize("how", ["failed", "stopped", "cancelled"])
def test_a_queued_run_whose_job_rq_ended_is_marked_lost_and_can_be_resumed(live_settings, researcher, monkeypatch, how):
    monkeypatch.setattr(services, "QUEUED_JOB_GRACE_SECONDS", 0)
    ended, waiting = queued_run(researcher, "ended"), queued_run(researcher, "waiting")
    connection = django_rq.get_connection(ended.queue_name)
    job = Job.fetch(ended.rq_job_id, connection=connection)
    end_job(job, how)
    assert Job.exists(ended.rq_job_id, connection=connection), "the ended job stays in Redis"

    assert services.runs_mark_lost() == 1
    ended.refresh_from_db()
    waiting.refresh_from_db()
    assert ended.status == PipelineRun.Status.LOST, (how, ended.status)
    assert ended.rq_job_id in ended.error and "Resume" in ended.error, ended.error
    assert waiting.status == PipelineRun.Status.QUEUED, "a run whose job still waits in the queue was touched"

    ended = services.run_resume(run=ended)
    assert (ended.status, ended.attempt) == (PipelineRun.Status.QUEUED, 2)
    assert Job.fetch(ended.rq_job_id, connection=connection).get_status() == JobStatus.QUEUED
