"""Training jobs end to end: the site's config -> Redis -> a real rqworker -> the training layer -> the registry.

A tiny random model keeps these to seconds of training; the mechanics (checkpoints, resume after
SIGKILL, lineage, live metrics) are the same as for a real model.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from pipelines.training.trainer import CHECKPOINTS_DIR, latest_checkpoint
from tests.fixtures.runs import wait_for_run
from tests.fixtures.waiting import wait_until
from webapp.library.models import Artifact
from webapp.registry.models import ModelEntry
from webapp.runs import services as run_services
from webapp.runs.models import PipelineRun
from webapp.training import services

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

QUESTIONS = [
    ("What is 2 + 2?", "2 + 2 is 4.", "2 + 2 is 7."),
    ("What is the capital of France?", "Paris.", "Berlin."),
    ("Is ice cold or hot?", "Ice is cold.", "Ice is hot."),
    ("How many legs does a spider have?", "Eight.", "Three."),
]


def _dataset(directory: Path, name: str, rows: list[dict]) -> Artifact:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return run_services.artifact_register(run=None, name=name, kind=Artifact.Kind.SFT, jsonl_path=path)


def _start(user, *, trainer: str, model: ModelEntry, dataset: Artifact, overrides: dict, options: dict | None = None):
    config = services.training_config_build(
        trainer=trainer, model=model, dataset=dataset, preset="tiny-cpu-demo",
        training_overrides={"lora": {"r": 4}, "torch_threads": 1, **overrides}, method_options=options or {},
    )
    return run_services.run_create(
        user=user, kind=services.training_kind(config), config=config, name=f"test {trainer}"
    )


@pytest.fixture
def tiny_entry(tiny_model_dir) -> ModelEntry:
    return ModelEntry.objects.create(name="tiny", source=ModelEntry.Source.LOCAL, path=str(tiny_model_dir))


def test_sft_then_spin_training_through_a_worker_builds_a_registry_chain_with_metrics(
    live_settings, rq_worker, researcher, tiny_entry, client
):
    root = Path(live_settings.ARTIFACT_ROOT) / "inputs"
    sft_data = _dataset(root, "sft", [{"prompt": q, "response": right} for q, right, _ in QUESTIONS])
    pairs = _dataset(root, "pairs", [{"prompt": q, "chosen": right, "rejected": wrong} for q, right, wrong in QUESTIONS])
    worker = rq_worker()

    sft_run = _start(researcher, trainer="sft", model=tiny_entry, dataset=sft_data, overrides={"max_steps": 4, "save_steps": 2})
    sft_run = wait_for_run(sft_run, timeout=300, what="SFT to finish")
    assert sft_run.status == PipelineRun.Status.SUCCEEDED, sft_run.error + sft_run.traceback + worker.log_text()
    sft_model = ModelEntry.objects.get(produced_by_run=sft_run)
    assert (sft_model.parent, sft_model.trained_on, sft_model.task) == (tiny_entry, sft_data, ModelEntry.Task.GENERATION)
    assert (Path(sft_model.path) / "config.json").is_file(), "the merged model must be loadable on its own"
    assert sft_model.training_config["training"]["max_steps"] == 4
    losses = [row["loss"] for row in sft_run.metrics if "loss" in row]
    assert len(losses) >= 2 and all(math.isfinite(loss) for loss in losses)
    assert sft_run.summary["steps"] == 4
    # Every row measured against the limits, and what was cut (nothing here) on the run page.
    assert sft_run.summary["lengths/rows"] == 4 and sft_run.summary["lengths/rows_cut"] == 0
    assert sft_run.summary["lengths/rows_over_max_length"] == 0
    assert sft_run.summary["effective_batch"] == "2 per device x 1 accumulation x 1 device = 2"

    spin_run = _start(
        researcher, trainer="preference", model=sft_model, dataset=pairs,
        overrides={"max_steps": 2, "learning_rate": 1e-4}, options={"loss": "spin", "beta": 0.1},
    )
    spin_run = wait_for_run(spin_run, timeout=300, what="SPIN training to finish")
    assert spin_run.status == PipelineRun.Status.SUCCEEDED, spin_run.error + spin_run.traceback + worker.log_text()
    spin_model = ModelEntry.objects.get(produced_by_run=spin_run)
    assert spin_model.parent == sft_model
    assert any("rewards/margins" in row for row in spin_run.metrics)

    client.force_login(researcher)
    registry = client.get("/models/").content.decode()
    assert f'id="model-{sft_model.pk}" data-depth="1"' in registry
    assert f'id="model-{spin_model.pk}" data-depth="2"' in registry
    run_page = client.get(spin_run.get_absolute_url()).content.decode()
    assert 'data-metric="loss"' in run_page and 'data-metric="rewards/margins"' in run_page
    assert "Lengths: rows over max prompt length" in run_page


def test_rows_over_the_lengths_are_cut_and_counted_on_the_run_page_or_refused(
    live_settings, rq_worker, researcher, tiny_entry, client
):
    rows = [{"prompt": q, "response": right} for q, right, _ in QUESTIONS] + [{"prompt": "Explain. " * 200, "response": "ok"}]
    dataset = _dataset(Path(live_settings.ARTIFACT_ROOT) / "inputs", "long", rows)
    worker = rq_worker()
    cut = _start(researcher, trainer="sft", model=tiny_entry, dataset=dataset, overrides={"max_steps": 1, "save_steps": 1})
    refused = _start(researcher, trainer="sft", model=tiny_entry, dataset=dataset,
                     overrides={"max_steps": 1, "over_length": "refuse"})
    cut = wait_for_run(cut, timeout=300, what="the SFT run with a long row")
    assert cut.status == PipelineRun.Status.SUCCEEDED, cut.error + cut.traceback + worker.log_text()
    assert cut.summary["lengths/rows_cut"] == 1 and cut.summary["lengths/rows_over_max_prompt_length"] == 1
    assert cut.summary["lengths/proposed_max_prompt_length"] > 128
    client.force_login(researcher)
    page = client.get(cut.get_absolute_url()).content.decode()
    assert "Lengths: rows cut" in page
    refused = wait_for_run(refused, timeout=300, what="the refusing SFT run")
    assert refused.status == PipelineRun.Status.FAILED
    assert "1 of 5 rows are longer than the limits (rows 5;" in refused.error


def test_a_killed_training_worker_resumes_from_its_last_checkpoint_with_the_step_count_going_on(
    live_settings, rq_worker, researcher, tiny_entry
):
    rows = [{"prompt": q, "response": right} for q, right, _ in QUESTIONS] * 4
    dataset = _dataset(Path(live_settings.ARTIFACT_ROOT) / "inputs", "sft", rows)
    run = _start(researcher, trainer="sft", model=tiny_entry, dataset=dataset,
                 overrides={"max_steps": 300, "save_steps": 5, "save_total_limit": 0})
    first = rq_worker()
    checkpoints = run_services.run_directory(run) / CHECKPOINTS_DIR
    wait_until(lambda: latest_checkpoint(checkpoints), 300, lambda: "a first checkpoint\n" + first.log_text())
    first.kill()
    killed_at = int(latest_checkpoint(checkpoints).name.split("-")[1])
    assert killed_at < 300, "training finished before the kill; the test needs more steps"

    run = wait_for_run(run, lambda r: r.status == PipelineRun.Status.LOST, 60, "the run to be detected as lost")
    rq_worker()
    run_services.run_resume(run=run)
    run = wait_for_run(run, timeout=300, what="the resumed run to finish")

    assert run.status == PipelineRun.Status.SUCCEEDED, run.error + run.traceback
    assert run.summary["steps"] == 300
    resumed_from = latest_step_in_log(run.log_tail)
    assert resumed_from is not None and resumed_from >= killed_at
    steps_logged_after_resume = [row["step"] for row in run.metrics if row["t"] > run.started_at.timestamp()]
    assert steps_logged_after_resume and min(steps_logged_after_resume) > resumed_from


def latest_step_in_log(log_tail: str) -> int | None:
    import re

    found = re.findall(r"resumed from step (\d+) of", log_tail)
    return int(found[-1]) if found else None


def test_cancel_keeps_the_last_checkpoint_and_says_where_it_is(live_settings, rq_worker, researcher, tiny_entry):
    rows = [{"prompt": q, "response": right} for q, right, _ in QUESTIONS] * 4
    dataset = _dataset(Path(live_settings.ARTIFACT_ROOT) / "inputs", "sft", rows)
    run = _start(researcher, trainer="sft", model=tiny_entry, dataset=dataset, overrides={"max_steps": 300, "save_steps": 50})
    rq_worker()
    run = wait_for_run(run, lambda r: r.stage == "train" and r.progress_done >= 3, 300, "training to start", poll=0.1)
    run_services.run_request_cancel(run=run)
    run = wait_for_run(run, timeout=120, what="the cancel to land")
    assert run.status == PipelineRun.Status.CANCELLED
    saved = latest_checkpoint(run_services.run_directory(run) / CHECKPOINTS_DIR)
    assert saved is not None and str(saved) in run.summary["stopped"]
    assert int(saved.name.split("-")[1]) < 300
