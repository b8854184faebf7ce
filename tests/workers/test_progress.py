"""The worker's progress reporter: throttled writes, ETA, cancel flag, superseded (fenced) attempts."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from pipelines.errors import RunCancelled
from webapp.runs.models import PipelineRun
from webapp.runs.services import AttemptFenced
from workers.progress import DbProgress

pytestmark = pytest.mark.django_db


@pytest.fixture
def run():
    return PipelineRun.objects.create(kind="generate", status=PipelineRun.Status.RUNNING)


def test_many_updates_in_a_second_cost_at_most_one_write(run):
    progress = DbProgress(run_id=run.pk, attempt=1)
    progress.stage("generate", total=1000)
    with CaptureQueriesContext(connection) as queries:
        for _ in range(500):
            progress.advance(1)
            progress.metrics({"loss": 1.0})
    writes = [q for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    assert len(writes) <= 2, writes
    progress.flush()
    run.refresh_from_db()
    assert (run.stage, run.progress_done, run.progress_total) == ("generate", 500, 1000)
    assert len(run.metrics) == 500 and run.metrics[-1]["loss"] == 1.0


def test_eta_follows_the_rate_of_the_current_stage(run):
    progress = DbProgress(run_id=run.pk, attempt=1)
    progress.stage("generate", total=30, done=0)
    progress._stage_started -= 10.0  # the stage began 10 s ago
    progress.advance(10)  # 10 items in 10 s, 20 left -> about 20 s
    progress.flush()
    run.refresh_from_db()
    assert run.eta_seconds == pytest.approx(20.0, abs=0.5)


def test_cancel_flag_raises_between_batches(run):
    progress = DbProgress(run_id=run.pk, attempt=1)
    progress.check_cancelled()
    PipelineRun.objects.filter(pk=run.pk).update(cancel_requested=True)
    with pytest.raises(RunCancelled):
        progress.check_cancelled()


def test_log_tail_keeps_the_latest_lines(run):
    progress = DbProgress(run_id=run.pk, attempt=1)
    for index in range(300):
        progress.log(f"line {index}")
    progress.flush()
    run.refresh_from_db()
    lines = run.log_tail.splitlines()
    assert len(lines) == 200 and lines[-1].endswith("line 299")


@pytest.mark.django_db(transaction=True)
def test_a_line_held_back_by_the_throttle_reaches_the_page_with_the_next_heartbeat(run, monkeypatch):
    """A log line written just before a long model call must not wait for the call to end."""
    import time

    import workers.progress as progress_module

    monkeypatch.setattr(progress_module, "HEARTBEAT_INTERVAL_SECONDS", 0.2)
    progress = DbProgress(run_id=run.pk, attempt=1)
    progress.stage("questions", total=10)  # writes now, so the next line falls inside the throttle
    progress.log("asking 12 contexts")
    run.refresh_from_db()
    assert "asking 12 contexts" not in run.log_tail
    progress.start_heartbeat()
    try:
        deadline = time.monotonic() + 5
        while "asking 12 contexts" not in run.log_tail and time.monotonic() < deadline:
            time.sleep(0.1)  # the "model call": nothing else reports meanwhile
            run.refresh_from_db()
    finally:
        progress._stop.set()
        progress._heartbeat.join(timeout=5)
    assert "asking 12 contexts" in run.log_tail


def test_a_superseded_attempt_is_fenced_its_next_call_raises_and_close_writes_nothing(run):
    """A resume moved the run to attempt 2: attempt 1's reporter refuses to go on and writes nothing more."""
    progress = DbProgress(run_id=run.pk, attempt=1)
    progress.stage("generate", total=10)
    progress.check_cancelled()
    PipelineRun.objects.filter(pk=run.pk).update(attempt=2, status=PipelineRun.Status.QUEUED, stage="")
    with pytest.raises(AttemptFenced, match="attempt 1 is fenced"):
        progress.check_cancelled()
    with pytest.raises(AttemptFenced):
        progress.advance(1)
    with pytest.raises(AttemptFenced):
        progress.check_fenced()
    progress.close()  # the job's clean-up: no error, no write
    run.refresh_from_db()
    assert (run.attempt, run.status, run.stage, run.progress_done) == (2, PipelineRun.Status.QUEUED, "", 0)


def test_a_write_that_finds_the_run_no_longer_running_fences_the_reporter(run):
    """Declared lost while it ran: the next progress write matches nothing, and the pipeline's next call raises."""
    progress = DbProgress(run_id=run.pk, attempt=1)
    PipelineRun.objects.filter(pk=run.pk).update(status=PipelineRun.Status.LOST)
    with pytest.raises(AttemptFenced):
        progress.flush()
    assert progress.fenced
    with pytest.raises(AttemptFenced):
        progress.log("still here")


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_thread_stops_when_the_attempt_is_fenced(run, monkeypatch):
    """The heartbeat runs in its own thread and connection, so the run's rows must be committed (on SQLite an
    uncommitted test transaction would hold the write lock the heartbeat waits on)."""
    import workers.progress as progress_module

    monkeypatch.setattr(progress_module, "HEARTBEAT_INTERVAL_SECONDS", 0.05)
    progress = DbProgress(run_id=run.pk, attempt=1)
    PipelineRun.objects.filter(pk=run.pk).update(attempt=2)
    progress.start_heartbeat()
    progress._heartbeat.join(timeout=5)
    assert not progress._heartbeat.is_alive() and progress.fenced
