"""AugCon's last stage: the three artifacts (queries, scorer pairs, SFT) and the run summary, from the run directory.

Each function has one job: the rows of one table, the call counts of every stage, the scorer's
figures, or the summary the run page and the tests read. `export` writes the tables in order.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.augcon.corpus import RootChunk
from pipelines.augcon.cst import CallStats
from pipelines.augcon.files import (
    DEMOS_FILE,
    PAIRS_STEM,
    QUERIES_STEM,
    SCORER_DIR,
    SCORER_RESULT_PARTS,
    SCORER_SKIPPED_FILE,
    SFT_DATASET_DIR,
    SFT_STEM,
    answers_file,
    cst_file,
    negatives_file,
)
from pipelines.augcon.prompts import NEGATIVE_VARIANTS
from pipelines.common.progress import Progress
from pipelines.common.result import ArtifactOutput
from pipelines.common.store import RunStore
from pipelines.common.tables import write_table

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

ChunksByDocument = dict[str, list[RootChunk]]
Ranking = dict[str, dict[str, Any]]


def scorer_pairs(store: RunStore) -> list[dict[str, Any]]:
    """Every weaker prompt's (context, pos_query, neg_query) pairs, in variant order."""
    return [pair for variant in NEGATIVE_VARIANTS for pair in store.read_json(negatives_file(variant.name))["pairs"]]


def scorer_skipped_reason(store: RunStore) -> str:
    if store.exists(SCORER_DIR, SCORER_SKIPPED_FILE):
        return store.read_json(SCORER_DIR, SCORER_SKIPPED_FILE)["reason"]
    return ""


