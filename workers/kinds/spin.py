"""SPIN runs: the run's model (p_0) and SFT dataset in; each iteration's pairs and model out, as they finish.

The pipeline reads the dataset into its own `prompts.jsonl` once, so a resume uses the same prompts
even if the library changed. iter0 is trained from the run's model, iter t+1 from iter t: the
registry shows the chain.
"""

from __future__ import annotations

from pathlib import Path

from pipelines.common.store import RunStore
from pipelines.spin import SpinConfig
from pipelines.spin.run import SpinInputs, run_spin
from webapp.library.models import Artifact
from webapp.registry.models import ModelEntry
from webapp.runs.models import PipelineRun
from workers.runner import PreparedJob


def prepare(run: PipelineRun, store: RunStore) -> PreparedJob:
    model = ModelEntry.objects.get(pk=run.config["model_id"])
    dataset = Artifact.objects.get(pk=run.config["dataset_artifact_id"])
    return PreparedJob(
        pipeline=run_spin,
        config=SpinConfig.from_dict(run.config["spin"]),
        inputs=SpinInputs(model=model.backend_spec(), sft_path=Path(dataset.jsonl_path)),
        models={"model": model},
        datasets={"dataset": dataset},
    )
