"""AugCon runs: snapshot the chosen documents and the QA few-shot set once; the pipeline makes three datasets.

The scorer trains from local weights: the scorer model's, else the generator's. An endpoint has
none, so the run then skips the scorer (the pipeline records why) instead of failing.
"""

from __future__ import annotations

from pipelines.augcon import AugConConfig, AugConInputs, run_augcon
from pipelines.augcon.files import DOCUMENTS_FILE, FEW_SHOT_FILE
from pipelines.common.store import RunStore
from webapp.augcon.services import few_shot_examples
from webapp.library.models import Corpus, FewShotSet
from webapp.registry.models import ModelEntry
from webapp.runs.models import PipelineRun
from workers.runner import PreparedJob


def prepare(run: PipelineRun, store: RunStore) -> PreparedJob:
    snapshot_inputs(run=run, store=store)
    model = ModelEntry.objects.get(pk=run.config["model_id"])
    scorer_id = run.config.get("scorer_model_id")
    scorer = ModelEntry.objects.get(pk=scorer_id) if scorer_id else model
    return PreparedJob(
        pipeline=run_augcon,
        config=AugConConfig.from_dict(run.config["augcon"]),
        inputs=AugConInputs(
            generator=model.backend_spec(),
            scorer=scorer.backend_spec() if has_local_weights(scorer) else None,
        ),
        models={"model": model},
    )


def has_local_weights(entry: ModelEntry) -> bool:
    return not (entry.backend == ModelEntry.Backend.OPENAI or entry.source == ModelEntry.Source.ENDPOINT)


def snapshot_inputs(*, run: PipelineRun, store: RunStore) -> None:
    """Copy the chosen documents and the few-shot set into the run directory once, so a resume sees
    exactly what the first attempt saw even if the library changes in between."""
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
        store.write_jsonl(few_shot_examples(FewShotSet.objects.get(pk=run.config["few_shot_set_id"])), FEW_SHOT_FILE)
