"""AugCon end to end, as the paper's algorithm reads: build_trees -> make_negatives -> train_scorer ->
score_queries -> rank_and_dedup -> bootstrap -> answer -> export.

Run directory (every file appears atomically; a file that exists is finished, so a rerun skips it):

    documents.jsonl             input snapshot: document_id, title, text
    fewshot.jsonl               input snapshot: the QA few-shot set (context, question, answer)
    chunks.jsonl                the root chunks with their quotas
    cst/<document_id>.json      a finished document's split trees (every node) and call counts
    negatives/<variant>.json    a weaker prompt's questions for sampled contexts, as scorer pairs
    scorer/                     the scorer's training store: checkpoints/, final/ (or skipped.json)
    scores/<document_id>.json   the scorer's score of every question of a document
    ranking.json                per question: rank in its chunk, kept, and why dropped
    demos.json                  the demonstrations answers are given, and how they were chosen
    answers/<document_id>.jsonl a finished document's answers
    queries.*, scorer_pairs.*, sft.* (+ sft_dataset/)   the artifacts (export.py); summary.json last

The names are `pipelines/augcon/files.py`'s; what the pages read back is `pipelines/augcon/inspect.py`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pipelines.augcon.answers import Demonstration, answer_questions, bootstrap_demonstrations
from pipelines.augcon.config import AugConConfig, AugConInputs
from pipelines.augcon.corpus import (
    RootChunk,
    check_documents,
    check_few_shot,
    cst_demonstrations,
    document_chunks,
)
from pipelines.augcon.cst import CallStats, ask_split, build_trees_together, cst_grammar
from pipelines.augcon.export import export, scorer_pairs
from pipelines.augcon.files import (
    CHUNKS_FILE,
    DEMOS_FILE,
    DOCUMENTS_FILE,
    FEW_SHOT_FILE,
    RANKING_FILE,
    SCORER_DIR,
    SCORER_SKIPPED_FILE,
    SUMMARY_FILE,
    answers_file,
    cst_file,
    negatives_file,
    scores_file,
)
from pipelines.augcon.prompts import NEGATIVE_VARIANTS
from pipelines.augcon.rouge import greedy_dedup
from pipelines.common.progress import Progress, StagePrefix
from pipelines.common.result import PipelineResult
from pipelines.common.store import RunStore
from pipelines.errors import InvalidInputError
from pipelines.llm.grammar import Grammar, structured_output_mode
from pipelines.llm.loader import BackendLoader, BackendSpec
from pipelines.llm.types import Completion, Conversation, LLMBackend, SamplingParams

STAGES = ("questions", "negatives", "scorer", "score", "rank", "demonstrations", "answers", "export")


class OnDemandGenerator:
    """The generator, loaded on its first call: a resumed run whose model calls are all on disk loads none.

    `release` hands the memory back before the scorer trains; the next call loads it again.
    """

    def __init__(self, backends: BackendLoader, spec: BackendSpec) -> None:
        self.backends = backends
        self.spec = spec
        self.backend: LLMBackend | None = None

    @property
    def name(self) -> str:
        return self._loaded().name

    def _loaded(self) -> LLMBackend:
        if self.backend is None:
            self.backend = self.backends.load(self.spec)
        return self.backend

    def chat(self, conversations: Sequence[Conversation], params: SamplingParams) -> list[list[Completion]]:
        return self._loaded().chat(conversations, params)

    def complete(self, prompts: Sequence[str], params: SamplingParams) -> list[list[Completion]]:
        return self._loaded().complete(prompts, params)

    def structured_output_mode(self, grammar: Grammar | None) -> str:
        return structured_output_mode(self._loaded(), grammar)

    def close(self) -> None:
        """The loader owns the backend; nothing to close here."""

    def release(self) -> None:
        if self.backend is not None:
            self.backends.release_all()
            self.backend = None


def run_augcon(
    config: AugConConfig, inputs: AugConInputs, backends: BackendLoader, store: RunStore, progress: Progress
) -> PipelineResult:
    """Run (or resume) every stage over `documents.jsonl` and `fewshot.jsonl` in the store.

    The scorer trains from `inputs.scorer`'s local weights (the generator's, in the paper); without
    one it is skipped and the questions keep their generation order. The three datasets are the
    result's artifacts; the summary is also written to `summary.json`, last.
    """
    started = time.monotonic()
    backend = OnDemandGenerator(backends, inputs.generator)
    scorer_model_dir = backends.model_directory(inputs.scorer) if inputs.scorer is not None else None
    documents = check_documents(store.read_jsonl(DOCUMENTS_FILE), DOCUMENTS_FILE)
    examples = check_few_shot(store.read_jsonl(FEW_SHOT_FILE), FEW_SHOT_FILE)
    chunks = _chunks(config, documents, store)
    demonstrations = cst_demonstrations(examples, config.cst_demonstrations)
    if config.cst_demonstrations and not demonstrations:
        raise InvalidInputError(
            f"{FEW_SHOT_FILE}: no example has a context of two or more sentences to show as a split; "
            "add one, or give examples `context_1` and `context_2` fields"
        )
    chunks_by_document = {document["document_id"]: [] for document in documents}
    for chunk in chunks:
        chunks_by_document[chunk.document_id].append(chunk)

    build_trees(config, backend, store, progress, chunks_by_document, demonstrations)
    make_negatives(config, backend, store, progress, chunks_by_document, demonstrations)
    scorer_result = fit_scorer(config, store, progress, scorer_model_dir, before_training=backend.release)
    score_queries(config, store, progress, chunks_by_document, scorer_model_dir, scorer_result)
    ranking = rank_and_dedup(config, store, progress, chunks_by_document)
    demos = bootstrap(config, backend, store, progress, examples)
    answer(config, backend, store, progress, chunks_by_document, ranking, demos)
    exported = export(store, progress, documents, chunks_by_document, ranking)
    summary = {**exported.summary, "seconds_this_attempt": round(time.monotonic() - started, 2)}
    store.write_json(summary, SUMMARY_FILE)
    return PipelineResult(artifacts=exported.artifacts, summary=summary)


def _chunks(config: AugConConfig, documents: list[dict[str, Any]], store: RunStore) -> list[RootChunk]:
    if not store.exists(CHUNKS_FILE):
        chunks = [chunk for document in documents for chunk in document_chunks(document, config)]
        if not chunks:
            # Nothing to ask questions about: say why instead of "succeeding" with an empty dataset.
            raise InvalidInputError(
                f"none of the {len(documents)} documents has a paragraph longer than "
                f"{config.paragraph_characters} characters (min_paragraph_length x length_scale), so there is "
                "nothing to build a Context-Split-Tree from; lower min_paragraph_length or length_scale, or pick "
                "longer documents"
            )
        store.write_jsonl((chunk.to_dict() for chunk in chunks), CHUNKS_FILE)
    return [RootChunk.from_dict(row) for row in store.read_jsonl(CHUNKS_FILE)]


# --- 1. Context-Split-Tree --------------------------------------------------------------------


def build_trees(
    config: AugConConfig,
    backend: LLMBackend,
    store: RunStore,
    progress: Progress,
    chunks_by_document: dict[str, list[RootChunk]],
    demonstrations: list[Any],
) -> None:
    """Grow each document's trees, a group of documents per batched call; one file per document.

    A group whose every file exists is done. A group cut short (a kill between its files) is grown
    again whole, so its seeds and batches are those of the first attempt, and only its missing files
    are written.
    """
    document_ids = list(chunks_by_document)
    finished = {document_id for document_id in document_ids if store.exists(cst_file(document_id))}
    progress.stage("questions", total=len(document_ids), done=len(finished))
    if finished:
        progress.log(f"questions: {len(finished)} of {len(document_ids)} documents already finished")
    if len(finished) < len(document_ids):
        grammar = cst_grammar(config) if config.constrained_output else None
        progress.log(f"questions: structured output: {structured_output_mode(backend, grammar)}")
    for group in document_groups(chunks_by_document, config.batch_size):
        if all(document_id in finished for document_id in group):
            continue
        progress.check_cancelled()
        started = time.monotonic()
        chunks = [chunk for document_id in group for chunk in chunks_by_document[document_id]]
        grown = build_trees_together(backend, chunks, demonstrations, config, progress) if chunks else {}
        seconds = round(time.monotonic() - started, 2)
        for document_id in group:
            if document_id in finished:
                continue
            trees = grown.get(document_id)
            record = {
                "document_id": document_id,
                "nodes": [node.to_dict() for node in trees.nodes] if trees else [],
                "stats": trees.stats.to_dict() if trees else CallStats().to_dict(),
                "rounds_by_chunk": trees.rounds_by_chunk if trees else {},
                "questions_by_chunk": trees.questions_by_chunk if trees else {},
                "seconds": seconds,
                "grown_with": group,
            }
            store.write_json(record, cst_file(document_id))
            finished.add(document_id)
            progress.advance(1)
        totals = CallStats()
        for trees in grown.values():
            totals.add(trees.stats)
        questions = sum(sum(trees.questions_by_chunk.values()) for trees in grown.values())
        progress.metrics({"questions": questions, "cst_calls": totals.calls, "parse_failures": totals.parse_failures})
        progress.log(f"questions: {len(group)} documents grown together in {seconds:.0f}s, {totals.calls} calls")


def document_groups(chunks_by_document: dict[str, list[RootChunk]], batch_size: int) -> list[list[str]]:
    """Consecutive documents whose root chunks together fill one batch (at least one document a group).

    Fixed by the document order and the chunks alone, so a resumed run forms the same groups.
    """
    groups: list[list[str]] = []
    current: list[str] = []
    filled = 0
    for document_id, chunks in chunks_by_document.items():
        if current and filled + len(chunks) > batch_size:
            groups.append(current)
            current, filled = [], 0
        current.append(document_id)
        filled += len(chunks)
    if current:
        groups.append(current)
    return groups


def _trees(store: RunStore, document_id: str) -> dict[str, Any]:
    return store.read_json(cst_file(document_id))


def recorded_queries(store: RunStore, chunks_by_document: dict[str, list[RootChunk]]) -> list[dict[str, Any]]:
    """Every (context, question) the trees recorded, in generation order."""
    return [
        node
        for document_id in chunks_by_document
        for node in _trees(store, document_id)["nodes"]
        if node["status"] == "question"
    ]


# --- 2. negatives for the scorer --------------------------------------------------------------


def make_negatives(
    config: AugConConfig,
    backend: LLMBackend,
    store: RunStore,
    progress: Progress,
    chunks_by_document: dict[str, list[RootChunk]],
    demonstrations: list[Any],
) -> None:
    """For each weaker prompt, re-ask a disjoint sample of contexts; its question is the negative."""
    positives = recorded_queries(store, chunks_by_document)
    random.Random(config.seed).shuffle(positives)
    count = min(config.negatives_per_variant, len(positives) // 3)
    finished = [v for v in NEGATIVE_VARIANTS if store.exists(negatives_file(v.name))]
    progress.stage("negatives", total=len(NEGATIVE_VARIANTS), done=len(finished))
    for number, variant in enumerate(NEGATIVE_VARIANTS):
        if variant in finished:
            continue
        progress.check_cancelled()
        sample = positives[number * count : (number + 1) * count]
        stats = CallStats()
        outcomes = ask_split(
            backend,
            [node["context"] for node in sample],
            demonstrations,
            config,
            stats,
            variant=variant,
            seed_parts=("negatives", variant.name),
        )
        pairs = []
        for node, outcome in zip(sample, outcomes, strict=True):
            question = outcome.parse.question
            if outcome.parse.ok and len(question) >= config.min_question_length:
                pairs.append(
                    {
                        "pair_id": f"{variant.name}-{node['node_id']}",
                        "variant": variant.name,
                        "node_id": node["node_id"],
                        "context": node["context"],
                        "pos_query": node["question"],
                        "neg_query": question,
                    }
                )
        store.write_json(
            {"variant": variant.name, "asked": len(sample), "pairs": pairs, "stats": stats.to_dict()},
            negatives_file(variant.name),
        )
        progress.advance(1)


# --- 3. the contrastive scorer ----------------------------------------------------------------


def fit_scorer(
    config: AugConConfig,
    store: RunStore,
    progress: Progress,
    scorer_model_dir: Path | None,
    *,
    before_training: Callable[[], None] = lambda: None,
) -> Any | None:
    """Train the scorer (resumable), or record why it was skipped; returns the TrainingResult or None.

    `before_training` frees the generator's memory for the scorer (it is loaded again for the answers).
    """
    scorer_store = RunStore(store.path(SCORER_DIR))
    if scorer_store.exists(SCORER_SKIPPED_FILE):
        return None
    pairs = scorer_pairs(store)
    reason = ""
    if scorer_model_dir is None:
        reason = "no local scorer model was given"
    elif len(pairs) < config.min_scorer_pairs:
        reason = f"only {len(pairs)} scorer pairs (min_scorer_pairs is {config.min_scorer_pairs})"
    if reason:
        progress.log(f"scorer skipped: {reason}; questions keep their generation order")
        scorer_store.write_json({"reason": reason, "pairs": len(pairs)}, SCORER_SKIPPED_FILE)
        return None
    from pipelines.augcon.scorer import train_scorer

    before_training()
    return train_scorer(config.scorer, scorer_model_dir, pairs, scorer_store, StagePrefix(progress, "scorer · "))


def score_queries(
    config: AugConConfig,
    store: RunStore,
    progress: Progress,
    chunks_by_document: dict[str, list[RootChunk]],
    scorer_model_dir: Path | None,
    scorer_result: Any | None,
) -> None:
    """Score every recorded question with the trained scorer; one file per document."""
    document_ids = list(chunks_by_document)
    finished = [document_id for document_id in document_ids if store.exists(scores_file(document_id))]
    progress.stage("score", total=len(document_ids), done=len(finished))
    scorer = None
    try:
        for document_id in document_ids:
            if document_id in finished:
                continue
            progress.check_cancelled()
            queries = [node for node in _trees(store, document_id)["nodes"] if node["status"] == "question"]
            scores: dict[str, float | None] = {node["node_id"]: None for node in queries}
            if scorer_result is not None and queries:
                if scorer is None:
                    from pipelines.augcon.scorer import QueryScorer

                    scorer = QueryScorer(
                        scorer_model_dir,  # type: ignore[arg-type]
                        scorer_result,
                        batch_size=config.scorer_batch_size,
                        max_length=config.scorer.max_length,
                    )
                values = scorer.score([node["context"] for node in queries], [node["question"] for node in queries])
                scores = {node["node_id"]: round(value, 6) for node, value in zip(queries, values, strict=True)}
            store.write_json(scores, scores_file(document_id))
            progress.advance(1)
    finally:
        if scorer is not None:
            scorer.close()


# --- 4. rank and dedup ------------------------------------------------------------------------


def rank_chunk(
    queries: list[dict[str, Any]],
    scores: dict[str, float | None],
    *,
    threshold: float,
    quota: int,
    tokenizer: str = "words",
) -> dict[str, dict[str, Any]]:
    """Best score first (generation order breaks ties and stands in when unscored); greedy ROUGE-L dedup."""
    order = sorted(
        range(len(queries)),
        key=lambda index: (-(scores.get(queries[index]["node_id"]) or 0.0), index),
    )
    ranked = [queries[index] for index in order]
    decisions = greedy_dedup(
        [query["question"] for query in ranked], threshold=threshold, quota=quota, tokenizer=tokenizer
    )
    result = {}
    for rank, (query, decision) in enumerate(zip(ranked, decisions, strict=True), start=1):
        result[query["node_id"]] = {
            "score": scores.get(query["node_id"]),
            "rank": rank,
            "kept": decision.kept,
            "drop_reason": decision.reason,
            "duplicate_of": ranked[decision.duplicate_of]["node_id"] if decision.duplicate_of is not None else None,
            "rouge": decision.rouge,
        }
    return result


def rank_and_dedup(
    config: AugConConfig, store: RunStore, progress: Progress, chunks_by_document: dict[str, list[RootChunk]]
) -> dict[str, dict[str, Any]]:
    """Per root chunk: rank, drop near duplicates, keep at most gen_count questions."""
    progress.stage("rank", total=1)
    if not store.exists(RANKING_FILE):
        ranking: dict[str, dict[str, Any]] = {}
        for document_id, chunks in chunks_by_document.items():
            nodes = [node for node in _trees(store, document_id)["nodes"] if node["status"] == "question"]
            scores = store.read_json(scores_file(document_id))
            for chunk in chunks:
                queries = [node for node in nodes if node["chunk_id"] == chunk.chunk_id]
                ranking.update(
                    rank_chunk(
                        queries,
                        scores,
                        threshold=config.rouge_threshold,
                        quota=chunk.gen_count,
                        tokenizer=config.rouge_tokenizer,
                    )
                )
        store.write_json(ranking, RANKING_FILE)
    progress.advance(1)
    return store.read_json(RANKING_FILE)


# --- 5. answers -------------------------------------------------------------------------------


def bootstrap(
    config: AugConConfig, backend: LLMBackend, store: RunStore, progress: Progress, examples: list[dict[str, Any]]
) -> list[Demonstration]:
    """Choose the demonstrations once (self-improvement) and keep them for every question."""
    progress.stage("demonstrations", total=1)
    if not store.exists(DEMOS_FILE):
        progress.check_cancelled()
        stats = CallStats()
        chosen = bootstrap_demonstrations(backend, examples, config, stats)
        store.write_json({**chosen, "stats": stats.to_dict()}, DEMOS_FILE)
    progress.advance(1)
    return [Demonstration(**demo) for demo in store.read_json(DEMOS_FILE)["demonstrations"]]


def answer(
    config: AugConConfig,
    backend: LLMBackend,
    store: RunStore,
    progress: Progress,
    chunks_by_document: dict[str, list[RootChunk]],
    ranking: dict[str, dict[str, Any]],
    demos: list[Demonstration],
) -> None:
    """Answer every kept question with the principles and the demonstrations; one file per document."""
    document_ids = list(chunks_by_document)
    finished = [document_id for document_id in document_ids if store.exists(answers_file(document_id))]
    progress.stage("answers", total=len(document_ids), done=len(finished))
    for document_id in document_ids:
        if document_id in finished:
            continue
        progress.check_cancelled()
        kept = [
            node
            for node in _trees(store, document_id)["nodes"]
            if node["status"] == "question" and ranking.get(node["node_id"], {}).get("kept")
        ]
        stats = CallStats()
        answers = answer_questions(
            backend,
            [(node["context"], node["question"]) for node in kept],
            demos,
            config,
            stats,
            seed_parts=("answers", document_id),
        )
        rows = [
            {"node_id": node["node_id"], "reasoning": parsed.reasoning, "answer": parsed.answer}
            for node, parsed in zip(kept, answers, strict=True)
        ]
        store.write_jsonl([{"stats": stats.to_dict()}, *rows], answers_file(document_id))
        progress.advance(1)
