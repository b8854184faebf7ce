"""PostgreSQL restarted under a running run: the worker's writes come back, the run ends whole, the site serves.

The test process and the worker both use a PostgreSQL server of the test's own (a copy of the test
database on a throwaway cluster), so restarting it disturbs nobody else on the machine. The worker
is stepped (support.py `step_worker_until`) to a few finished batches of many and held (SIGSTOP)
while the server goes down, then let go against the dead server: the outage always lands mid-run,
on any machine. (A connection lost at the end-of-job writes: test_end_of_job_writes.py.)
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection
from django.test.client import RequestFactory

from tests.faults.conftest import POSTGRES_BINARIES, ThrowawayPostgres
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
def database_on_throwaway_server(
    transactional_db, throwaway_postgres: ThrowawayPostgres
) -> Iterator[ThrowawayPostgres]:
    """Copy the test database onto the throwaway server and point this process's connection at it.

    Workers started afterwards get the same server (the `rq_worker` fixture hands them the test
    connection's settings). The original settings come back before pytest-django flushes the database.
    """
    settings_dict = connection.settings_dict
    if "postgresql" not in settings_dict["ENGINE"]:
        pytest.skip("the PostgreSQL restart test copies a PostgreSQL test database (set DATABASE_URL=postgres://...)")
    name = settings_dict["NAME"]
    source_environment = {**os.environ, "PGPASSWORD": settings_dict.get("PASSWORD") or ""}
    dump = subprocess.run(
        [
            str(POSTGRES_BINARIES / "pg_dump"),
            "--no-owner",
            "--no-privileges",
            "-h",
            settings_dict.get("HOST") or "127.0.0.1",
            "-p",
            str(settings_dict.get("PORT") or 5432),
            "-U",
            settings_dict.get("USER") or "postgres",
            name,
        ],
        check=True,
        capture_output=True,
        env=source_environment,
        timeout=120,
    )
    throwaway_postgres.psql("postgres", f'CREATE DATABASE "{name}"')
    subprocess.run(
        [
            str(POSTGRES_BINARIES / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(throwaway_postgres.port),
            "-U",
            "postgres",
            "-d",
            name,
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
        ],
        input=dump.stdout,
        check=True,
        capture_output=True,
        timeout=120,
    )
    saved = {key: settings_dict.get(key) for key in ("HOST", "PORT", "USER", "PASSWORD")}
    connection.close()
    settings_dict.update(HOST="127.0.0.1", PORT=str(throwaway_postgres.port), USER="postgres", PASSWORD="")
    try:
        yield throwaway_postgres
    finally:
        connection.close()
        settings_dict.update(saved)


def get_like_a_server(path: str, cookies) -> int:  # type: ignore[no-untyped-def]
    """GET `path` through Django's own WSGI handler, as gunicorn calls it, and return the status code.

    The test client skips the request signals that close broken or old database connections; a
    server process runs them, and a long-lived process holding a connection to a restarted database
    is exactly the case under test.
    """
    cookie_header = "; ".join(f"{key}={morsel.value}" for key, morsel in cookies.items())
    environ = RequestFactory().get(path, HTTP_COOKIE=cookie_header).environ
    status: list[str] = []
    response = WSGIHandler()(environ, lambda line, headers, exc_info=None: status.append(line))
    try:
        b"".join(response)
    finally:
        response.close()
    return int(status[0].split()[0])


def test_postgres_restarted_under_a_running_run_and_an_idle_worker_then_runs_finish_whole_and_the_site_serves(
    database_on_throwaway_server: ThrowawayPostgres, rq_worker, make_user, tiny_model_dir, client
):
    postgres = database_on_throwaway_server
    researcher = make_user("researcher")
    client.force_login(researcher)
    model = tiny_model_entry(tiny_model_dir)
    prompt_set = prompt_set_of(PROMPTS)
    worker = rq_worker().wait_ready()
    worker.pause()  # before the job is queued: the run cannot get ahead of the stepping
    run = start_generate_run(researcher, model, prompt_set, batch_size=1, max_tokens=8)
    batches = services.run_directory(run) / "batches"
    step_worker_until(worker, run, lambda: len(batch_files(batches)) >= 3, what="3 batches are finished")
    assert len(batch_files(batches)) < PROMPTS, "the outage must land while the run has work left"
    assert get_like_a_server(run.get_absolute_url(), client.cookies) == 200

    postgres.stop()
    worker.resume()  # generating against a dead server: its next writes must wait for it
    time.sleep(4)
    postgres.start()

    assert get_like_a_server(run.get_absolute_url(), client.cookies) == 200, (
        "the first request after the restart failed"
    )
    run = wait_for_run(run, timeout=180, what="the run to end after the restart")
    if run.status == PipelineRun.Status.LOST:  # declared lost while the database was away: resumable
        services.run_resume(run=run)
        run = wait_for_run(run, timeout=180, what="the resumed run to finish")
    assert run.status == PipelineRun.Status.SUCCEEDED, (
        f"{run.status}: {run.error}\n{run.traceback}\n{worker.log_text()[-3000:]}"
    )
    assert_every_prompt_once(artifact_rows(run, "generations"), PROMPTS)
    assert "exception raised while executing" not in worker.log_text(), worker.log_text()[-3000:]

    # Restarted again while the worker waits for work: its next job reconnects instead of failing.
    postgres.restart(down_seconds=1)
    assert get_like_a_server(run.get_absolute_url(), client.cookies) == 200  # also reconnects this process
    second = start_generate_run(researcher, model, prompt_set_of(4, "after"), batch_size=2, max_tokens=4, name="after")
    second = wait_for_run(second, timeout=120, what="a run queued after the idle restart")
    assert second.status == PipelineRun.Status.SUCCEEDED, (
        f"{second.status}: {second.error}\n{worker.log_text()[-3000:]}"
    )
    assert_every_prompt_once(artifact_rows(second, "generations"), 4)
    assert worker.running and "exception raised while executing" not in worker.log_text(), worker.log_text()[-3000:]
