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
    queries.*, scorer_pairs.*, sft.* (+ sft_dataset/)   the artifacts; summary.json last
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.augcon.answers import Demonstration, answer_questions, bootstrap_demonstrations
from pipelines.augcon.config import AugConConfig
from pipelines.augcon.corpus import (
    RootChunk,
    check_documents,
    check_few_shot,
    cst_demonstrations,
    document_chunks,
)
from pipelines.augcon.cst import CallStats, ask_split, build_trees_together
from pipelines.augcon.prompts import NEGATIVE_VARIANTS
from pipelines.augcon.rouge import greedy_dedup
from pipelines.common.progress import Progress, StagePrefix
from pipelines.common.store import RunStore
from pipelines.common.tables import write_table
from pipelines.errors import InvalidInputError
from pipelines.llm.types import LLMBackend

DOCUMENTS_FILE = "documents.jsonl"
FEW_SHOT_FILE = "fewshot.jsonl"
CHUNKS_FILE = "chunks.jsonl"
RANKING_FILE = "ranking.json"
DEMOS_FILE = "demos.json"
SUMMARY_FILE = "summary.json"
SCORER_DIR = "scorer"
SCORER_SKIPPED_FILE = "skipped.json"
QUERIES_STEM = "queries"
PAIRS_STEM = "scorer_pairs"
SFT_STEM = "sft"
SFT_DATASET_DIR = "sft_dataset"
STAGES = ("questions", "negatives", "scorer", "score", "rank", "demonstrations", "answers", "export")


def cst_file(document_id: str) -> str:
    return f"cst/{document_id}.json"


def scores_file(document_id: str) -> str:
    return f"scores/{document_id}.json"


def answers_file(document_id: str) -> str:
    return f"answers/{document_id}.jsonl"


def negatives_file(variant: str) -> str:
    return f"negatives/{variant}.json"


@dataclass
class AugConResult:
    queries_path: Path
    queries_parquet: Path
    pairs_path: Path
    pairs_parquet: Path
    sft_path: Path
    sft_parquet: Path
    sft_dataset_dir: Path | None
    summary: dict[str, Any]


def run_augcon(
    config: AugConConfig,
    backend: LLMBackend,
    store: RunStore,
    progress: Progress,
    *,
    scorer_model_dir: str | Path | None,
) -> AugConResult:
    """Run (or resume) every stage over `documents.jsonl` and `fewshot.jsonl` in the store.

    `scorer_model_dir` holds the local weights the scorer is trained from (the generator's, in the
    paper); None skips the scorer and keeps the generation order.
    """
    started = time.monotonic()
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
    scorer_result = fit_scorer(config, store, progress, scorer_model_dir)
    score_queries(config, store, progress, chunks_by_document, scorer_model_dir, scorer_result)
    ranking = rank_and_dedup(config, store, progress, chunks_by_document)
    demos = bootstrap(config, backend, store, progress, examples)
    answer(config, backend, store, progress, chunks_by_document, ranking, demos)
    result = export(config, store, progress, documents, chunks_by_document, ranking)
    result.summary["seconds_this_attempt"] = round(time.monotonic() - started, 2)
    store.write_json(result.summary, SUMMARY_FILE)
    return result


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


def scorer_pairs(store: RunStore) -> list[dict[str, Any]]:
    return [pair for variant in NEGATIVE_VARIANTS for pair in store.read_json(negatives_file(variant.name))["pairs"]]


# --- 3. the contrastive scorer ----------------------------------------------------------------


def fit_scorer(
    config: AugConConfig, store: RunStore, progress: Progress, scorer_model_dir: str | Path | None
) -> Any | None:
    """Train the scorer (resumable), or record why it was skipped; returns the TrainingResult or None."""
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

    return train_scorer(config.scorer, scorer_model_dir, pairs, scorer_store, StagePrefix(progress, "scorer · "))


