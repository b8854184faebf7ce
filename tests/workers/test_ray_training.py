"""Training on a Ray cluster (issue 19, many hosts): a real local Ray head, a real rqworker, the tiny model.

The test process starts a one-node Ray cluster (head only, 2 CPUs, no dashboard, its own temp dir and
token) and hands its address to the rqworker as `RAY_ADDRESS`, as an operator does; the worker's job
submits a 2-worker Ray Train group (gloo) and follows rank 0's events. Ray Train's worker start-up
takes most of the time here (tens of seconds on 2 cores); training is a few steps.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

from pipelines.common.progress import RecordingProgress
from pipelines.training.config import SFTConfig
from pipelines.training.distributed.job import DistributedJob
from pipelines.training.distributed.launch import DistributedTrainingFailed
from pipelines.training.distributed.rank import read_outcome
from pipelines.training.distributed.ray_launch import launch_ray
from tests.fixtures.runs import wait_for_run
from tests.fixtures.waiting import wait_until
from webapp.library.models import Artifact
from webapp.registry.models import ModelEntry
from webapp.runs import services as run_services
from webapp.runs.models import PipelineRun
from webapp.training import services

pytestmark = [pytest.mark.slow]

ROWS = [
    {"prompt": "What is 2 + 2?", "response": "2 + 2 is 4."},
    {"prompt": "What is the capital of France?", "response": "Paris."},
    {"prompt": "Is ice cold or hot?", "response": "Ice is cold."},
    {"prompt": "How many legs does a spider have?", "response": "Eight."},
]


CLUSTER_TOKEN = secrets.token_hex(32)
"""One token for every cluster this process starts: Ray keeps the first token it loaded for the process's life,
and pytest-django's ordering may set the module's cluster up twice (transactional tests run apart)."""


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """A local Ray head (2 CPUs) for this module; its GCS address. Stopped, every process of it, at the end.

    The token is this test's own (in the environment the rqworker inherits), so nothing is written to ~/.ray.
    """
    import psutil
    import ray

    temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    # ray.init turns token authentication on for a local cluster (RAY_AUTH_MODE=token in os.environ) and
    # takes RAY_AUTH_TOKEN as the token; patch.dict puts the environment back afterwards.
    with mock.patch.dict(os.environ, {"RAY_AUTH_TOKEN": CLUSTER_TOKEN}):
        try:
            context = ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp_dir, log_to_driver=False)
            yield context.address_info["gcs_address"]
            # The rqworkers (function fixtures) are gone by now: every new child is Ray's (GCS, raylet, workers).
            started = [child for child in psutil.Process().children(recursive=True) if child.pid not in before]
            ray.shutdown()
            _, alive = psutil.wait_procs(started, timeout=30)
            assert started and not alive, f"Ray processes left running after ray.shutdown(): {alive}"
        finally:
            ray.shutdown()
            shutil.rmtree(temp_dir, ignore_errors=True)


def _cluster_idle() -> bool:
    """Every CPU of the cluster free again: the group's placement group and worker actors are gone."""
    import ray

    return ray.available_resources().get("CPU", 0) == ray.cluster_resources().get("CPU", -1)


@pytest.fixture
def tiny_entry(tiny_model_dir) -> ModelEntry:
    return ModelEntry.objects.create(name="tiny", source=ModelEntry.Source.LOCAL, path=str(tiny_model_dir))


@pytest.mark.django_db(transaction=True)
def test_a_two_worker_ray_train_group_trains_through_the_rq_worker_and_reports_from_rank_0(
    ray_cluster, live_settings, rq_worker, researcher, tiny_entry
):
    inputs = Path(live_settings.ARTIFACT_ROOT) / "inputs"
    inputs.mkdir(parents=True)
    (inputs / "sft.jsonl").write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    dataset = run_services.artifact_register(
        run=None, name="sft", kind=Artifact.Kind.SFT, jsonl_path=inputs / "sft.jsonl"
    )
    config = services.training_config_build(
        trainer="sft",
        model=tiny_entry,
        dataset=dataset,
        preset="tiny-cpu-demo",
        training_overrides={
            "lora": {"r": 4},
            "torch_threads": 1,
            "max_steps": 3,
            "save_steps": 2,
            "per_device_batch_size": 1,
        },
        method_options={},
        devices=2,  # distributed.processes: 2 Ray Train workers (this worker owns 1 process; the cluster bounds Ray)
    )
    run = run_services.run_create(user=researcher, kind=services.training_kind(config), config=config, name="ray")
    worker = rq_worker(extra_env={"RAY_ADDRESS": ray_cluster})

    run = wait_for_run(run, timeout=420, what="the Ray training run to finish")

    assert run.status == PipelineRun.Status.SUCCEEDED, run.error + run.traceback + worker.log_text()
    model = ModelEntry.objects.get(produced_by_run=run)
    assert (model.parent, model.trained_on) == (tiny_entry, dataset)
    assert (Path(model.path) / "config.json").is_file(), "the merged model must be loadable on its own"
    assert "Ray Train on the cluster at" in run.log_tail and "2 CPU workers, gloo" in run.log_tail
    # Progress and metrics are rank 0's alone, replayed once each: one loss per step, steps 1..3.
    assert [row["step"] for row in run.metrics if "loss" in row] == [1, 2, 3]
    assert all(math.isfinite(row["loss"]) for row in run.metrics if "loss" in row)
    assert run.summary["steps"] == 3 and run.summary["training_processes"] == 2
    group = run_services.run_directory(run) / "distributed"
    job = DistributedJob.read(group / "job.json")
    assert [read_outcome(job, rank)["status"] for rank in (0, 1)] == ["succeeded", "succeeded"]
    assert "rank 1 of 2" in job.rank_log_path(1).read_text()
    wait_until(_cluster_idle, 60, "the Ray Train group to hand its CPUs back")
    seconds = (run.finished_at - run.started_at).total_seconds()
    print(f"\nRay job: {run.summary['steps']} steps, final loss {run.metrics[-1].get('loss')}, {seconds:.1f} s wall")


