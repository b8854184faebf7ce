"""The names of an AugCon run directory's files, in one place: the pipeline writes them, `inspect` reads them.

A file that exists is finished (every file appears atomically), so these names are also the
pipeline's resume points; see `pipelines/augcon/run.py` for what each one holds.
"""

from __future__ import annotations

DOCUMENTS_FILE = "documents.jsonl"
FEW_SHOT_FILE = "fewshot.jsonl"
CHUNKS_FILE = "chunks.jsonl"
RANKING_FILE = "ranking.json"
DEMOS_FILE = "demos.json"
SUMMARY_FILE = "summary.json"
SCORER_DIR = "scorer"
SCORER_SKIPPED_FILE = "skipped.json"
SCORER_RESULT_PARTS = (SCORER_DIR, "final", "result.json")
"""Where the trained scorer's result (steps, metrics) lies, as path parts under the run directory."""
QUERIES_STEM = "queries"
PAIRS_STEM = "scorer_pairs"
SFT_STEM = "sft"
SFT_DATASET_DIR = "sft_dataset"


def cst_file(document_id: str) -> str:
    return f"cst/{document_id}.json"


def scores_file(document_id: str) -> str:
    return f"scores/{document_id}.json"


def answers_file(document_id: str) -> str:
    return f"answers/{document_id}.jsonl"


def negatives_file(variant: str) -> str:
    return f"negatives/{variant}.json"
