"""The generate job end to end: database -> Redis -> a real rqworker process -> the real 135M model.

These tests need committed rows (the worker is another process), hence `transactional_db`.
"""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.fixtures.runs import wait_for_run
from webapp.generate import services as generate_services
from webapp.library.models import SeedPrompt, SeedPromptSet
from webapp.registry.services import model_ensure_embedded
from webapp.runs import services
from webapp.runs.models import PipelineRun

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _prompt_set(count: int) -> SeedPromptSet:
    prompt_set = SeedPromptSet.objects.create(name=f"prompts-{count}", prompt_count=count)
    SeedPrompt.objects.bulk_create(
        SeedPrompt(prompt_set=prompt_set, position=i, text=f"In one sentence, what is {topic}?")
        for i, topic in enumerate((["a list", "a tuple", "a dict", "a set", "a loop", "a function"] * 10)[:count])
    )
    return prompt_set


def _start_run(user, prompt_set: SeedPromptSet, *, max_tokens: int, batch_size: int) -> PipelineRun:
    config = generate_services.generate_config_build(
        model=model_ensure_embedded(), prompt_set=prompt_set, n=1, max_tokens=max_tokens,
        temperature=0.7, top_p=0.95, seed=1, batch_size=batch_size,
    )
    return services.run_create(user=user, kind="generate", config=config, name="test")


def _rows(run: PipelineRun) -> list[dict]:
    artifact = run.artifacts.get(name="generations")
    return [json.loads(line) for line in Path(artifact.jsonl_path).read_text().splitlines()]


def test_generate_job_runs_end_to_end_through_redis_and_a_worker_process(
    live_settings, rq_worker, researcher, embedded_model_dir
):
    prompt_set = _prompt_set(4)
    run = _start_run(researcher, prompt_set, max_tokens=12, batch_size=4)
    worker = rq_worker()

    run = wait_for_run(run, timeout=300, what="the run to finish")

    assert run.status == PipelineRun.Status.SUCCEEDED, run.error + run.traceback + worker.log_text()
    rows = _rows(run)
    assert [row["prompt"] for row in rows] == list(prompt_set.prompts.order_by("position").values_list("text", flat=True))
    assert all(row["responses"][0].strip() for row in rows)
    artifact = run.artifacts.get()
    assert artifact.row_count == 4 and pq.read_table(artifact.parquet_path).num_rows == 4
    assert run.summary["completion_tokens"] > 0 and run.summary["model_load_seconds"] >= 0
    # The bundled model is registered with dtype auto; the suite pins what auto means (tests/conftest.py).
    assert (run.summary["model_dtype"], run.summary["model_dtype_reason"]) == ("float32", "REFINERY_CPU_DTYPE=float32")
    assert run.progress_done == run.progress_total and run.stage == "export"


def test_a_killed_worker_is_detected_and_resume_answers_every_prompt_exactly_once(
    live_settings, rq_worker, researcher, embedded_model_dir
):
    prompt_set = _prompt_set(24)
    run = _start_run(researcher, prompt_set, max_tokens=12, batch_size=2)
    first = rq_worker()
    run = wait_for_run(run, lambda r: r.stage == "generate" and r.progress_done >= 4, 300, "a few batches to finish")
    first.kill()
    batch_dir = services.run_directory(run) / "batches"
    finished_before_kill = {path.name: path.stat().st_mtime_ns for path in batch_dir.iterdir()}
    assert finished_before_kill

    run = wait_for_run(run, lambda r: r.status == PipelineRun.Status.LOST, 60, "the run to be detected as lost")
    assert "heartbeat" in run.error

    rq_worker()
    services.run_resume(run=run)
    run = wait_for_run(run, timeout=300, what="the resumed run to finish")

    assert run.status == PipelineRun.Status.SUCCEEDED, run.error + run.traceback
    assert run.attempt == 2
    prompt_ids = [row["prompt_id"] for row in _rows(run)]
    assert sorted(prompt_ids) == sorted(set(prompt_ids)) and len(prompt_ids) == 24
    for name, mtime in finished_before_kill.items():
        assert (batch_dir / name).stat().st_mtime_ns == mtime, f"{name} was generated twice"
    assert run.summary["batches_generated_this_attempt"] == 12 - len(finished_before_kill)
    assert "resuming" in run.log_tail


def test_cancel_stops_a_running_job_between_batches_and_resume_finishes_it(
    live_settings, rq_worker, researcher, embedded_model_dir
):
    prompt_set = _prompt_set(16)
    run = _start_run(researcher, prompt_set, max_tokens=12, batch_size=2)
    rq_worker()
    run = wait_for_run(run, lambda r: r.stage == "generate" and r.progress_done >= 2, 300, "generation to start")
    services.run_request_cancel(run=run)
    run = wait_for_run(run, timeout=120, what="the cancel to land")
    assert run.status == PipelineRun.Status.CANCELLED
    assert run.progress_done < 16

    services.run_resume(run=run)
    run = wait_for_run(run, timeout=300, what="the resumed run to finish")
    assert run.status == PipelineRun.Status.SUCCEEDED
    assert len(_rows(run)) == 16


def test_a_failing_job_is_marked_failed_with_its_traceback(live_settings, rq_worker, researcher):
    prompt_set = _prompt_set(2)
    from webapp.registry.models import ModelEntry

    broken = ModelEntry.objects.create(name="missing weights", source=ModelEntry.Source.LOCAL, path="/nonexistent/model")
    config = generate_services.generate_config_build(
        model=broken, prompt_set=prompt_set, n=1, max_tokens=4, temperature=0.0, top_p=1.0, seed=None, batch_size=2
    )
    run = services.run_create(user=researcher, kind="generate", config=config)
    rq_worker()
    run = wait_for_run(run, timeout=120, what="the run to fail")
    assert run.status == PipelineRun.Status.FAILED
    assert "/nonexistent/model" in run.error + run.traceback
    assert "Traceback" in run.traceback
