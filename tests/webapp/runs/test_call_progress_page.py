"""The run page shows the tokens of the model call in flight under the stage's counts, only while it runs."""

from __future__ import annotations

import pytest

from tests.fixtures.generate_runs import prompt_set_of, small_generate_config
from webapp.runs import services
from webapp.runs.models import PipelineRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(researcher):
    config = small_generate_config(prompt_set_of(3, "three"), n=2, max_tokens=8)
    run = services.run_create(user=researcher, kind="generate", config=config)
    PipelineRun.objects.filter(pk=run.pk).update(status=PipelineRun.Status.RUNNING, stage="generate", progress_total=3)
    return run


def _live(client, run: PipelineRun) -> str:
    return client.get(f"/runs/{run.pk}/", headers={"HX-Request": "true"}).content.decode()


def test_the_run_page_shows_the_calls_tokens_and_time_left(researcher_client, run):
    PipelineRun.objects.filter(pk=run.pk).update(
        call_progress={"tokens_done": 1234, "tokens_budget": 4096, "eta_seconds": 40.2}
    )
    assert "model call: 1,234 / 4,096 tokens, ~40 s left" in _live(researcher_client, run)


def test_no_line_between_calls_before_a_rate_or_after_the_run(researcher_client, run):
    assert 'id="run-call-progress"' not in _live(researcher_client, run)
    PipelineRun.objects.filter(pk=run.pk).update(
        call_progress={"tokens_done": 0, "tokens_budget": 512, "eta_seconds": None}
    )
    page = _live(researcher_client, run)
    assert "model call: 0 / 512 tokens</p>" in page
    PipelineRun.objects.filter(pk=run.pk).update(status=PipelineRun.Status.FAILED)
    assert 'id="run-call-progress"' not in _live(researcher_client, run)
