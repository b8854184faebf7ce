"""The ALMoST job: resolve the rubric's models and demonstration sets, run the pipeline, register what it made."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings

from pipelines.common.progress import Progress
from pipelines.common.store import RunStore
from webapp.library.models import Artifact
from webapp.runs import services
from webapp.runs.models import PipelineRun
from workers.database import retry_through_outage


def handle(run: PipelineRun, progress: Progress) -> None:
    """pg -> rg -> cs -> reward model -> RMSP; artifacts, the reward model in the registry, and the summary.

    Every step resumes from the run directory, so a resumed attempt goes on where the last one stopped
    and a rerun of a finished run only registers its results again.
    """
    from pipelines.almost import AlmostConfig
    from pipelines.almost.run import INPUTS_FILE, parquet_path, run_almost
    from pipelines.llm.factory import backend_cache, get_backend, model_directory
    from webapp.registry.models import ModelEntry
    from webapp.registry.services import model_register_trained

    config = AlmostConfig.from_dict(run.config["almost"])
    store = RunStore(services.run_directory(run))
    inputs = None if store.exists(INPUTS_FILE) else build_inputs(run)
    entries = {label: ModelEntry.objects.get(pk=pk) for label, pk in run.config["model_ids"].items()}
    reward_base = ModelEntry.objects.get(pk=run.config["reward_model_id"])
    reward_base_dir = model_directory(reward_base.backend_spec(), settings.MODEL_CACHE_DIR)

    def backend_for(label: str):  # type: ignore[no-untyped-def]
        entry = entries[label]
        started = time.monotonic()
        backend, was_cached = get_backend(entry.backend_spec(), model_cache_dir=settings.MODEL_CACHE_DIR)
        how = "reused from memory" if was_cached else "loaded"
        progress.log(f"model {entry.name} ({label}) {how} in {time.monotonic() - started:.1f}s")
        return backend

    def on_step(name: str, numbers: dict[str, Any]) -> None:
        retry_through_outage(lambda: services.run_update_summary(run_id=run.pk, values={name: numbers}))

    result = run_almost(
        config,
        inputs,
        store,
        progress,
        backend_for=backend_for,
        reward_base_dir=reward_base_dir,
        release_backends=backend_cache.clear,  # the reward model trains and scores with the memory back
        on_step=on_step,
    )

    comparisons = retry_through_outage(
        lambda: services.artifact_register(
            run=run,
            name="comparisons",
            kind=Artifact.Kind.COMPARISONS,
            jsonl_path=result.comparisons_path,
            parquet_path=parquet_path(result.comparisons_path),
        )
    )
    retry_through_outage(
        lambda: services.artifact_register(
            run=run,
            name="comparisons-all",
            kind=Artifact.Kind.COMPARISONS,
            jsonl_path=result.comparisons_all_path,
            parquet_path=parquet_path(result.comparisons_all_path),
        )
    )
    if result.demonstrations_path is not None:
        retry_through_outage(
            lambda: services.artifact_register(
                run=run,
                name="rmsp-demonstrations",
                kind=Artifact.Kind.SFT,
                jsonl_path=result.demonstrations_path,
                parquet_path=parquet_path(result.demonstrations_path),
            )
        )
    metrics = {
        name: round(float(value), 5)
        for name, value in result.reward_metrics.items()
        if isinstance(value, int | float)
        and not isinstance(value, bool)
        and any(word in name for word in ("loss", "accurac", "margin", "runtime"))
    }
    reward_entry = model_register_trained(
        run=run,
        parent=reward_base,
        output_dir=result.reward_model_dir,
        dataset=comparisons,
        training_config=config.reward.to_dict(),
        metrics=metrics,
        parameter_count=result.reward_parameter_count,
        task=ModelEntry.Task.REWARD,
        label="ALMoST reward model",
    )
    retry_through_outage(
        lambda: services.run_update_summary(
            run_id=run.pk,
            values={
                "reward_model": reward_entry.name,
                "reward_model_id": reward_entry.pk,
                "prompts_generated": result.summary["pg"]["prompts"],
                "comparisons_kept": result.summary["cs"]["kept"],
                "rm_held_out_accuracy": result.summary["rm"]["held_out_accuracy"],
                # Token lengths against the limits and the pairs cut or dropped: nothing is cut unseen.
                "rm": {**result.summary["rm"], "lengths": reward_lengths(store)},
            },
        )
    )


def reward_lengths(store: RunStore) -> dict[str, Any]:
    """The reward model's training length report (rows measured, longest prompt and example against the
    limits, rows cut or dropped), from the result its training saved in the run directory; empty if none."""
    from pipelines.almost.run import REWARD_DIR
    from pipelines.training.saving import finished_result

    result = finished_result(RunStore(store.path(REWARD_DIR)))
    return dict(result.lengths) if result is not None else {}


def build_inputs(run: PipelineRun):  # type: ignore[no-untyped-def]
    """The seeds (with their instruction line) and the demonstration prompts, read from the library once."""
    from pipelines.almost import AlmostInputs, DemonstrationPrompt
    from webapp.library.models import FewShotSet, SeedPromptSet

    seed_set = SeedPromptSet.objects.get(pk=run.config["seed_prompt_set_id"])
    demonstrations = {}
    for label, pk in run.config.get("demonstration_set_ids", {}).items():
        few_shot_set = FewShotSet.objects.get(pk=pk)
        dialogues = list(few_shot_set.examples.order_by("position").values_list("context", flat=True))
        demonstrations[label] = DemonstrationPrompt(preamble=few_shot_set.preamble, dialogues=dialogues)
    return AlmostInputs(
        seed_prompts=list(seed_set.prompts.order_by("position").values_list("text", flat=True)),
        instruction=seed_set.instruction,
        demonstrations=demonstrations,
    )