def test_a_failing_rank_fails_the_group_with_its_error_and_log_lines(ray_cluster, tmp_path):
    """Both ranks fail at once (the model directory is missing); the error names the rank and shows its log."""
    (tmp_path / "sft.jsonl").write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    config = SFTConfig.from_dict({"training": {"max_steps": 1, "device": "cpu", "torch_threads": 1}})
    job = DistributedJob.for_config(
        config, model_dir=tmp_path / "no-such-model", dataset_path=tmp_path / "sft.jsonl", run_dir=tmp_path / "run"
    )
    progress = RecordingProgress()
    started = time.monotonic()
    with pytest.raises(DistributedTrainingFailed) as failed:
        launch_ray(job, 2, False, progress, 0.5)
    assert failed.value.rank in (0, 1)
    assert f"rank {failed.value.rank} of 2 failed: " in str(failed.value)
    assert "no-such-model" in str(failed.value) and failed.value.last_lines
    assert time.monotonic() - started < 240
    wait_until(_cluster_idle, 60, "the failed group to hand its CPUs back")


def test_a_cancel_stops_every_rank_after_one_checkpoint(ray_cluster, tiny_model_dir, tmp_path):
    """The supervisor's cancel file stops both ranks at the same step end; the run ends cancelled, checkpoint kept."""
    from pipelines.errors import RunCancelled
    from pipelines.training.trainer import CHECKPOINTS_DIR, latest_checkpoint

    (tmp_path / "sft.jsonl").write_text("".join(json.dumps(row) + "\n" for row in ROWS * 4))
    config = SFTConfig.from_dict(
        {
            "training": {
                "max_steps": 200,
                "save_steps": 100,
                "per_device_batch_size": 1,
                "max_length": 64,
                "max_prompt_length": 32,
                "adapter": "lora",
                "lora": {"r": 4},
                "device": "cpu",
                "dtype": "float32",
                "torch_threads": 1,
            }
        }
    )
    job = DistributedJob.for_config(
        config, model_dir=tiny_model_dir, dataset_path=tmp_path / "sft.jsonl", run_dir=tmp_path / "run"
    )
    progress = RecordingProgress(cancel_after=2)  # cancels once rank 0 has reported two items of a stage
    with pytest.raises(RunCancelled, match="checkpoint saved at"):
        launch_ray(job, 2, False, progress, 0.5)
    saved = latest_checkpoint(tmp_path / "run" / CHECKPOINTS_DIR)
    assert saved is not None and int(saved.name.split("-")[1]) < 200
    assert [read_outcome(job, rank)["status"] for rank in (0, 1)] == ["cancelled", "cancelled"]
    wait_until(_cluster_idle, 60, "the cancelled group to hand its CPUs back")


FORCE_STOP_DRIVER = """
import sys
from pipelines.common.progress import RecordingProgress
from pipelines.errors import RunCancelled
from pipelines.training.distributed.job import DistributedJob
from pipelines.training.distributed.ray_launch import launch_ray

job = DistributedJob.read(sys.argv[2])
try:
    launch_ray(job, 2, False, RecordingProgress(cancel_after=1), 0.5, address=sys.argv[1], cancel_grace_seconds=0)
except RunCancelled as error:
    print("CANCELLED:", error)
"""


def test_ranks_that_outlast_the_cancel_grace_are_stopped_with_the_ray_job(ray_cluster, tiny_model_dir, tmp_path):
    """A driver of its own, as the RQ worker is: grace 0 stops the Ray job at once, and every CPU comes back."""
    import subprocess
    import sys

    from tests.fixtures.services import REPOSITORY_ROOT

    (tmp_path / "sft.jsonl").write_text("".join(json.dumps(row) + "\n" for row in ROWS * 4))
    config = SFTConfig.from_dict({"training": {"max_steps": 500, "device": "cpu", "torch_threads": 1}})
    job = DistributedJob.for_config(
        config, model_dir=tiny_model_dir, dataset_path=tmp_path / "sft.jsonl", run_dir=tmp_path / "run"
    )
    job_path = job.write(tmp_path / "job.json")
    driver = subprocess.run(
        [sys.executable, "-c", FORCE_STOP_DRIVER, ray_cluster, str(job_path)],
        cwd=REPOSITORY_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY_ROOT), "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert "CANCELLED:" in driver.stdout and "so the Ray job was stopped" in driver.stdout, (
        driver.stdout + driver.stderr
    )
    wait_until(_cluster_idle, 30, "the stopped job's workers to hand their CPUs back")
