"""What an AugCon run's pages show, read from its run directory: per-stage progress, per-document counts, split trees.

The pipeline's files are the source of truth (a file that exists is finished), so the run page tells
what is done even while the worker is mid-stage, and after a resume. Django-free: the web app's
selectors hand in the run directory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipelines.augcon.files import (
    CHUNKS_FILE,
    DEMOS_FILE,
    DOCUMENTS_FILE,
    RANKING_FILE,
    SCORER_DIR,
    SCORER_RESULT_PARTS,
    SCORER_SKIPPED_FILE,
    SFT_DATASET_DIR,
    SUMMARY_FILE,
    answers_file,
    cst_file,
    negatives_file,
    scores_file,
)
from pipelines.augcon.prompts import NEGATIVE_VARIANTS
from pipelines.common.store import RunStore

DOCUMENT_ROWS_SHOWN = 200
_DOCUMENT_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


def _store(directory: Path) -> RunStore | None:
    return RunStore(directory) if directory.is_dir() else None


def _read_json(store: RunStore, *parts: str) -> Any:
    try:
        return store.read_json(*parts)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _documents(store: RunStore) -> list[dict[str, Any]]:
    if not store.exists(DOCUMENTS_FILE):
        return []
    return [
        {"document_id": row["document_id"], "title": row.get("title", "")} for row in store.read_jsonl(DOCUMENTS_FILE)
    ]


def run_overview(directory: Path) -> dict[str, Any]:
    """Per-stage done/total, per-document counts, parse failures and retries so far."""
    store = _store(directory)
    if store is None:
        return {"stages": [], "documents": [], "totals": {}}
    documents = _documents(store)
    rows, totals = _document_rows(store, documents)
    return {
        "stages": _stages(store, documents),
        "documents": rows[:DOCUMENT_ROWS_SHOWN],
        "more_documents": max(0, len(rows) - DOCUMENT_ROWS_SHOWN),
        "totals": totals,
        "demos": _read_json(store, DEMOS_FILE),
    }


def _document_rows(store: RunStore, documents: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """A row per document (chunks, questions, kept, calls, failures) and their totals over finished documents."""
    chunk_counts: dict[str, int] = {}
    if store.exists(CHUNKS_FILE):
        for row in store.read_jsonl(CHUNKS_FILE):
            chunk_counts[row["document_id"]] = chunk_counts.get(row["document_id"], 0) + 1
    ranking = _read_json(store, RANKING_FILE) or {}
    totals = {
        "questions": 0,
        "kept": 0,
        "calls": 0,
        "parse_failures": 0,
        "retries": 0,
        "gave_up": 0,
        "ungrounded": 0,
    }
    rows = []
    for document in documents:
        trees = _read_json(store, cst_file(document["document_id"]))
        row = {**document, "chunks": chunk_counts.get(document["document_id"], 0), "finished": trees is not None}
        if trees is not None:
            questions = [node for node in trees["nodes"] if node["status"] == "question"]
            stats = trees["stats"]
            row.update(
                questions=len(questions),
                kept=sum(1 for node in questions if ranking.get(node["node_id"], {}).get("kept")),
                calls=stats["calls"],
                parse_failures=stats["parse_failures"],
                retries=stats["retries"],
                gave_up=stats["gave_up"],
            )
            for name in ("calls", "parse_failures", "retries", "gave_up"):
                totals[name] += stats[name]
            totals["questions"] += len(questions)
            totals["ungrounded"] += sum(1 for node in trees["nodes"] if node["status"] == "ungrounded")
            totals["kept"] += row["kept"]
        rows.append(row)
    return rows, totals


def scorer_state(store: RunStore) -> str:
    """waiting, training, trained, or "skipped: <why>"."""
    skipped = _read_json(store, SCORER_DIR, SCORER_SKIPPED_FILE)
    if skipped:
        return f"skipped: {skipped['reason']}"
    if store.exists(*SCORER_RESULT_PARTS):
        return "trained"
    if store.path(SCORER_DIR, "checkpoints").is_dir():
        return "training"
    return "waiting"


def _stages(store: RunStore, documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    document_count = len(documents)
    scorer = scorer_state(store)
    stages = [
        {"name": "questions (Context-Split-Tree)", "done": _count(store, documents, cst_file), "total": document_count},
        {
            "name": "negatives (weaker prompts)",
            "done": sum(1 for variant in NEGATIVE_VARIANTS if store.exists(negatives_file(variant.name))),
            "total": len(NEGATIVE_VARIANTS),
        },
        {
            "name": "scorer",
            "done": int(scorer == "trained" or scorer.startswith("skipped")),
            "total": 1,
            "note": scorer,
        },
        {"name": "score", "done": _count(store, documents, scores_file), "total": document_count},
        {"name": "rank and dedup", "done": int(store.exists(RANKING_FILE)), "total": 1},
        {"name": "demonstrations (bootstrap)", "done": int(store.exists(DEMOS_FILE)), "total": 1},
        {"name": "answers", "done": _count(store, documents, answers_file), "total": document_count},
        {"name": "export", "done": int(store.exists(SUMMARY_FILE)), "total": 1},
    ]
    for stage in stages:
        stage["percent"] = round(100 * stage["done"] / stage["total"]) if stage["total"] else 0
    return stages


def _count(store: RunStore, documents: list[dict[str, Any]], name_of: Callable[[str], str]) -> int:
    return sum(1 for document in documents if store.exists(name_of(document["document_id"])))


def document_trees(directory: Path, document_id: str) -> dict[str, Any] | None:
    """A document's chunks, each with its rounds' trees as nested nodes; None when not finished."""
    store = _store(directory)
    if store is None or not _DOCUMENT_ID.match(document_id) or not store.exists(cst_file(document_id)):
        return None
    trees = _read_json(store, cst_file(document_id))
    if trees is None:
        return None
    ranking = _read_json(store, RANKING_FILE) or {}
    scores = _read_json(store, scores_file(document_id)) or {}
    chunks: dict[str, dict[str, Any]] = {}
    if store.exists(CHUNKS_FILE):
        for row in store.read_jsonl(CHUNKS_FILE):
            if row["document_id"] == document_id:
                chunks[row["chunk_id"]] = {**row, "trees": []}
    for root in _tree_roots(trees["nodes"], ranking, scores):
        chunks.setdefault(root["chunk_id"], {"chunk_id": root["chunk_id"], "trees": []})["trees"].append(root)
    title = next((d["title"] for d in _documents(store) if d["document_id"] == document_id), "")
    return {
        "document_id": document_id,
        "title": title,
        "chunks": list(chunks.values()),
        "stats": trees["stats"],
        "seconds": trees.get("seconds"),
        "ranked": bool(ranking),
    }


def _tree_roots(
    nodes: list[dict[str, Any]], ranking: dict[str, dict[str, Any]], scores: dict[str, float | None]
) -> list[dict[str, Any]]:
    """The nodes nested under their parents (`child_nodes`), each with its score, rank and verdict."""
    by_id = {node["node_id"]: {**node, "child_nodes": []} for node in nodes}
    roots = []
    for node in by_id.values():
        decision = ranking.get(node["node_id"], {})
        node["score"] = decision.get("score", scores.get(node["node_id"]))
        node["kept"] = decision.get("kept")
        node["rank"] = decision.get("rank")
        node["drop_reason"] = decision.get("drop_reason") or node["reason"]
        # Trees written before grounding was measured have no figure: shown as unknown, not as 0.
        node["grounding"] = node.get("grounding")
        if node["status"] != "question":
            node["verdict"] = "no question"
        elif node["kept"] is None:
            node["verdict"] = "not ranked yet"
        else:
            node["verdict"] = "kept" if node["kept"] else "dropped"
        if node["parent_id"] and node["parent_id"] in by_id:
            by_id[node["parent_id"]]["child_nodes"].append(node)
        else:
            roots.append(node)
    return roots


def sft_dataset_path(directory: Path) -> Path | None:
    """The SFT set's `datasets` directory, once the export wrote it."""
    store = _store(directory)
    if store is None or not store.exists(SFT_DATASET_DIR):
        return None
    return store.path(SFT_DATASET_DIR)
