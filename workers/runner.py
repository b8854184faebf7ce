"""The one worker every run kind goes through: prepare the kind's inputs, run its pipeline, register the outputs.

What differs by kind lives in `workers/kinds/<kind>.py` as `prepare(run, store) -> PreparedJob`:
which config class, how the inputs are snapshotted into the run directory, which registry entries
and datasets the outputs' lineage may name. Everything else is here, once: the run directory, the
model loader, the call, and registering the `PipelineResult` (artifacts, then registry entries,
then the summary) both as the pipeline publishes outputs and when it returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.utils.module_loading import import_string

from pipelines.common.result import ArtifactOutput, ModelOutput, PipelineResult
from pipelines.common.store import RunStore
from pipelines.errors import RunCancelled
from pipelines.llm.loader import BackendLoader
from webapp.library.models import Artifact
from webapp.registry.models import ModelEntry
from webapp.registry.services import model_register_trained
from webapp.runs import services
from webapp.runs.models import PipelineRun
from webapp.runs.registry import run_kind
from workers.backends import WorkerBackends
from workers.database import retry_through_outage
from workers.progress import DbProgress

Pipeline = Callable[[Any, Any, BackendLoader, RunStore, Any], PipelineResult]


@dataclass
class Registered:
    """What the run registered so far: artifacts by name, registry entries by output key."""

    artifacts: dict[str, Artifact] = field(default_factory=dict)
    models: dict[str, ModelEntry] = field(default_factory=dict)


@dataclass
class PreparedJob:
    """One kind's job, ready to run.

    - `pipeline(config, inputs, backends, store, progress) -> PipelineResult` is the method's entry point.
    - `models` / `datasets`: the run's inputs that a `ModelOutput` may name as its `parent` /
      `dataset` ("model" and "dataset" are the defaults).
    - `after(result, registered)`: what the kind records beyond artifacts, models and summary
      (an evaluation's results); runs after everything was registered.
    - `on_stopped(status)`: the kind's own bookkeeping when the run fails or is cancelled.
    - `summary`: figures the kind knows before the pipeline starts (the effective batch the form chose).
    """

    pipeline: Pipeline
    config: Any
    inputs: Any
    models: dict[str, ModelEntry] = field(default_factory=dict)
    datasets: dict[str, Artifact] = field(default_factory=dict)
    after: Callable[[PipelineResult, Registered], None] | None = None
    on_stopped: Callable[[str], None] | None = None
    summary: dict[str, Any] = field(default_factory=dict)


def run_job(run: PipelineRun, progress: DbProgress) -> None:
    """Run (or resume) the run's pipeline through its kind's `prepare`; register what it made."""
    store = RunStore(services.run_directory(run))
    prepare = import_string(run_kind(run.kind).job)
    job: PreparedJob = prepare(run, store)
    registered = Registered(models=dict(job.models))
    registrar = OutputRegistrar(run, job, registered)
    progress.publisher = registrar.register
    if job.summary:
        retry_through_outage(lambda: services.run_update_summary(run_id=run.pk, values=job.summary))
    try:
        result = job.pipeline(job.config, job.inputs, WorkerBackends(run.pk, progress), store, progress)
    except services.AttemptFenced:
        raise  # a superseded attempt writes nothing, not even the kind's own status
    except BaseException as error:
        if job.on_stopped is not None:
            job.on_stopped("cancelled" if isinstance(error, RunCancelled) else "failed")
        raise
    registrar.register(result)
    if job.after is not None:
        job.after(result, registered)


class OutputRegistrar:
    """Registers a `PipelineResult`'s outputs; the same output again updates its row (resumes, reruns)."""

    def __init__(self, run: PipelineRun, job: PreparedJob, registered: Registered) -> None:
        self.run = run
        self.job = job
        self.registered = registered

    def register(self, result: PipelineResult) -> None:
        for output in result.artifacts:
            if self._already_registered_artifact(output):
                continue  # published before the end and listed again in the final result: counted once
            self.registered.artifacts[output.name] = retry_through_outage(
                lambda output=output: services.artifact_register(
                    run=self.run,
                    name=output.name,
                    kind=output.kind,
                    jsonl_path=output.jsonl_path,
                    parquet_path=output.parquet_path,
                )
            )
        model_summary: dict[str, Any] = {}
        for output in result.models:
            if self._already_registered_model(output):
                continue
            parent = self.registered.models.get(output.parent)
            if parent is None:
                raise KeyError(
                    f"model output {output.key!r} names parent {output.parent!r}, which is neither an input model "
                    f"of the run ({', '.join(self.job.models)}) nor an output registered before it"
                )
            dataset = self.registered.artifacts.get(output.dataset) or self.job.datasets.get(output.dataset)
            reward_model = self.registered.models.get(output.reward_model) if output.reward_model else None
            if output.reward_model and reward_model is None:
                raise KeyError(
                    f"model output {output.key!r} names reward model {output.reward_model!r}, which is neither an "
                    "input model of the run nor an output registered before it"
                )
            entry = retry_through_outage(
                lambda output=output, parent=parent, dataset=dataset, reward_model=reward_model: model_register_trained(
                    run=self.run,
                    parent=parent,
                    output_dir=str(output.output_dir),
                    dataset=dataset,
                    training_config=output.training_config,
                    metrics=output.metrics,
                    parameter_count=output.parameter_count,
                    task=output.task,
                    label=output.label,
                    reward_model=reward_model,
                )
            )
            self.registered.models[output.key] = entry
            model_summary[output.key] = entry.name
            model_summary[f"{output.key}_id"] = entry.pk
        values = {**result.summary, **model_summary}
        if values:
            retry_through_outage(lambda: services.run_update_summary(run_id=self.run.pk, values=values))

    def _already_registered_artifact(self, output: ArtifactOutput) -> bool:
        """This attempt registered this very file under this name already (a finished file never changes)."""
        artifact = self.registered.artifacts.get(output.name)
        return artifact is not None and artifact.jsonl_path == str(output.jsonl_path)

    def _already_registered_model(self, output: ModelOutput) -> bool:
        """This attempt registered this very checkpoint under this key already."""
        entry = self.registered.models.get(output.key)
        return entry is not None and entry.produced_by_run_id == self.run.pk and entry.path == str(output.output_dir)
