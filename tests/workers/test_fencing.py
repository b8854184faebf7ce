"""Lost-run detection asks RQ, and a superseded attempt is fenced: a REAL rqworker process, Redis and database.

- A worker whose database writes are blocked (a lock held by another connection, as a long import
  holds SQLite's) stops beating in the database, but it is registered in Redis with the run's job as
  its current job and the job is started: the run is not declared lost, and finishes once unblocked.
- A worker that is SIGKILLed leaves Redis a few seconds later: the run is declared lost.
- A run resumed while its old attempt still runs: the old attempt writes no batch file, artifact,
  summary or status after the resume; its RQ job ends "fenced"; the new attempt finishes the run.

The generate job runs on the tiny random model (mechanics, not quality). Committed rows: the worker
is another process, hence `transactional_db`.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from tests.fixtures.runs import wait_for_run
from webapp.generate import services as generate_services
from webapp.library.models import SeedPrompt, SeedPromptSet
from webapp.registry.models import ModelEntry
from webapp.runs import services
from webapp.runs.models import PipelineRun

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _generate_run(user, model: ModelEntry, prompt_count: int, batch_size: int = 1) -> PipelineRun:
    prompt_set = SeedPromptSet.objects.create(name=f"prompts-{prompt_count}", prompt_count=prompt_count)
    SeedPrompt.objects.bulk_create(
        SeedPrompt(prompt_set=prompt_set, position=index, text=f"Say something about the number {index}.")
        for index in range(prompt_count)
    )
    config = generate_services.generate_config_build(
        model=model,
        prompt_set=prompt_set,
        n=1,
        max_tokens=12,
        temperature=0.7,
        top_p=0.95,
        seed=1,
        batch_size=batch_size,
    )
    return services.run_create(user=user, kind="generate", config=config, name="fencing")


@pytest.fixture
def tiny(tiny_model_dir) -> ModelEntry:
    return ModelEntry.objects.create(name="tiny", source=ModelEntry.Source.LOCAL, path=str(tiny_model_dir))


@contextlib.contextmanager
def _run_row_locked(run: PipelineRun, then: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold a write lock on the run's row from another database connection until the block ends.

    PostgreSQL: a row lock (SELECT ... FOR UPDATE), so the worker's UPDATEs of the run wait. SQLite:
    the settings' IMMEDIATE transactions take the database's write lock, so every writer waits. Reads
    go on in both (MVCC; WAL), as they did while the 200k-line import held SQLite's lock.
    `then` runs in the locking transaction when the block ends, before the lock is released.
    """
    locked, release = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    def hold() -> None:
        from django.db import connection as thread_connection

        try:
            with transaction.atomic():
                PipelineRun.objects.select_for_update().get(pk=run.pk)
                locked.set()
                release.wait(timeout=120)
                if then is not None:
                    then()
        except BaseException as error:  # noqa: BLE001 - reported by the test thread
            failure.append(error)
            locked.set()
        finally:
            thread_connection.close()

    holder = threading.Thread(target=hold, name="run-row-lock")
    holder.start()
    assert locked.wait(timeout=30) and not failure, failure
    try:
        yield
    finally:
        release.set()
        holder.join(timeout=30)
    assert not failure, failure


