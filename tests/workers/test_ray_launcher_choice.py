"""Which launcher a training run gets, and the Ray launcher's refusals that need no cluster (fast)."""

from __future__ import annotations

import pytest

from pipelines.common.progress import RecordingProgress
from pipelines.errors import InvalidConfigError
from pipelines.training.config import SFTConfig
from pipelines.training.distributed.job import DistributedJob
from pipelines.training.distributed.ray_launch import RayUnavailableError, launch_ray, ray_uses_gpu
from workers.kinds.training import ray_workers, uses_ray


def test_ray_address_sends_runs_to_ray_unless_the_run_names_another_launcher(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert not uses_ray({}) and uses_ray({"launcher": "ray"})
    monkeypatch.setenv("RAY_ADDRESS", "head-host:6379")
    assert uses_ray({}) and uses_ray({"processes": 2})
    assert not uses_ray({"launcher": "torchrun"})
    with pytest.raises(InvalidConfigError, match="distributed.launcher must be one of none, torchrun, ray; got 'mpi'"):
        uses_ray({"launcher": "mpi"})


def test_ray_workers_are_the_runs_processes_not_bounded_by_the_workers_own(settings):
    settings.REFINERY_TRAINING_DEVICES = []
    settings.REFINERY_TRAINING_PROCESSES = 1
    assert ray_workers({"processes": 8}) == 8
    assert ray_workers({}) == 1
    with pytest.raises(InvalidConfigError, match="distributed.processes must be a whole number"):
        ray_workers({"processes": "eight"})


def test_the_device_decides_gpu_workers():
    assert ray_uses_gpu(SFTConfig.from_dict({"training": {"device": "cuda"}})) is True
    assert ray_uses_gpu(SFTConfig.from_dict({"training": {"device": "cpu"}})) is False
    assert ray_uses_gpu(SFTConfig.from_dict({"training": {"device": "auto"}})) is None


def test_launch_ray_without_a_cluster_is_refused_by_name(monkeypatch, tmp_path):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    job = DistributedJob.for_config(
        SFTConfig.from_dict({}), model_dir=tmp_path, dataset_path=tmp_path / "rows.jsonl", run_dir=tmp_path / "run"
    )
    with pytest.raises(RayUnavailableError, match="set RAY_ADDRESS on this worker"):
        launch_ray(job, 2, False, RecordingProgress())
    assert not (tmp_path / "run").exists(), "a refused launch writes nothing"
