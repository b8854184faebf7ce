"""The workers' lost-run sweep (workers/lost_run_sweep.py): a REAL rqworker marks lost runs, once per interval.

No page and no test sweeps here (`wait_for_run(..., mark_lost=False)`): the run turns LOST only if a
worker process did it. Committed rows: the worker is another process, hence `transactional_db`.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from tests.fixtures.runs import wait_for_run
from tests.fixtures.waiting import wait_until
from webapp.generate import services as generate_services
from webapp.library.models import SeedPrompt, SeedPromptSet
from webapp.registry.models import ModelEntry
from webapp.runs import services
from webapp.runs.models import PipelineRun
from workers.lost_run_sweep import SWEEP_LOCK_KEY, sweep_if_due

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

INTERVAL_SECONDS = 2


def _lost(run: PipelineRun) -> bool:
    return run.status == PipelineRun.Status.LOST


def _running_run_whose_job_vanished(user) -> PipelineRun:  # type: ignore[no-untyped-def]
    """A run left running by a worker and a job that Redis no longer knows, heartbeat long stopped."""
    return PipelineRun.objects.create(
        kind="generate",
        created_by=user,
        status=PipelineRun.Status.RUNNING,
        queue_name="gpu",
        rq_job_id="run-vanished-1",
        worker_name="vanished-worker",
        started_at=timezone.now() - timedelta(minutes=10),
        heartbeat_at=timezone.now() - timedelta(minutes=5),
    )


@pytest.fixture
def sweep_lock_free(live_settings) -> redis.Redis:
    """The test Redis with no sweep lock left by an earlier test's worker (it lasts most of 30 s)."""
    connection = redis.Redis.from_url(live_settings.REDIS_URL)
    connection.delete(SWEEP_LOCK_KEY)
    return connection


def test_of_many_workers_one_sweeps_per_interval(sweep_lock_free, researcher):
    run = _running_run_whose_job_vanished(researcher)
    interval = 0.5

    assert sweep_if_due(sweep_lock_free, "worker-a", interval) == 1
    assert sweep_if_due(sweep_lock_free, "worker-b", interval) is None  # a's sweep counts for everyone
    assert sweep_if_due(sweep_lock_free, "worker-a", interval) is None
    run.refresh_from_db()
    assert run.status == PipelineRun.Status.LOST

    wait_until(lambda: not sweep_lock_free.exists(SWEEP_LOCK_KEY), 5 * interval, "the sweep lock to lapse")
    assert sweep_if_due(sweep_lock_free, "worker-b", interval) == 0  # the next interval sweeps again


def test_an_idle_worker_marks_a_run_whose_job_vanished_lost_within_its_interval(sweep_lock_free, rq_worker, researcher):
    run = _running_run_whose_job_vanished(researcher)
    worker = rq_worker("default", extra_env={"REFINERY_LOST_RUN_CHECK_SECONDS": str(INTERVAL_SECONDS)})
    worker.wait_ready()
    ready_at = time.monotonic()

    run = wait_for_run(run, _lost, 2 * INTERVAL_SECONDS + 10, "the worker to sweep", poll=0.1, mark_lost=False)

    assert time.monotonic() - ready_at < 2 * INTERVAL_SECONDS + 5
    assert "its worker vanished-worker is no longer registered in Redis" in run.error
    assert "marked 1 run(s) lost" in worker.log_text()


def test_a_killed_workers_run_is_declared_lost_by_another_worker_without_any_page_open(
    sweep_lock_free, rq_worker, researcher, tiny_model_dir
):
    tiny = ModelEntry.objects.create(name="tiny", source=ModelEntry.Source.LOCAL, path=str(tiny_model_dir))
    prompt_set = SeedPromptSet.objects.create(name="many", prompt_count=200)
    SeedPrompt.objects.bulk_create(
        SeedPrompt(prompt_set=prompt_set, position=index, text=f"Say something about the number {index}.")
        for index in range(200)
    )
    config = generate_services.generate_config_build(
        model=tiny, prompt_set=prompt_set, n=1, max_tokens=12, temperature=0.7, top_p=0.95, seed=1, batch_size=1
    )
    run = services.run_create(user=researcher, kind="generate", config=config, name="killed")
    holder = rq_worker("gpu")
    sweeper = rq_worker("default", extra_env={"REFINERY_LOST_RUN_CHECK_SECONDS": str(INTERVAL_SECONDS)})
    run = wait_for_run(
        run, lambda r: r.stage == "generate" and r.progress_done >= 2, 300, "generation to start", mark_lost=False
    )
    assert run.status == PipelineRun.Status.RUNNING, "the sweeping worker must leave a live run alone"
    holder.kill()
    killed_at = time.monotonic()

    run = wait_for_run(run, _lost, 60, "the other worker to declare the run lost", mark_lost=False)

    assert "stopped sending heartbeats" in run.error
    # Lease lapse (the stale limit) plus the heartbeat's staleness, plus at most two sweep intervals.
    assert time.monotonic() - killed_at < 2 * settings.RUN_HEARTBEAT_STALE_SECONDS + 2 * INTERVAL_SECONDS + 10
    assert "marked 1 run(s) lost" in sweeper.log_text()