def query_rows(
    store: RunStore, chunks_by_document: ChunksByDocument, titles: dict[str, str], ranking: Ranking
) -> list[dict[str, Any]]:
    """One row per question the trees asked (short ones too), with its score, rank and fate."""
    rows = []
    for document_id in chunks_by_document:
        for node in store.read_json(cst_file(document_id))["nodes"]:
            if node["status"] not in ("question", "short_question"):
                continue
            decision = ranking.get(node["node_id"], {})
            rows.append(
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
    return rows


@dataclass
class SftRows:
    rows: list[dict[str, Any]]
    empty_answers: int
    """Kept questions whose answer came back empty: not in the SFT set."""


def sft_rows(
    store: RunStore, chunks_by_document: ChunksByDocument, titles: dict[str, str], ranking: Ranking
) -> SftRows:
    """One SFT row per kept question with a non-empty answer."""
    rows: list[dict[str, Any]] = []
    empty = 0
    for document_id in chunks_by_document:
        by_id = {node["node_id"]: node for node in store.read_json(cst_file(document_id))["nodes"]}
        for row in list(store.read_jsonl(answers_file(document_id)))[1:]:  # the first line is the stats
            if not row["answer"]:
                empty += 1
                continue
            node = by_id[row["node_id"]]
            rows.append(
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
    return SftRows(rows=rows, empty_answers=empty)


@dataclass
class StageCalls:
    """The model calls of each stage that asks the generator."""

    cst: CallStats
    negatives: CallStats
    answers: CallStats
    bootstrap: dict[str, int]


def stage_calls(store: RunStore, chunks_by_document: ChunksByDocument) -> StageCalls:
    cst, negatives, answers = CallStats(), CallStats(), CallStats()
    for document_id in chunks_by_document:
        cst.add(store.read_json(cst_file(document_id))["stats"])
        answers.add(next(iter(store.read_jsonl(answers_file(document_id))))["stats"])
    for variant in NEGATIVE_VARIANTS:
        negatives.add(store.read_json(negatives_file(variant.name))["stats"])
    return StageCalls(cst=cst, negatives=negatives, answers=answers, bootstrap=store.read_json(DEMOS_FILE)["stats"])


def node_statuses(store: RunStore, chunks_by_document: ChunksByDocument) -> dict[str, int]:
    """How many tree nodes ended in each status (question, short_question, parse_failed, leaf)."""
    statuses: dict[str, int] = {}
    for document_id in chunks_by_document:
        for node in store.read_json(cst_file(document_id))["nodes"]:
            statuses[node["status"]] = statuses.get(node["status"], 0) + 1
    return statuses


def scorer_figures(store: RunStore) -> dict[str, Any]:
    """The trained scorer's steps and loss, its backbone against the paper's QLoRA, and texts cut to max_length."""
    if not store.exists(*SCORER_RESULT_PARTS):
        return {}
    result = store.read_json(*SCORER_RESULT_PARTS)
    return {
        "scorer_steps": result["steps"],
        "scorer_loss": result["metrics"].get("loss"),
        "scorer_backbone": result["metrics"].get("backbone_note", ""),
        "scorer_texts_cut": result["metrics"].get("texts_cut", 0),
    }


def run_summary(
    store: RunStore,
    chunks_by_document: ChunksByDocument,
    queries: list[dict[str, Any]],
    sft: SftRows,
    pair_count: int,
) -> dict[str, Any]:
    """The figures the run page shows (and the tests read), under the names they have always had."""
    statuses = node_statuses(store, chunks_by_document)
    calls = stage_calls(store, chunks_by_document)
    demonstrations = store.read_json(DEMOS_FILE)["demonstrations"]
    chunks = [chunk for document_chunks in chunks_by_document.values() for chunk in document_chunks]
    generator_stats = (calls.cst, calls.negatives, calls.answers)
    return {
        "documents": len(chunks_by_document),
        "chunks": len(chunks),
        "question_quota": sum(chunk.gen_count for chunk in chunks),
        "question_target": sum(chunk.target for chunk in chunks),
        "questions_generated": statuses.get("question", 0),
        "questions_short": statuses.get("short_question", 0),
        "nodes_parse_failed": statuses.get("parse_failed", 0),
        "leaves_below_min_length": statuses.get("leaf", 0),
        "questions_kept": sum(1 for row in queries if row["kept"]),
        "cst_calls": calls.cst.calls,
        "parse_failures": calls.cst.parse_failures,
        "retries": calls.cst.retries,
        "nodes_gave_up": calls.cst.gave_up,
        "splits_dropped_ungrounded": statuses.get("ungrounded", 0),
        "negative_calls": calls.negatives.calls,
        "negative_parse_failures": calls.negatives.parse_failures,
        "negative_retries": calls.negatives.retries,
        "scorer_pairs": pair_count,
        "scorer_skipped": scorer_skipped_reason(store),
        **scorer_figures(store),
        "bootstrapped_demos": sum(1 for demo in demonstrations if demo["bootstrapped"]),
        "demos": len(demonstrations),
        "bootstrap_calls": calls.bootstrap["calls"],
        "judge_parse_failures": calls.bootstrap.get("parse_failures", 0),
        "answer_calls": calls.answers.calls,
        "empty_answers": sft.empty_answers,
        "sft_rows": len(sft.rows),
        "model_calls": sum(stats.calls for stats in generator_stats) + calls.bootstrap["calls"],
        "prompt_tokens": sum(stats.prompt_tokens for stats in generator_stats) + calls.bootstrap["prompt_tokens"],
        "completion_tokens": sum(stats.completion_tokens for stats in generator_stats)
        + calls.bootstrap["completion_tokens"],
    }


@dataclass
class Exported:
    artifacts: list[ArtifactOutput]
    summary: dict[str, Any]
    sft_dataset_dir: Path | None


def export(
    store: RunStore,
    progress: Progress,
    documents: list[dict[str, Any]],
    chunks_by_document: ChunksByDocument,
    ranking: Ranking,
) -> Exported:
    """Write the three artifacts (JSONL + parquet; the SFT set also as a `datasets` directory); sum up the run."""
    progress.stage("export", total=3)
    titles = {document["document_id"]: document.get("title") or "" for document in documents}
    queries = query_rows(store, chunks_by_document, titles, ranking)
    sft = sft_rows(store, chunks_by_document, titles, ranking)
    pairs = scorer_pairs(store)

    queries_table = write_table(store.path(f"{QUERIES_STEM}.jsonl"), queries, empty_columns=QUERY_COLUMNS)
    progress.advance(1)
    pairs_table = write_table(store.path(f"{PAIRS_STEM}.jsonl"), pairs, empty_columns=PAIR_COLUMNS)
    progress.advance(1)
    sft_table = write_table(store.path(f"{SFT_STEM}.jsonl"), sft.rows, empty_columns=SFT_COLUMNS)
    sft_dataset_dir = write_datasets_dir(store, sft.rows)
    progress.advance(1)
    artifacts = [
        ArtifactOutput(name, kind, table.jsonl_path, table.parquet_path)
        for name, kind, table in (
            ("queries", "queries", queries_table),
            ("scorer_pairs", "scorer_pairs", pairs_table),
            ("sft", "sft", sft_table),
        )
    ]
    return Exported(
        artifacts=artifacts,
        summary=run_summary(store, chunks_by_document, queries, sft, len(pairs)),
        sft_dataset_dir=sft_dataset_dir,
    )


def write_datasets_dir(store: RunStore, rows: list[dict[str, Any]]) -> Path | None:
    """The SFT set as a `datasets.load_from_disk` directory, renamed into place when complete."""
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
