"""A training run on a worker that owns two CPU training processes: a torchrun group of 2 (gloo, DDP)
through a real rqworker, its progress and metrics on the run page, its model in the registry.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import psutil
import pytest

from pipelines.errors import InvalidConfigError
from pipelines.training.trainer import CHECKPOINTS_DIR, latest_checkpoint
from tests.fixtures.runs import wait_for_run
from webapp.library.models import Artifact
from webapp.registry.models import ModelEntry
from webapp.runs import services as run_services
from webapp.runs.models import PipelineRun
from webapp.training import services
from workers.kinds.training import training_processes

QUESTIONS = [
    ("What is 2 + 2?", "2 + 2 is 4."),
    ("What is the capital of France?", "Paris."),
    ("Is ice cold or hot?", "Ice is cold."),
    ("How many legs does a spider have?", "Eight."),
]


def test_a_run_takes_the_workers_devices_or_fewer_and_more_is_refused_by_name(settings):
    settings.REFINERY_TRAINING_DEVICES = []
    settings.REFINERY_TRAINING_PROCESSES = 1
    assert training_processes({}) == (1, None)
    settings.REFINERY_TRAINING_PROCESSES = 4
    assert training_processes({}) == (4, None)
    assert training_processes({"processes": 2}) == (2, None)
    settings.REFINERY_TRAINING_DEVICES = ["2", "3"]
    assert training_processes({}) == (2, ["2", "3"])
    assert training_processes({"processes": 1}) == (1, ["2"])
    with pytest.raises(InvalidConfigError, match="distributed.processes is 3 but this worker owns 2"):
        training_processes({"processes": 3})
    with pytest.raises(InvalidConfigError, match="whole number"):
        training_processes({"processes": "two"})


def _tiny_sft_run(researcher, tiny_model_dir, artifact_root: str, **overrides) -> PipelineRun:
    tiny = ModelEntry.objects.create(name="tiny", source=ModelEntry.Source.LOCAL, path=str(tiny_model_dir))
    inputs = Path(artifact_root) / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    path = inputs / "sft.jsonl"
    path.write_text("".join(json.dumps({"prompt": q, "response": a}) + "\n" for q, a in QUESTIONS * 2))
    dataset = run_services.artifact_register(run=None, name="sft", kind=Artifact.Kind.SFT, jsonl_path=path)
    config = services.training_config_build(
        trainer="sft", model=tiny, dataset=dataset, preset="tiny-cpu-demo",
        training_overrides={"lora": {"r": 4}, **overrides}, method_options={}, devices=2,
    )  # fmt: skip
    assert config["distributed"] == {"processes": 2}
    return run_services.run_create(user=researcher, kind=services.training_kind(config), config=config, name="ddp")


def _rank_processes(run: PipelineRun) -> list[psutil.Process]:
    """torchrun and the ranks of the run's group still alive (their command lines name its job file)."""
    job_path = str(run_services.run_directory(run) / "distributed" / "job.json")
    alive = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if job_path in (process.info["cmdline"] or []) and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except psutil.Error:
            continue  # ended while we looked
    return alive


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_two_process_training_run_through_a_worker_succeeds_and_registers_its_model(
    live_settings, rq_worker, researcher, tiny_model_dir
):
    run = _tiny_sft_run(researcher, tiny_model_dir, live_settings.ARTIFACT_ROOT, max_steps=4, save_steps=2)
    worker = rq_worker(extra_env={"REFINERY_TRAINING_PROCESSES": "2"})

    run = wait_for_run(run, timeout=300, what="the 2-process training to finish")

    assert run.status == PipelineRun.Status.SUCCEEDED, run.error + run.traceback + worker.log_text()
    assert "launching 2 training processes with torchrun on CPU" in run.log_tail
    assert "2 ranks on this host" in run.log_tail, "rank 0's log lines reach the run page"
    assert run.summary["training_processes"] == 2 and run.summary["steps"] == 4
    assert run.summary["effective_batch"] == "2 per device x 1 accumulation x 2 devices = 4"
    losses = [row["loss"] for row in run.metrics if "loss" in row]
    assert len(losses) == 4 and all(math.isfinite(loss) for loss in losses)
    model = ModelEntry.objects.get(produced_by_run=run)
    assert model.parent.path == str(tiny_model_dir) and (Path(model.path) / "config.json").is_file()
    ranks = run_services.run_directory(run) / "distributed" / "ranks"
    assert sorted(path.name for path in ranks.glob("rank-*.log")) == ["rank-0.log", "rank-1.log"]
    assert not _rank_processes(run)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_cancel_stops_every_rank_after_one_checkpoint(live_settings, rq_worker, researcher, tiny_model_dir):
    run = _tiny_sft_run(researcher, tiny_model_dir, live_settings.ARTIFACT_ROOT, max_steps=300, save_steps=100)
    worker = rq_worker(extra_env={"REFINERY_TRAINING_PROCESSES": "2"})
    run = wait_for_run(run, lambda r: r.stage == "train" and r.progress_done >= 3, 300, "training to start", poll=0.1)
    assert len(_rank_processes(run)) == 3, "torchrun and its two ranks"

    run_services.run_request_cancel(run=run)
    run = wait_for_run(run, timeout=120, what="the cancel to land")

    assert run.status == PipelineRun.Status.CANCELLED, run.error + run.traceback + worker.log_text()
    saved = latest_checkpoint(run_services.run_directory(run) / CHECKPOINTS_DIR)
    assert saved is not None and str(saved) in run.summary["stopped"]
    assert 3 <= int(saved.name.split("-")[1]) < 300
    assert not _rank_processes(run)
    ranks = run_services.run_directory(run) / "distributed" / "ranks"
    for rank in (0, 1):
        assert json.loads((ranks / f"rank-{rank}.outcome.json").read_text())["status"] == "cancelled"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_killed_rank_fails_the_run_with_its_last_lines_on_the_page_and_the_run_resumes(
    live_settings, rq_worker, researcher, tiny_model_dir
):
    run = _tiny_sft_run(researcher, tiny_model_dir, live_settings.ARTIFACT_ROOT, max_steps=30, save_steps=2)
    worker = rq_worker(extra_env={"REFINERY_TRAINING_PROCESSES": "2"})
    run = wait_for_run(run, lambda r: r.stage == "train" and r.progress_done >= 3, 300, "training to start", poll=0.1)
    rank_one = next(process for process in _rank_processes(run) if process.environ().get("RANK") == "1")
    rank_one.kill()

    run = wait_for_run(run, timeout=120, what="the run to fail")

    assert run.status == PipelineRun.Status.FAILED, worker.log_text()
    assert "DistributedTrainingFailed: rank 1 of 2 failed: killed by SIGKILL" in run.error
    last_lines = run.error.split("its last log lines:", 1)[1]
    assert "[rank 1]" in last_lines and "[rank 0]" not in last_lines, "rank 1's own last log lines are on the page"
    assert not _rank_processes(run)
    saved = latest_checkpoint(run_services.run_directory(run) / CHECKPOINTS_DIR)
    assert saved is not None

    run_services.run_resume(run=run)
    run = wait_for_run(run, timeout=300, what="the resumed run to finish")
    assert run.status == PipelineRun.Status.SUCCEEDED, run.error + run.traceback + worker.log_text()
    assert f"resumed from step {saved.name.split('-')[1]} of 30" in run.log_tail
    assert run.summary["steps"] == 30 and not _rank_processes(run)
