"""AugCon jobs: snapshot the chosen documents and the QA few-shot set, run the pipeline, register artifacts."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from django.conf import settings

from pipelines.common.progress import Progress
from pipelines.common.store import RunStore
from webapp.library.models import Artifact, Corpus, FewShotSet
from webapp.registry.models import ModelEntry
from webapp.runs import services
from webapp.runs.models import PipelineRun
from workers.database import retry_through_outage
from workers.handlers import load_backend


def handle(run: PipelineRun, progress: Progress) -> None:
    """Run or resume the run's AugCon pipeline; the three datasets become artifacts."""
    from pipelines.augcon import AugConConfig, run_augcon

    config = AugConConfig.from_dict(run.config["augcon"])
    store = RunStore(services.run_directory(run))
    write_snapshots(run=run, store=store)
    scorer_dir = scorer_model_directory(run)
    backend = load_backend(run, progress)
    result = run_augcon(config, backend, store, progress, scorer_model_dir=scorer_dir)
    for name, kind, jsonl_path, parquet_path in (
        ("queries", Artifact.Kind.QUERIES, result.queries_path, result.queries_parquet),
        ("scorer_pairs", Artifact.Kind.SCORER_PAIRS, result.pairs_path, result.pairs_parquet),
        ("sft", Artifact.Kind.SFT, result.sft_path, result.sft_parquet),
    ):
        retry_through_outage(
            functools.partial(
                services.artifact_register,
                run=run,
                name=name,
                kind=kind,
                jsonl_path=jsonl_path,
                parquet_path=parquet_path,
            )
        )
    retry_through_outage(lambda: services.run_update_summary(run_id=run.pk, values=result.summary))


def write_snapshots(*, run: PipelineRun, store: RunStore) -> None:
    """Copy the chosen documents and the few-shot set into the run directory once, so a resume sees
    exactly what the first attempt saw even if the library changes in between."""
    from pipelines.augcon.run import DOCUMENTS_FILE, FEW_SHOT_FILE

    if not store.exists(DOCUMENTS_FILE):
        corpus = Corpus.objects.get(pk=run.config["corpus_id"])
        documents = corpus.documents.filter(position__in=run.config["document_positions"]).order_by("position")
        store.write_jsonl(
            (
                {
                    "document_id": f"doc{document.position:05d}",
                    "position": document.position,
                    "title": document.title,
                    "source": document.source,
                    "text": document.text,
                }
                for document in documents.iterator()
            ),
            DOCUMENTS_FILE,
        )
    if not store.exists(FEW_SHOT_FILE):
        few_shot_set = FewShotSet.objects.get(pk=run.config["few_shot_set_id"])
        store.write_jsonl(
            (
                {
                    "context": example.context,
                    "question": example.question,
                    "answer": example.answer,
                    **_split_fields(example.meta),
                }
                for example in few_shot_set.examples.order_by("position")
            ),
            FEW_SHOT_FILE,
        )


def _split_fields(meta: dict[str, Any]) -> dict[str, str]:
    """A QA example may carry its own worked split (`context_1`, `context_2`) in its meta."""
    if isinstance(meta, dict) and meta.get("context_1") and meta.get("context_2"):
        return {"context_1": str(meta["context_1"]), "context_2": str(meta["context_2"])}
    return {}


def scorer_model_directory(run: PipelineRun) -> Path | None:
    """Local weights the scorer trains from: the scorer model, else the generator; None for endpoints."""
    from pipelines.llm.factory import model_directory

    entry = ModelEntry.objects.get(pk=run.config.get("scorer_model_id") or run.config["model_id"])
    if entry.backend == ModelEntry.Backend.OPENAI or entry.source == ModelEntry.Source.ENDPOINT:
        return None
    return model_directory(entry.backend_spec(), settings.MODEL_CACHE_DIR)
