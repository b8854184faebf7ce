"""The worker's database connection dies at its end-of-job writes: they reconnect and the run succeeds.

The progress writes a worker makes during a run were retried through a database outage, but the
writes at the end of a job (the artifact, the summary, the final status) were not: a connection lost
there failed a run whose every batch was done. To hit exactly that write, another connection holds
an uncommitted artifact row with the same (run, name), so the worker's INSERT waits on the unique
index; the test then terminates the waiting backend (what a server restart or failover does to
it) and rolls its row back. PostgreSQL only: SQLite has no backend to terminate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import connection, transaction

from tests.faults.support import (
    artifact_rows,
    assert_every_prompt_once,
    prompt_set_of,
    start_generate_run,
    tiny_model_entry,
)
from tests.fixtures.runs import wait_for_run
from webapp.library.models import Artifact
from webapp.runs.models import PipelineRun

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@contextmanager
def artifact_name_taken(run: PipelineRun, name: str) -> Iterator[None]:
    """Hold an uncommitted artifact row (`run`, `name`) from another connection; roll it back at the end."""
    inserted, release = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    def hold() -> None:
        from django.db import connection as thread_connection

        try:
            with transaction.atomic():
                Artifact.objects.create(run=run, name=name, kind=Artifact.Kind.GENERATIONS, jsonl_path="/nonexistent")
                inserted.set()
                release.wait(timeout=120)
                transaction.set_rollback(True)
        except BaseException as error:  # noqa: BLE001 - reported by the test thread
            failure.append(error)
            inserted.set()
        finally:
            thread_connection.close()

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    inserted.wait(timeout=30)
    if failure:
        raise failure[0]
    try:
        yield
    finally:
        release.set()
        holder.join(timeout=30)


def backend_waiting_to_insert(table: str, run: PipelineRun, timeout: float) -> int:
    """The pid of the backend whose INSERT into `table` waits on a lock (the worker's), polled until `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
                "AND query LIKE %s",
                [f'INSERT INTO "{table}"%'],
            )
            waiting = [row[0] for row in cursor.fetchall()]
        if waiting:
            assert len(waiting) == 1, waiting
            return waiting[0]
        run.refresh_from_db()
        assert run.is_active, f"run {run.pk} ended {run.status} before its artifact was registered: {run.error}"
        time.sleep(0.1)
    raise AssertionError(f"no backend waited to insert into {table} within {timeout:.0f} s")


def test_a_connection_lost_at_the_artifact_registration_is_retried_and_the_run_succeeds(
    rq_worker, researcher, tiny_model_dir
):
    if connection.vendor != "postgresql":
        pytest.skip("terminating the worker's database backend needs PostgreSQL (set DATABASE_URL=postgres://...)")
    model = tiny_model_entry(tiny_model_dir)
    worker = rq_worker().wait_ready()
    worker.pause()  # the run exists (for the artifact row) before the worker may start it
    run = start_generate_run(researcher, model, prompt_set_of(4), batch_size=2, max_tokens=4)
    with artifact_name_taken(run, "generations"):
        worker.resume()
        pid = backend_waiting_to_insert(Artifact._meta.db_table, run, timeout=120)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            assert cursor.fetchone()[0], f"backend {pid} was not terminated"

    run = wait_for_run(run, timeout=120, what="the run whose artifact write lost its connection")
    assert run.status == PipelineRun.Status.SUCCEEDED and run.attempt == 1, (
        f"{run.status}: {run.error}\n{worker.log_text()[-3000:]}"
    )
    assert_every_prompt_once(artifact_rows(run, "generations"), 4)
    assert run.artifacts.get().row_count == 4
    assert "database write failed" in worker.log_text(), "the worker never met the lost connection"
