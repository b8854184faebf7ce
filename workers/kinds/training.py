"""Training runs (SFT, preference, reward): the run's model and dataset in, a registry entry out.

The run directory holds the checkpoints, so a resumed attempt continues from the newest one (the
step count goes on) and a rerun of a finished run only registers its result again.
"""

from __future__ import annotations

from pathlib import Path

from pipelines.common.store import RunStore
from pipelines.training import PreferenceConfig, RewardConfig, SFTConfig, TrainingInputs, run_training
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
    return PreparedJob(
        pipeline=run_training,
        config=CONFIG_CLASSES[run.config["trainer"]].from_dict(run.config["config"]),
        inputs=TrainingInputs(
            model=model.backend_spec(),
            dataset_path=Path(dataset.jsonl_path),
            reference_model=reference.backend_spec() if reference is not None else None,
        ),
        models={"model": model},
        datasets={"dataset": dataset},
        summary={"effective_batch": run.config.get("effective_batch", "")},
    )