def scorer_skipped_reason(store: RunStore) -> str:
    if store.exists(SCORER_DIR, SCORER_SKIPPED_FILE):
        return store.read_json(SCORER_DIR, SCORER_SKIPPED_FILE)["reason"]
    return ""


def score_queries(
    config: AugConConfig,
    store: RunStore,
    progress: Progress,
    chunks_by_document: dict[str, list[RootChunk]],
    scorer_model_dir: str | Path | None,
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


def _answers(store: RunStore, document_id: str) -> tuple[dict[str, int], list[dict[str, Any]]]:
    rows = list(store.read_jsonl(answers_file(document_id)))
    return rows[0]["stats"], rows[1:]


# --- 6. export --------------------------------------------------------------------------------

QUERY_COLUMNS = (
    "query_id",
    "document_id",
    "title",
    "chunk_id",
    "round",
    "depth",
    "parent_id",
    "context",
    "question",
    "score",
    "rank",
    "kept",
    "drop_reason",
    "duplicate_of",
)
PAIR_COLUMNS = ("pair_id", "variant", "node_id", "context", "pos_query", "neg_query")
SFT_COLUMNS = (
    "context",
    "question",
    "answer",
    "reasoning",
    "query_id",
    "document_id",
    "title",
    "chunk_id",
    "depth",
    "score",
)


def export(
    config: AugConConfig,
    store: RunStore,
    progress: Progress,
    documents: list[dict[str, Any]],
    chunks_by_document: dict[str, list[RootChunk]],
    ranking: dict[str, dict[str, Any]],
) -> AugConResult:
    """Write the three artifacts (JSONL + parquet; the SFT set also as a `datasets` directory) and the summary."""
    progress.stage("export", total=3)
    titles = {document["document_id"]: document.get("title") or "" for document in documents}
    cst_stats, negative_stats, answer_stats = CallStats(), CallStats(), CallStats()
    query_rows: list[dict[str, Any]] = []
    sft_rows: list[dict[str, Any]] = []
    statuses: dict[str, int] = {}
    empty_answers = 0
    for document_id in chunks_by_document:
        trees = _trees(store, document_id)
        cst_stats.add(trees["stats"])
        by_id = {node["node_id"]: node for node in trees["nodes"]}
        for node in trees["nodes"]:
            statuses[node["status"]] = statuses.get(node["status"], 0) + 1
            if node["status"] not in ("question", "short_question"):
                continue
            decision = ranking.get(node["node_id"], {})
            query_rows.append(
                {
                    "query_id": node["node_id"],
                    "document_id": document_id,
                    "title": titles.get(document_id, ""),
                    "chunk_id": node["chunk_id"],
                    "round": node["round"],
                    "depth": node["depth"],
                    "parent_id": node["parent_id"],
                    "context": node["context"],
                    "question": node["question"],
                    "score": decision.get("score"),
                    "rank": decision.get("rank"),
                    "kept": bool(decision.get("kept")),
                    "drop_reason": decision.get("drop_reason", node["reason"]),
                    "duplicate_of": decision.get("duplicate_of"),
                }
            )
        stats, answers = _answers(store, document_id)
        answer_stats.add(stats)
        for row in answers:
            if not row["answer"]:
                empty_answers += 1
                continue
            node = by_id[row["node_id"]]
            sft_rows.append(
                {
                    "context": node["context"],
                    "question": node["question"],
                    "answer": row["answer"],
                    "reasoning": row["reasoning"],
                    "query_id": node["node_id"],
                    "document_id": document_id,
                    "title": titles.get(document_id, ""),
                    "chunk_id": node["chunk_id"],
                    "depth": node["depth"],
                    "score": ranking[node["node_id"]]["score"],
                }
            )
    for variant in NEGATIVE_VARIANTS:
        negative_stats.add(store.read_json(negatives_file(variant.name))["stats"])
    pairs = scorer_pairs(store)

    queries_table = write_table(store.path(f"{QUERIES_STEM}.jsonl"), query_rows, empty_columns=QUERY_COLUMNS)
    progress.advance(1)
    pairs_table = write_table(store.path(f"{PAIRS_STEM}.jsonl"), pairs, empty_columns=PAIR_COLUMNS)
    progress.advance(1)
    sft_table = write_table(store.path(f"{SFT_STEM}.jsonl"), sft_rows, empty_columns=SFT_COLUMNS)
    sft_dataset_dir = write_datasets_dir(store, sft_rows)
    progress.advance(1)

    demos = store.read_json(DEMOS_FILE)
    bootstrap_stats = demos["stats"]
    all_calls = cst_stats.calls + negative_stats.calls + answer_stats.calls + bootstrap_stats["calls"]
    chunks = [chunk for document_chunks_ in chunks_by_document.values() for chunk in document_chunks_]
    scorer_metrics: dict[str, Any] = {}
    if store.exists(SCORER_DIR, "final", "result.json"):
        result = store.read_json(SCORER_DIR, "final", "result.json")
        scorer_metrics = {"scorer_steps": result["steps"], "scorer_loss": result["metrics"].get("loss")}
        # The backbone against the paper's QLoRA, and any texts cut to max_length: on the run page.
        scorer_metrics["scorer_backbone"] = result["metrics"].get("backbone_note", "")
        scorer_metrics["scorer_texts_cut"] = result["metrics"].get("texts_cut", 0)
    summary = {
        "documents": len(chunks_by_document),
        "chunks": len(chunks),
        "question_quota": sum(chunk.gen_count for chunk in chunks),
        "question_target": sum(chunk.target for chunk in chunks),
        "questions_generated": statuses.get("question", 0),
        "questions_short": statuses.get("short_question", 0),
        "nodes_parse_failed": statuses.get("parse_failed", 0),
        "leaves_below_min_length": statuses.get("leaf", 0),
        "questions_kept": sum(1 for row in query_rows if row["kept"]),
        "cst_calls": cst_stats.calls,
        "parse_failures": cst_stats.parse_failures,
        "retries": cst_stats.retries,
        "negative_calls": negative_stats.calls,
        "negative_parse_failures": negative_stats.parse_failures,
        "negative_retries": negative_stats.retries,
        "scorer_pairs": len(pairs),
        "scorer_skipped": scorer_skipped_reason(store),
        **scorer_metrics,
        "bootstrapped_demos": sum(1 for demo in demos["demonstrations"] if demo["bootstrapped"]),
        "demos": len(demos["demonstrations"]),
        "bootstrap_calls": bootstrap_stats["calls"],
        "answer_calls": answer_stats.calls,
        "empty_answers": empty_answers,
        "sft_rows": len(sft_rows),
        "model_calls": all_calls,
        "prompt_tokens": cst_stats.prompt_tokens
        + negative_stats.prompt_tokens
        + answer_stats.prompt_tokens
        + bootstrap_stats["prompt_tokens"],
        "completion_tokens": cst_stats.completion_tokens
        + negative_stats.completion_tokens
        + answer_stats.completion_tokens
        + bootstrap_stats["completion_tokens"],
    }
    return AugConResult(
        queries_path=queries_table.jsonl_path,
        queries_parquet=queries_table.parquet_path,
        pairs_path=pairs_table.jsonl_path,
        pairs_parquet=pairs_table.parquet_path,
        sft_path=sft_table.jsonl_path,
        sft_parquet=sft_table.parquet_path,
        sft_dataset_dir=sft_dataset_dir,
        summary=summary,
    )


def write_datasets_dir(store: RunStore, rows: list[dict[str, Any]]) -> Path | None:
    """The SFT set as a `datasets.load_from_disk` directory, renamed into place when complete."""
    import os
    import shutil

    if not rows:
        return None
    from datasets import Dataset

    target = store.path(SFT_DATASET_DIR)
    staging = store.path(f".staging-{SFT_DATASET_DIR}")
    shutil.rmtree(staging, ignore_errors=True)
    Dataset.from_list(rows).save_to_disk(str(staging))
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)
    return target
