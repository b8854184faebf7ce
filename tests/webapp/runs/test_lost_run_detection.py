"""Who marks runs lost: never a page (a GET only reads), but the workers' sweep or `manage.py mark_lost_runs`.

The run page polls every second for every viewer; it used to run the lost-run sweep on each poll (an
UPDATE and up to 100 Redis lookups). Real Redis, empty: no worker holds the stale run, so a sweep
would mark it lost at once, and these tests can tell whether one ran.
"""

from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.fixtures.generate_runs import prompt_set_of, small_generate_config
from webapp.runs import services
from webapp.runs.models import PipelineRun

pytestmark = pytest.mark.django_db

WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)


@pytest.fixture
def stale_run(researcher) -> PipelineRun:
    """A running run whose heartbeat stopped five minutes ago and whose worker Redis does not know."""
    config = small_generate_config(prompt_set_of(2, "two"))
    run = services.run_create(user=researcher, kind="generate", config=config)
    PipelineRun.objects.filter(pk=run.pk).update(
        status=PipelineRun.Status.RUNNING,
        worker_name="gone-worker",
        heartbeat_at=timezone.now() - timedelta(minutes=5),
    )
    run.refresh_from_db()
    return run


@pytest.mark.parametrize(
    ("page", "htmx"),
    [("detail", False), ("detail", True), ("list", False), ("dashboard", False), ("dashboard", True)],
)
def test_pages_that_show_runs_write_nothing_and_leave_a_stale_run_to_the_sweep(
    live_settings, researcher_client, stale_run, page, htmx
):
    path = {"detail": stale_run.get_absolute_url(), "list": "/runs/", "dashboard": "/dashboard/"}[page]
    headers = {"HX-Request": "true"} if htmx else {}
    with CaptureQueriesContext(connection) as queries:
        response = researcher_client.get(path, headers=headers)
    assert response.status_code == 200
    writes = [query["sql"] for query in queries.captured_queries if WRITE.match(query["sql"])]
    assert writes == [], f"GET {path} wrote: {writes}"
    stale_run.refresh_from_db()
    assert stale_run.status == PipelineRun.Status.RUNNING


def test_mark_lost_runs_command_marks_the_stale_run_lost_for_operators_without_a_worker(live_settings, stale_run):
    out = StringIO()
    call_command("mark_lost_runs", stdout=out)
    assert out.getvalue().strip() == "1 run(s) marked lost"
    stale_run.refresh_from_db()
    assert stale_run.status == PipelineRun.Status.LOST
    assert "its worker gone-worker is no longer registered in Redis" in stale_run.error
    call_command("mark_lost_runs", stdout=out)
    assert out.getvalue().strip().endswith("0 run(s) marked lost")
