"""RL runs (a policy against a reward model): the policy, the reward model and the prompts in, a registry entry out.

The prompts are a dataset of the library (used as it is) or a prompt set, which is copied into the
run directory once (`prompts.jsonl`) and registered as the run's artifact: every attempt of the run
trains on the same prompts even if the set changes, and the policy's `trained_on` names them. The
run directory holds the checkpoints, so a resumed attempt continues from the newest one.

RL trains in the worker's own process, on one device (the policy, its reference, the reward model
and PPO's value model together); a run asking for more processes or for the Ray launcher is refused.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from pipelines.common.prompts import write_prompts
from pipelines.common.store import RunStore
from pipelines.errors import InvalidConfigError
from pipelines.training.distributed.pipeline import run_training_on_processes
from pipelines.training.rl.config import RLConfig
from pipelines.training.run import REWARD_MODEL_ROLE, TrainingInputs
from webapp.library.models import Artifact, SeedPromptSet
from webapp.registry.models import ModelEntry
from webapp.runs import services
from webapp.runs.models import PipelineRun
from workers.database import retry_through_outage
from workers.runner import PreparedJob

from .training import training_processes

PROMPTS_ARTIFACT = "rl-prompts"
"""The name of the prompt set's snapshot among the run's artifacts."""


def prepare(run: PipelineRun, store: RunStore) -> PreparedJob:
    policy = ModelEntry.objects.get(pk=run.config["model_id"])
    reward_model = ModelEntry.objects.get(pk=run.config["reward_model_id"])
    distributed = run.config.get("distributed") or {}
    check_one_process(distributed)
    _processes, devices = training_processes({"processes": 1})
    prompts = prompts_artifact(run, store)
    return PreparedJob(
        pipeline=partial(run_training_on_processes, processes=1, devices=devices),
        config=RLConfig.from_dict(run.config["config"]),
        inputs=TrainingInputs(
            model=policy.backend_spec(),
            dataset_path=Path(prompts.jsonl_path),
            reward_model=reward_model.backend_spec(),
        ),
        models={"model": policy, REWARD_MODEL_ROLE: reward_model},
        datasets={"dataset": prompts},
        summary={"effective_batch": run.config.get("effective_batch", ""), "training_processes": 1},
    )


def check_one_process(distributed: dict[str, Any]) -> None:
    """RL runs in this worker's process: refuse the Ray launcher and more than one process by name."""
    if distributed.get("launcher") == "ray":
        raise InvalidConfigError(
            "distributed.launcher is ray, but RL trains in the worker's own process on one device (policy, "
            "reference, reward and value models together): remove distributed.launcher",
            field="distributed",
        )
    asked = distributed.get("processes", 1)
    if asked not in (0, 1):
        raise InvalidConfigError(
            f"distributed.processes is {asked!r}, but RL trains in one process on one device: set it to 1",
            field="distributed",
        )


def prompts_artifact(run: PipelineRun, store: RunStore) -> Artifact:
    """The dataset the run trains on: the chosen dataset, or the prompt set's snapshot registered once."""
    dataset_id = run.config.get("prompts_dataset_id")
    if dataset_id:
        return Artifact.objects.get(pk=dataset_id)
    prompt_set = SeedPromptSet.objects.get(pk=run.config["prompt_set_id"])
    path = write_prompts(  # written only if absent: a resumed attempt reads the prompts the first one did
        store,
        (
            {"prompt_id": f"p{prompt.position:06d}", "prompt": prompt.text}
            for prompt in prompt_set.prompts.order_by("position").iterator()
        ),
    )
    existing = Artifact.objects.filter(run=run, name=PROMPTS_ARTIFACT).first()
    if existing is not None:
        return existing
    return retry_through_outage(
        lambda: services.artifact_register(run=run, name=PROMPTS_ARTIFACT, kind=Artifact.Kind.QUERIES, jsonl_path=path)
    )
