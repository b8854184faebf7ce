"""A model call's tokens on the run: written while it runs, with an ETA, and emptied when it ends."""

from __future__ import annotations

import pytest

from pipelines.common.progress import StagePrefix
from webapp.runs import services
from webapp.runs.models import PipelineRun
from webapp.runs.services import AttemptFenced
from workers.progress import DbProgress

pytestmark = pytest.mark.django_db


@pytest.fixture
def run():
    return PipelineRun.objects.create(kind="generate", status=PipelineRun.Status.RUNNING)


def _call_detail(run: PipelineRun) -> dict:
    run.refresh_from_db()
    return run.call_progress


def test_a_calls_tokens_land_on_the_run_with_an_eta_and_are_cleared_when_it_ends(run):
    progress = DbProgress(run_id=run.pk, attempt=1)
    progress.stage("answers", total=10)
    progress.call_progress(0, 4096)
    progress._call.started -= 10.0  # the call began 10 s ago
    progress.call_progress(1024, 4096)  # 1024 tokens in 10 s, 3072 left -> about 30 s
    progress.flush()
    detail = _call_detail(run)
    assert (detail["tokens_done"], detail["tokens_budget"]) == (1024, 4096)
    assert detail["eta_seconds"] == pytest.approx(30.0, abs=0.5)

    progress.call_progress(4096, 4096)  # the backend's last report: the call returned
    progress.flush()
    assert _call_detail(run) == {}


def test_no_eta_before_the_first_token_and_a_new_call_restarts_the_clock(run):
    progress = DbProgress(run_id=run.pk, attempt=1)
    progress.call_progress(0, 100)
    progress.flush()
    assert _call_detail(run) == {"tokens_done": 0, "tokens_budget": 100, "eta_seconds": None}
    progress.call_progress(60, 100)
    first_call = progress._call
    progress.call_progress(5, 100)  # lower than before: another call began (its start report was throttled away)
    assert progress._call is not first_call and progress._call.tokens_at_start == 5


def test_a_new_stage_or_the_end_of_the_run_empties_the_detail(run):
    progress = DbProgress(run_id=run.pk, attempt=1)
    progress.call_progress(10, 100)
    progress.stage("export", total=1)  # stage() writes at once
    assert _call_detail(run) == {}

    StagePrefix(progress, "iter 0 · ").call_progress(10, 100)
    progress.flush()
    assert _call_detail(run)["tokens_done"] == 10
    services.run_mark_failed(run_id=run.pk, error="boom", attempt=1)
    assert _call_detail(run) == {}


def test_call_progress_writes_are_throttled_like_the_rest(run):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    progress = DbProgress(run_id=run.pk, attempt=1)
    progress.stage("answers", total=1)
    with CaptureQueriesContext(connection) as queries:
        for tokens in range(1, 500):
            progress.call_progress(tokens, 1000)
    assert len([q for q in queries.captured_queries if q["sql"].startswith("UPDATE")]) <= 1


def test_a_fenced_attempt_stops_inside_the_call(run):
    progress = DbProgress(run_id=run.pk, attempt=1)
    PipelineRun.objects.filter(pk=run.pk).update(attempt=2)  # resumed elsewhere meanwhile
    with pytest.raises(AttemptFenced):
        progress.call_progress(1, 100)  # its write finds the attempt superseded
    with pytest.raises(AttemptFenced):
        progress.call_progress(2, 100)  # and every later report raises in the decoding loop, ending the call


def test_the_workers_loader_hooks_every_backend_it_hands_out_to_the_runs_progress(run, monkeypatch, settings, tmp_path):
    import workers.backends as backends_module

    class Backend:
        token_progress = None

    settings.MODEL_CACHE_DIR = str(tmp_path)
    warm = Backend()
    monkeypatch.setattr(backends_module, "get_backend", lambda spec, model_cache_dir: (warm, True))
    progress = DbProgress(run_id=run.pk, attempt=1)
    loaded = backends_module.WorkerBackends(run.pk, progress).load({"kind": "transformers", "source": "embedded"})
    assert loaded is warm and loaded.token_progress == progress.call_progress
