"""RL runs (a policy against a reward model): the policy, the reward model and the prompts in, a registry entry out.

The prompts are a dataset of the library (used as it is) or a prompt set, which is copied into the
run directory once (`prompts.jsonl`) and registered as the run's artifact: every attempt of the run
trains on the same prompts even if the set changes, and the policy's `trained_on` names them. The
run directory holds the checkpoints, so a resumed attempt continues from the newest one.

PPO trains in the worker's own process, on one device (the policy, its reference, the reward model and
the value model together). RLOO and GRPO run as a process group on the devices the worker owns, like
the other trainers (`distributed.processes`; each rank holds its own copies); the Ray launcher is
refused for RL.
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
    config = RLConfig.from_dict(run.config["config"])
    distributed = run.config.get("distributed") or {}
    check_launcher(distributed, config)
    processes, devices = training_processes(distributed if config.algorithm != "ppo" else {"processes": 1})
    prompts = prompts_artifact(run, store)
    return PreparedJob(
        pipeline=partial(run_training_on_processes, processes=processes, devices=devices),
        config=config,
        inputs=TrainingInputs(
            model=policy.backend_spec(),
            dataset_path=Path(prompts.jsonl_path),
            reward_model=reward_model.backend_spec(),
        ),
        models={"model": policy, REWARD_MODEL_ROLE: reward_model},
        datasets={"dataset": prompts},
        summary={"effective_batch": run.config.get("effective_batch", ""), "training_processes": processes},
    )


def check_launcher(distributed: dict[str, Any], config: RLConfig) -> None:
    """RL runs on this worker's devices: refuse the Ray launcher, and (PPO) more than one process, by name."""
    if distributed.get("launcher") == "ray":
        raise InvalidConfigError(
            "distributed.launcher is ray, but RL trains on the worker's own devices (torchrun for RLOO and GRPO): "
            "remove distributed.launcher",
            field="distributed",
        )
    asked = distributed.get("processes", 1)
    if config.algorithm == "ppo" and asked not in (0, 1):
        raise InvalidConfigError(
            f"distributed.processes is {asked!r}, but PPO trains in one process on one device: set it to 1, "
            "or choose rloo or grpo, which run on many",
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
