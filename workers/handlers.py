"""One handler per run kind: build the pipeline's config, backend and store from the run, call it."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings

from pipelines.common.progress import Progress
from pipelines.common.store import RunStore
from webapp.runs import services
from webapp.runs.models import Artifact, PipelineRun
from workers.database import retry_through_outage


def handle_generate(run: PipelineRun, progress: Progress) -> None:
    """Answer the run's prompt set with its model; the artifact is the generations dataset."""
    from pipelines.generate import GenerateConfig, run_generate
    from webapp.runs.kinds import write_prompt_snapshot

    config = GenerateConfig.from_dict(run.config["generate"])
    store = RunStore(services.run_directory(run))
    write_prompt_snapshot(run=run, store=store)
    backend = load_backend(run, progress)
    result = run_generate(config, backend, store, progress)
    retry_through_outage(
        lambda: services.artifact_register(
            run=run,
            name="generations",
            kind=Artifact.Kind.GENERATIONS,
            jsonl_path=result.jsonl_path,
            parquet_path=result.parquet_path,
        )
    )
    retry_through_outage(
        lambda: services.run_update_summary(
            run_id=run.pk,
            values={
                "rows": result.row_count,
                "completion_tokens": result.completion_tokens,
                "tokens_per_second": round(result.tokens_per_second, 2),
                "batches_generated_this_attempt": result.generated_this_attempt,
            },
        )
    )


def handle_train(run: PipelineRun, progress: Progress) -> None:
    """Fine-tune the run's model on its dataset; the result is a registry entry with its lineage.

    The run directory holds the checkpoints, so a resumed attempt continues from the newest one
    (the step count goes on) and a rerun of a finished run only re-registers its result.
    """
    from pipelines.llm.factory import model_directory
    from webapp.registry.models import ModelEntry
    from webapp.registry.services import model_register_trained

    config = run.config
    trainer = config["trainer"]
    model = ModelEntry.objects.get(pk=config["model_id"])
    dataset = Artifact.objects.get(pk=config["dataset_artifact_id"])
    store = RunStore(services.run_directory(run))
    progress.stage("load model", total=1)
    model_dir = model_directory(model.backend_spec(), settings.MODEL_CACHE_DIR)
    progress.advance(1)
    if trainer == "sft":
        from pipelines.training.config import SFTConfig
        from pipelines.training.sft import run_sft

        result = run_sft(SFTConfig.from_dict(config["config"]), model_dir, dataset.jsonl_path, store, progress)
    elif trainer == "preference":
        from pipelines.training.config import PreferenceConfig
        from pipelines.training.preference import run_preference

        reference_id = config.get("reference_model_id")
        reference_dir = (
            model_directory(ModelEntry.objects.get(pk=reference_id).backend_spec(), settings.MODEL_CACHE_DIR)
            if reference_id
            else None
        )
        preference_config = PreferenceConfig.from_dict(config["config"])
        result = run_preference(preference_config, model_dir, reference_dir, dataset.jsonl_path, store, progress)
    else:
        from pipelines.training.config import RewardConfig
        from pipelines.training.reward import run_reward

        result = run_reward(RewardConfig.from_dict(config["config"]), model_dir, dataset.jsonl_path, store, progress)

    entry = model_register_trained(
        run=run,
        parent=model,
        output_dir=result.output_dir,
        dataset=dataset,
        training_config=config["config"],
        metrics=final_metrics(result.metrics),
        parameter_count=result.parameter_count,
        task=ModelEntry.Task.REWARD if trainer == "reward" else ModelEntry.Task.GENERATION,
    )
    retry_through_outage(
        lambda: services.run_update_summary(
            run_id=run.pk,
            values={
                "steps": result.steps,
                "model": entry.name,
                "output_dir": result.output_dir,
                "adapter_dir": result.adapter_dir or "",
                "trainable_parameters": result.trainable_parameter_count,
                "effective_batch": config.get("effective_batch", ""),
                # Token lengths against the limits and the rows cut or dropped: nothing is cut unseen.
                **{f"lengths/{key}": value for key, value in result.lengths.items()},
                **final_metrics(result.metrics),
            },
        )
    )


def final_metrics(metrics: dict) -> dict:  # type: ignore[type-arg]
    """The figures worth keeping on a registry entry: losses, accuracies, margins, runtime; rounded."""
    kept = {}
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if any(word in name for word in ("loss", "accurac", "margin", "runtime")):
            kept[name] = round(float(value), 5)
    return kept


def load_backend(run: PipelineRun, progress: Progress):  # type: ignore[no-untyped-def]
    """Load (or reuse) the run's model; the load time and cache hit go on the run page."""
    from pipelines.llm.factory import get_backend
    from webapp.registry.models import ModelEntry

    entry = ModelEntry.objects.get(pk=run.config["model_id"])
    progress.stage("load model", total=1)
    started = time.monotonic()
    backend, was_cached = get_backend(entry.backend_spec(), model_cache_dir=settings.MODEL_CACHE_DIR)
    seconds = round(time.monotonic() - started, 2)
    progress.log(f"model {entry.name} {'reused from memory' if was_cached else 'loaded'} in {seconds}s")
    retry_through_outage(
        lambda: services.run_update_summary(
            run_id=run.pk, values={"model_load_seconds": seconds, "model_cache_hit": was_cached}
        )
    )
    progress.advance(1)
    return backend


Handler = Callable[[PipelineRun, Progress], None]

# Method handlers live in workers/methods/<method>.py as `handle(run, progress)`, imported when a job
# of their kind runs, so one method's imports never slow down (or break) another's jobs.
METHOD_HANDLERS: dict[str, str] = {
    PipelineRun.Kind.SPIN: "workers.methods.spin",
    PipelineRun.Kind.AUGCON: "workers.methods.augcon",
    PipelineRun.Kind.AFT_INFERENCE: "workers.methods.aft",
    PipelineRun.Kind.AFT_DATA: "workers.methods.aft",
    PipelineRun.Kind.ALMOST: "workers.methods.almost",
    PipelineRun.Kind.EVALUATION: "workers.methods.evaluation",
}

HANDLERS: dict[str, Handler] = {
    PipelineRun.Kind.GENERATE: handle_generate,
    PipelineRun.Kind.TRAIN_SFT: handle_train,
    PipelineRun.Kind.TRAIN_PREFERENCE: handle_train,
    PipelineRun.Kind.TRAIN_REWARD: handle_train,
}


def handler_for(kind: str) -> Handler:
    """The function that runs a job of `kind`."""
    if kind in HANDLERS:
        return HANDLERS[kind]
    import importlib

    return importlib.import_module(METHOD_HANDLERS[kind]).handle
