"""SPIN jobs: the run's model and SFT dataset -> iterations of generate, pair, train, each registered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings

from pipelines.common.progress import Progress
from pipelines.common.store import RunStore
from webapp.library.models import Artifact
from webapp.registry.models import ModelEntry
from webapp.registry.services import model_register_trained
from webapp.runs import services
from webapp.runs.models import PipelineRun
from workers.database import retry_through_outage
from workers.handlers import final_metrics


def handle(run: PipelineRun, progress: Progress) -> None:
    """Run or resume every iteration; each finished one gets its pairs artifact and registry entry at once.

    iter0 is trained from the run's model, iter t+1 from iter t: the registry shows the chain.
    """
    from pipelines.llm.factory import build_backend, model_directory
    from pipelines.spin import SpinConfig
    from pipelines.spin.run import PROMPTS_SUMMARY_FILE, run_spin

    config = SpinConfig.from_dict(run.config["spin"])
    base = ModelEntry.objects.get(pk=run.config["model_id"])
    dataset = Artifact.objects.get(pk=run.config["dataset_artifact_id"])
    store = RunStore(services.run_directory(run))
    progress.stage("load model", total=1)
    base_dir = model_directory(base.backend_spec(), settings.MODEL_CACHE_DIR)
    progress.advance(1)
    parents: dict[int, ModelEntry] = {-1: base}

    def backend_for(model_dir: Path):  # type: ignore[no-untyped-def]
        # Each iteration's generator is a new model: load it fresh and let the pipeline close it.
        spec = {"kind": "transformers", "source": "run", "path": str(model_dir), "dtype": base.dtype}
        return build_backend(spec, model_cache_dir=settings.MODEL_CACHE_DIR)

    def on_iteration(iteration: int, summary: dict[str, Any]) -> None:
        pairs = retry_through_outage(
            lambda: services.artifact_register(
                run=run,
                name=f"pairs-iter{iteration}",
                kind=Artifact.Kind.PREFERENCES,
                jsonl_path=Path(summary["pairs_path"]),
            )
        )
        entry = model_register_trained(
            run=run,
            parent=parents[iteration - 1],
            output_dir=summary["model_dir"],
            dataset=pairs,
            training_config={**config.training_for(iteration).to_dict(), "spin_iteration": iteration},
            metrics=final_metrics(summary["metrics"]),
            parameter_count=summary["parameter_count"],
            label=f"SPIN iter{iteration}",
        )
        parents[iteration] = entry
        values: dict[str, Any] = {"iterations": _iteration_rows(store, iteration, parents)}
        if store.exists(PROMPTS_SUMMARY_FILE):  # how the rows became prompts: turn mode, replies left out
            values["prompts"] = store.read_json(PROMPTS_SUMMARY_FILE)
        retry_through_outage(lambda: services.run_update_summary(run_id=run.pk, values=values))

    run_spin(config, base_dir, dataset.jsonl_path, store, progress, backend_for=backend_for, on_iteration=on_iteration)


def _iteration_rows(store: RunStore, last: int, entries: dict[int, ModelEntry]) -> list[dict[str, Any]]:
    """What the iteration table shows: one row per finished iteration, from the summaries on disk."""
    from pipelines.training.saving import finished_result

    rows = []
    for iteration in range(last + 1):
        summary = store.read_json(f"iter-{iteration}", "summary.json")
        metrics = summary["metrics"]
        # The iteration's training length report: its pairs against the limits, and those cut or dropped.
        training = finished_result(RunStore(store.path(f"iter-{iteration}", "train")))
        rows.append(
            {
                "iteration": iteration,
                "model": entries[iteration].name,
                "model_id": entries[iteration].pk,
                "pairs": summary["pairs"],
                "train_pairs": summary["train_pairs"],
                "learning_rate": summary["learning_rate"],
                "beta": summary["beta"],
                "steps": summary["steps"],
                "train_loss": metrics.get("train_loss"),
                "last_loss": metrics.get("loss"),
                "reward_accuracy": metrics.get("rewards/accuracies"),
                "reward_margin": metrics.get("rewards/margins"),
                "generation_seconds": summary["generation_seconds"],
                "seconds": summary["seconds"],
                "lengths": dict(training.lengths) if training is not None else {},
            }
        )
    return rows
