"""Training runs (SFT, preference, reward): the run's model and dataset in, a registry entry out.

The run directory holds the checkpoints, so a resumed attempt continues from the newest one (the
step count goes on) and a rerun of a finished run only registers its result again. The run trains on
the devices this worker owns (settings `REFINERY_TRAINING_DEVICES` / `REFINERY_TRAINING_PROCESSES`):
in the worker's own process on one, as a torchrun process group on more; a run's config may ask for
fewer with `distributed: {"processes": N}` (0 or absent: all of them). A worker with `RAY_ADDRESS` (or a
run with `distributed: {"launcher": "ray"}`) trains on a Ray cluster instead (docs/multi-host.md).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from django.conf import settings

from pipelines.common.store import RunStore
from pipelines.errors import InvalidConfigError
from pipelines.training import PreferenceConfig, RewardConfig, SFTConfig, TrainingInputs
from pipelines.training.distributed.pipeline import run_training_on_processes
from pipelines.training.distributed.ray_launch import ray_address, run_training_on_ray
from webapp.library.models import Artifact
from webapp.registry.models import ModelEntry
from webapp.runs.models import PipelineRun
from workers.runner import PreparedJob

CONFIG_CLASSES = {"sft": SFTConfig, "preference": PreferenceConfig, "reward": RewardConfig}


def prepare(run: PipelineRun, store: RunStore) -> PreparedJob:
    model = ModelEntry.objects.get(pk=run.config["model_id"])
    dataset = Artifact.objects.get(pk=run.config["dataset_artifact_id"])
    reference_id = run.config.get("reference_model_id")
    reference = ModelEntry.objects.get(pk=reference_id) if reference_id else None
    distributed = run.config.get("distributed") or {}
    if uses_ray(distributed):
        processes = ray_workers(distributed)
        pipeline = partial(run_training_on_ray, workers=processes)
    else:
        processes, devices = training_processes(distributed)
        pipeline = partial(run_training_on_processes, processes=processes, devices=devices)
    return PreparedJob(
        pipeline=pipeline,
        config=CONFIG_CLASSES[run.config["trainer"]].from_dict(run.config["config"]),
        inputs=TrainingInputs(
            model=model.backend_spec(),
            dataset_path=Path(dataset.jsonl_path),
            reference_model=reference.backend_spec() if reference is not None else None,
        ),
        models={"model": model},
        datasets={"dataset": dataset},
        summary={"effective_batch": run.config.get("effective_batch", ""), "training_processes": processes},
    )


def training_processes(distributed: dict[str, Any]) -> tuple[int, list[str] | None]:
    """How many processes this run trains on, and on which CUDA devices (None: CPU or the worker's own).

    The worker owns `REFINERY_TRAINING_DEVICES` (one process per GPU) or `REFINERY_TRAINING_PROCESSES`
    CPU processes; the run's `distributed.processes` takes the first N of them, and more than the
    worker owns is refused by name rather than cut.
    """
    owned_devices: list[str] = list(settings.REFINERY_TRAINING_DEVICES)
    owned = len(owned_devices) or max(1, int(settings.REFINERY_TRAINING_PROCESSES))
    asked = distributed.get("processes", 0) or 0
    if isinstance(asked, bool) or not isinstance(asked, int) or asked < 0:
        raise InvalidConfigError(
            f"distributed.processes must be a whole number (0: all the worker's devices), got {asked!r}",
            field="distributed",
        )
    if asked > owned:
        raise InvalidConfigError(
            f"distributed.processes is {asked} but this worker owns {owned} training device(s) "
            f"({', '.join(owned_devices) or 'CPU processes'}); ask for at most {owned} or start the worker "
            "with more (REFINERY_TRAINING_DEVICES / REFINERY_TRAINING_PROCESSES)",
            field="distributed",
        )
    processes = asked or owned
    return processes, owned_devices[:processes] if owned_devices else None


LAUNCHERS = ("none", "torchrun", "ray")


def uses_ray(distributed: dict[str, Any]) -> bool:
    """Whether the run trains on the Ray cluster: it asks for the "ray" launcher, or names none on a worker with RAY_ADDRESS."""
    launcher = distributed.get("launcher") or ("ray" if ray_address() else "torchrun")
    if launcher not in LAUNCHERS:
        raise InvalidConfigError(
            f"distributed.launcher must be one of {', '.join(LAUNCHERS)}; got {launcher!r}", field="distributed"
        )
    return launcher == "ray"


def ray_workers(distributed: dict[str, Any]) -> int:
    """Ray Train workers for the run: its `distributed.processes`, else as many as this worker's own setting.

    The cluster, not this worker, bounds it: `launch_ray` refuses a group larger than the cluster.
    """
    asked = distributed.get("processes", 0) or 0
    if isinstance(asked, bool) or not isinstance(asked, int) or asked < 0:
        raise InvalidConfigError(
            f"distributed.processes must be a whole number (0: the worker's setting), got {asked!r}",
            field="distributed",
        )
    return asked or training_processes({})[0]
