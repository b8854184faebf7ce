"""Run state transitions, lost detection and the run pages (without a worker: nothing is executed)."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.fixtures.generate_runs import prompt_set_of, small_generate_config
from webapp.generate import services as generate_services
from webapp.library.models import Artifact, SeedPrompt, SeedPromptSet
from webapp.registry.services import model_ensure_embedded
from webapp.runs import services
from webapp.runs.models import PipelineRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def prompt_set():
    return prompt_set_of(3, "three")


@pytest.fixture
def run(researcher, prompt_set):
    config = small_generate_config(prompt_set, n=2, max_tokens=8)
    return services.run_create(user=researcher, kind="generate", config=config)


def _set(run: PipelineRun, **fields) -> PipelineRun:
    PipelineRun.objects.filter(pk=run.pk).update(**fields)
    run.refresh_from_db()
    return run


def test_created_run_is_queued_with_a_deterministic_job_id(run):
    assert run.status == PipelineRun.Status.QUEUED
    assert run.rq_job_id == f"run-{run.pk}-1"
    assert run.config["generate"]["sampling"]["n"] == 2


def test_config_is_validated_before_anything_is_queued(researcher):
    empty = SeedPromptSet.objects.create(name="empty")
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="has no prompts"):
        generate_services.generate_config_build(model=model_ensure_embedded(), prompt_set=empty, n=1, max_tokens=8, temperature=0.7, top_p=1.0, seed=0, batch_size=2)
    with pytest.raises(ValidationError, match="top_p") as refused:
        prompt_set = SeedPromptSet.objects.create(name="one")
        SeedPrompt.objects.create(prompt_set=prompt_set, position=0, text="x")
        generate_services.generate_config_build(model=model_ensure_embedded(), prompt_set=prompt_set, n=1, max_tokens=8, temperature=0.7, top_p=0.0, seed=0, batch_size=2)
    assert list(refused.value.message_dict) == ["top_p"]  # beside the form's field, not on top of the form
    assert PipelineRun.objects.count() == 0


def test_cancelling_a_queued_run_stops_it_at_once(run):
    run = services.run_request_cancel(run=run)
    assert run.status == PipelineRun.Status.CANCELLED and run.cancel_requested


def test_cancelling_a_running_run_only_raises_the_flag(run):
    run = _set(run, status=PipelineRun.Status.RUNNING, heartbeat_at=timezone.now())
    run = services.run_request_cancel(run=run)
    assert run.status == PipelineRun.Status.RUNNING and services.run_cancel_requested(run_id=run.pk)


def test_finished_runs_cannot_be_cancelled_and_active_runs_cannot_be_resumed(run):
    with pytest.raises(services.RunStateError, match="only failed, cancelled or lost runs can be resumed"):
        services.run_resume(run=run)
    run = _set(run, status=PipelineRun.Status.SUCCEEDED)
    with pytest.raises(services.RunStateError, match="only queued, running or lost runs can be cancelled"):
        services.run_request_cancel(run=run)


def test_a_run_whose_heartbeat_stopped_is_marked_lost_and_can_be_resumed(live_settings, run):
    """No worker holds it in the (real, empty) Redis: the stale heartbeat is confirmed and the run is lost."""
    run = _set(run, status=PipelineRun.Status.RUNNING, heartbeat_at=timezone.now() - timedelta(minutes=5))
    assert services.runs_mark_lost() == 1
    run.refresh_from_db()
    assert run.status == PipelineRun.Status.LOST
    run = services.run_resume(run=run)
    assert (run.status, run.attempt, run.rq_job_id) == (PipelineRun.Status.QUEUED, 2, f"run-{run.pk}-2")


def test_a_superseded_attempt_cannot_write_progress(run):
    run = _set(run, attempt=2, status=PipelineRun.Status.RUNNING)
    assert services.run_write_progress(run_id=run.pk, attempt=1, stage="ghost", progress_done=99) is False
    run.refresh_from_db()
    assert run.stage != "ghost"


def test_a_fenced_attempt_cannot_register_artifacts_summaries_models_or_finish(run, tmp_path):
    """Attempt 1 was superseded by a resume (attempt 2 queued): each result write it tries is refused."""
    from webapp.registry.services import model_register_trained

    run = _set(run, attempt=2, status=PipelineRun.Status.QUEUED)
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"a": 1}\n')
    with services.attempt_scope(run_id=run.pk, attempt=1):
        with pytest.raises(services.AttemptFenced, match="attempt 1 is fenced: the run is at attempt 2, queued"):
            services.artifact_register(run=run, name="generations", kind=Artifact.Kind.GENERATIONS, jsonl_path=rows)
        with pytest.raises(services.AttemptFenced):
            services.run_update_summary(run_id=run.pk, values={"rows": 1})
        with pytest.raises(services.AttemptFenced):
            model_register_trained(
                run=run, parent=model_ensure_embedded(), output_dir=str(tmp_path), dataset=None,
                training_config={}, metrics={}, parameter_count=1,
            )
        assert services.run_mark_succeeded(run_id=run.pk) is False
    _set(run, status=PipelineRun.Status.RUNNING)
    assert services.run_mark_failed(run_id=run.pk, error="old attempt", attempt=1) is False
    run.refresh_from_db()
    assert (run.status, run.summary, run.artifacts.count(), run.error) == (PipelineRun.Status.RUNNING, {}, 0, "")

    with services.attempt_scope(run_id=run.pk, attempt=2):  # the current attempt writes as before
        services.artifact_register(run=run, name="generations", kind=Artifact.Kind.GENERATIONS, jsonl_path=rows)
        services.run_update_summary(run_id=run.pk, values={"rows": 1})
        assert services.run_mark_succeeded(run_id=run.pk) is True
    run.refresh_from_db()
    assert (run.status, run.summary, run.artifacts.count()) == (PipelineRun.Status.SUCCEEDED, {"rows": 1}, 1)


def test_run_page_polls_while_active_and_stops_when_finished(researcher_client, run):
    live = researcher_client.get(f"/runs/{run.pk}/", headers={"HX-Request": "true"}).content.decode()
    assert 'hx-trigger="every 1s"' in live and "<html" not in live
    _set(run, status=PipelineRun.Status.SUCCEEDED)
    final = researcher_client.get(f"/runs/{run.pk}/", headers={"HX-Request": "true"}).content.decode()
    assert "hx-trigger" not in final and "Succeeded" in final


def test_lost_run_page_shows_the_reason_and_a_resume_button(live_settings, researcher_client, run):
    _set(run, status=PipelineRun.Status.RUNNING, heartbeat_at=timezone.now() - timedelta(minutes=5))
    assert services.runs_mark_lost() == 1  # the workers' periodic sweep (workers/lost_run_sweep.py); a GET writes nothing
    page = researcher_client.get(f"/runs/{run.pk}/").content.decode()
    assert "Worker lost" in page and "heartbeats" in page and "no longer registered in Redis" in page and "Resume" in page


def test_failed_run_page_shows_its_traceback(researcher_client, run):
    _set(run, status=PipelineRun.Status.FAILED, error="ValueError: boom", traceback="Traceback (most recent call last):\n  ...")
    page = researcher_client.get(f"/runs/{run.pk}/").content.decode()
    assert "ValueError: boom" in page and "Traceback (most recent call last)" in page


def test_artifact_browser_paginates_and_downloads(researcher_client, run, tmp_path):
    path = tmp_path / "generations.jsonl"
    path.write_text("".join(json.dumps({"prompt_id": f"p{i}", "responses": [f"answer {i}"]}) + "\n" for i in range(30)))
    artifact = services.artifact_register(run=run, name="generations", kind=Artifact.Kind.GENERATIONS, jsonl_path=path)
    assert artifact.row_count == 30 and artifact.columns == ["prompt_id", "responses"]

    second_page = researcher_client.get(f"/runs/artifacts/{artifact.pk}/?page=2").content.decode()
    assert "answer 25" in second_page and "answer 3<" not in second_page and "page 2 of 2" in second_page
    download = researcher_client.get(f"/runs/artifacts/{artifact.pk}/download/jsonl/")
    assert download.status_code == 200 and b"".join(download.streaming_content).count(b"\n") == 30
    assert researcher_client.get(f"/runs/artifacts/{artifact.pk}/download/parquet/").status_code == 404
