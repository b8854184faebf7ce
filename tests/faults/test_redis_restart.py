"""Redis restarted (empty, as without persistence) under a running run and a queue of runs.

The database is the source of truth and Redis only transport (DESIGN.md section 3): the running run
finishes, the queued runs whose jobs vanished are declared lost and resume, nothing runs twice, and
the worker comes back by itself, registered so the dashboard and the lost-run check can see it:
mid-job with its current job and the job's started-registry entry (else a run whose database
heartbeat is late would be declared lost), and while idle within a few seconds.

The worker is stepped (support.py `step_worker_until`) to a few finished batches of many and held
(SIGSTOP) through the restart, so the restart always lands mid-run, on any machine.
"""

from __future__ import annotations

import re
import time

import pytest
import redis
from rq import Worker

from tests.faults.conftest import RestartableRedis
from tests.faults.support import (
    artifact_rows,
    assert_every_prompt_once,
    batch_files,
    prompt_set_of,
    start_generate_run,
    step_worker_until,
    tiny_model_entry,
)
from tests.fixtures.runs import wait_for_run
from webapp.runs import services
from webapp.runs.models import PipelineRun

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PROMPTS = 32


@pytest.fixture
def redis_url(restartable_redis: RestartableRedis) -> str:
    """This module's tests get a Redis of their own (the session's is shared and must not be restarted)."""
    return restartable_redis.url


def executions_of(job_id: str, worker_log: str) -> int:
    """How many times the worker started the job with this id (RQ logs `<queue>: <function>(...) (<job id>)`)."""
    return len(re.findall(rf"run_pipeline_job\([^)]*\) \({re.escape(job_id)}\)", worker_log))


def wait_until_registered(worker_pid: int, url: str, timeout: float) -> None:
    connection = redis.Redis.from_url(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(worker.pid == worker_pid for worker in Worker.all(connection=connection)):
            return
        time.sleep(0.3)
    raise AssertionError(f"worker pid {worker_pid} did not register again in Redis within {timeout:.0f} s")


def test_redis_restarted_under_a_run_and_a_queue_loses_and_repeats_nothing(
    restartable_redis: RestartableRedis, rq_worker, researcher, tiny_model_dir, monkeypatch
):
    # The site waits 30 s before calling a queued run's job vanished; the test need not.
    monkeypatch.setattr(services, "QUEUED_JOB_GRACE_SECONDS", 2)
    model = tiny_model_entry(tiny_model_dir)
    worker = rq_worker().wait_ready()
    worker.pause()  # before the jobs are queued: the run cannot get ahead of the stepping
    running = start_generate_run(researcher, model, prompt_set_of(PROMPTS), batch_size=1, max_tokens=8, name="running")
    queued = [
        start_generate_run(
            researcher, model, prompt_set_of(4, f"queued-{index}"), batch_size=2, max_tokens=4, name=f"queued {index}"
        )
        for index in range(2)
    ]
    batches = services.run_directory(running) / "batches"
    step_worker_until(worker, running, lambda: len(batch_files(batches)) >= 3, what="3 batches are finished")
    assert len(batch_files(batches)) < PROMPTS, "the restart must land while the run has work left"

    restartable_redis.restart()

    # Slowed to a tenth of its pace, the run is still going when the worker's liveness renewal
    # (a third of the lease apart, on its own clock) finds Redis empty and writes back the worker,
    # its current job and the job's started-registry entry: what the lost-run check reads.
    step_worker_until(
        worker,
        running,
        lambda: (
            services._why_rq_no_longer_runs(
                worker_name=running.worker_name, job_id=running.rq_job_id, queue_name=running.queue_name
            )
            is None
        ),
        what="RQ shows the running job again (worker, current job, started registry)",
        timeout=60,
        rest_seconds=0.2,
    )
    worker.resume()

    running = wait_for_run(running, timeout=180, what="the running run to finish after the restart")
    assert running.status == PipelineRun.Status.SUCCEEDED, f"{running.error}\n{worker.log_text()[-3000:]}"
    assert running.attempt == 1
    assert_every_prompt_once(artifact_rows(running, "generations"), PROMPTS)

    for run in queued:
        run = wait_for_run(run, lambda r: r.status != PipelineRun.Status.QUEUED, 60, "the vanished job to be noticed")
        assert run.status == PipelineRun.Status.LOST and "no longer in the queue" in run.error, (run.status, run.error)
    wait_until_registered(worker.pid, restartable_redis.url, timeout=30)

    # Restarted again while the worker idles in its blocking pop: it registers again within seconds.
    restartable_redis.restart()
    wait_until_registered(worker.pid, restartable_redis.url, timeout=15)

    for run in queued:
        services.run_resume(run=run)
    for run in queued:
        run = wait_for_run(run, timeout=120, what="the resumed queued run to finish")
        assert run.status == PipelineRun.Status.SUCCEEDED, f"{run.error}\n{worker.log_text()[-3000:]}"
        assert_every_prompt_once(artifact_rows(run, "generations"), 4)
        assert run.summary["batches_generated_this_attempt"] == 2

    log = worker.log_text()
    assert worker.running
    assert executions_of(f"run-{running.pk}-1", log) == 1
    for run in queued:
        assert executions_of(f"run-{run.pk}-1", log) == 0, "a job that vanished with Redis still ran"
        assert executions_of(f"run-{run.pk}-2", log) == 1


def test_redis_down_when_a_job_ends_does_not_stop_the_worker(
    restartable_redis: RestartableRedis, rq_worker, researcher, tiny_model_dir
):
    """RQ records a finished job in Redis after our code ran; Redis down then made RQ's work loop quit the worker."""
    model = tiny_model_entry(tiny_model_dir)
    worker = rq_worker().wait_ready()
    worker.pause()  # before the job is queued: the run cannot get ahead of the stepping
    run = start_generate_run(researcher, model, prompt_set_of(8), batch_size=1, max_tokens=4, name="ends")
    batches = services.run_directory(run) / "batches"
    step_worker_until(worker, run, lambda: len(batch_files(batches)) >= 2, what="2 batches are finished")

    restartable_redis.stop()
    worker.resume()  # the rest of the run needs only the database; RQ's bookkeeping after it needs Redis
    run = wait_for_run(run, timeout=120, what="the run to finish with Redis down")
    assert run.status == PipelineRun.Status.SUCCEEDED, f"{run.error}\n{worker.log_text()[-3000:]}"
    deadline = time.monotonic() + 60
    while "could not record job" not in worker.log_text() and worker.running and time.monotonic() < deadline:
        time.sleep(0.3)
    restartable_redis.start()

    assert worker.running, f"the worker quit when Redis was down at the end of a job:\n{worker.log_text()[-3000:]}"
    wait_until_registered(worker.pid, restartable_redis.url, timeout=30)
    after = start_generate_run(researcher, model, prompt_set_of(2, "after"), batch_size=2, max_tokens=4, name="after")
    after = wait_for_run(after, timeout=120, what="a run queued after Redis came back")
    assert after.status == PipelineRun.Status.SUCCEEDED, f"{after.error}\n{worker.log_text()[-3000:]}"