@contextlib.contextmanager
def _lock_wait_bounded() -> Iterator[None]:
    """On PostgreSQL, make this connection give up on a row lock after 3 s instead of waiting forever."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '3s'")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 0")


def test_a_run_whose_database_writes_are_blocked_is_not_lost_while_rq_says_its_worker_runs_it(
    live_settings, rq_worker, researcher, tiny
):
    from rq.registry import StartedJobRegistry
    from rq.worker import Worker

    run = _generate_run(researcher, tiny, prompt_count=300)
    worker = rq_worker("gpu")
    run = wait_for_run(run, lambda r: r.stage == "generate" and r.progress_done >= 2, 300, "generation to start")

    # Redis losing the worker's registration (a restart without persistence) is repaired by its next renewal.
    worker_key = Worker.redis_worker_namespace_prefix + run.worker_name
    _redis(live_settings).delete(worker_key)
    time.sleep(settings.RUN_HEARTBEAT_STALE_SECONDS / 3 + 2)
    registered = Worker.find_by_key(worker_key, connection=_redis(live_settings))
    assert registered is not None and registered.get_current_job_id() == run.rq_job_id

    with _run_row_locked(run):
        stale_after = settings.RUN_HEARTBEAT_STALE_SECONDS
        time.sleep(stale_after + 3)
        run.refresh_from_db()
        assert run.heartbeat_at < timezone.now() - timedelta(seconds=stale_after), "the worker was not blocked"
        connection_to_redis = Worker.find_by_key(
            Worker.redis_worker_namespace_prefix + run.worker_name, connection=_redis(live_settings)
        )
        assert connection_to_redis is not None and connection_to_redis.get_current_job_id() == run.rq_job_id
        assert run.rq_job_id in StartedJobRegistry("gpu", connection=_redis(live_settings)).get_job_ids()

        with _lock_wait_bounded():
            assert services.runs_mark_lost() == 0
        run.refresh_from_db()
        assert run.status == PipelineRun.Status.RUNNING and not run.error
        progress_while_blocked = run.progress_done

    # Unblocked, the same attempt goes on: it answers a cancel (a few batches at most) and was never lost.
    services.run_request_cancel(run=run)
    try:
        run = wait_for_run(run, timeout=180, what="the unblocked run to take the cancel")
    except AssertionError as error:
        raise AssertionError(f"{error}\nworker log:\n{worker.log_text()[-5000:]}") from None
    assert run.status == PipelineRun.Status.CANCELLED, run.error + worker.log_text()[-3000:]
    assert run.attempt == 1 and run.progress_done > progress_while_blocked


def test_a_killed_worker_leaves_redis_and_its_run_is_declared_lost(live_settings, rq_worker, researcher, tiny):
    run = _generate_run(researcher, tiny, prompt_count=200)
    worker = rq_worker("gpu")
    run = wait_for_run(run, lambda r: r.stage == "generate" and r.progress_done >= 2, 300, "generation to start")
    worker.kill()
    killed_at = time.monotonic()

    run = wait_for_run(run, lambda r: r.status == PipelineRun.Status.LOST, 60, "the run to be declared lost")

    # The registration and the started entry share one lease; whichever lapses first is named.
    assert "stopped sending heartbeats" in run.error
    assert "no longer registered in Redis" in run.error or "no longer in RQ's started registry" in run.error
    # The registration lease is the stale limit: detection takes about twice that, not RQ's job timeout.
    assert time.monotonic() - killed_at < 4 * settings.RUN_HEARTBEAT_STALE_SECONDS + 10


def test_a_resume_fences_the_old_attempt_that_still_runs(live_settings, rq_worker, researcher, tiny):
    from rq.job import Job, JobStatus

    run = _generate_run(researcher, tiny, prompt_count=200, batch_size=8)
    old_worker = rq_worker("gpu")
    run = wait_for_run(run, lambda r: r.stage == "generate", 300, "generation to start")

    # Declared lost while its worker still runs it (what a heartbeat-only check did) and resumed. The
    # row is locked meanwhile, so the old attempt is caught mid-run: it waits on its next progress write.
    # The new attempt goes to a queue the old worker does not take, so nothing else happens meanwhile.
    with _run_row_locked(run, then=lambda: _declare_lost_and_resume(run)):
        time.sleep(2)
    time.sleep(0.5)  # a batch file whose fence check passed just before the resume is renamed by now
    batch_dir = services.run_directory(run) / "batches"
    batches_at_resume = _files(batch_dir)
    run.refresh_from_db()
    assert (run.status, run.attempt, run.queue_name) == (PipelineRun.Status.QUEUED, 2, "default")
    stage_at_resume, done_at_resume, log_at_resume = run.stage, run.progress_done, run.log_tail

    old_job = Job.fetch(f"run-{run.pk}-1", connection=_redis(live_settings))
    deadline = time.monotonic() + 120
    while old_job.get_status(refresh=True) not in (JobStatus.FINISHED, JobStatus.FAILED):
        assert time.monotonic() < deadline, f"the old attempt did not stop:\n{old_worker.log_text()[-3000:]}"
        time.sleep(0.3)

    assert old_job.return_value() == "fenced", old_worker.log_text()[-3000:]
    assert "attempt 1 is fenced" in old_worker.log_text()
    assert _files(batch_dir) == batches_at_resume, "the fenced attempt wrote batch files after the resume"
    assert len(batches_at_resume) < 25, "the old attempt had finished before the resume: nothing was fenced"
    run.refresh_from_db()
    assert (run.status, run.attempt) == (PipelineRun.Status.QUEUED, 2)
    assert run.artifacts.count() == 0 and "rows" not in run.summary
    assert (run.stage, run.progress_done, run.log_tail) == (stage_at_resume, done_at_resume, log_at_resume)
    assert not services.run_directory(run).joinpath("generations.jsonl").exists()

    new_worker = rq_worker("default")
    run = wait_for_run(run, timeout=400, what="the resumed attempt to finish")
    assert run.status == PipelineRun.Status.SUCCEEDED, run.error + run.traceback + new_worker.log_text()[-3000:]
    artifact = run.artifacts.get()
    prompt_ids = [json.loads(line)["prompt_id"] for line in Path(artifact.jsonl_path).read_text().splitlines()]
    assert len(prompt_ids) == len(set(prompt_ids)) == artifact.row_count == 200
    assert run.summary["batches_generated_this_attempt"] == 25 - len(batches_at_resume)


def _declare_lost_and_resume(run: PipelineRun) -> None:
    PipelineRun.objects.filter(pk=run.pk).update(status=PipelineRun.Status.LOST, queue_name="default")
    run.refresh_from_db()
    services.run_resume(run=run)


def _files(directory: Path) -> set[str]:
    """Finished files only: atomic writes stage as hidden temp files that are renamed or removed."""
    if not directory.exists():  # not one batch finished yet
        return set()
    return {path.name for path in directory.iterdir() if not path.name.startswith(".")}


def _redis(live_settings):  # type: ignore[no-untyped-def]
    import redis

    return redis.Redis.from_url(live_settings.REDIS_URL)
