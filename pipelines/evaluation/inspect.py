"""What the site reads back from an evaluation's run directory, so it never names the pipeline's files.

The evaluation's own pages read its `comparisons` artifact and the statistics kept on the
Evaluation row; what they are recorded from is here: the statistics (`results.json`) and each
contestant's answers (what the answer cache table mirrors).
"""

from __future__ import annotations

from typing import Any

from pipelines.common.store import RunStore
from pipelines.evaluation.run import RESULTS_FILE, answers_file


def evaluation_results(store: RunStore) -> dict[str, Any] | None:
    """The statistics per candidate of a finished evaluation (`results.json`), or None before it finishes."""
    return store.read_json(RESULTS_FILE) if store.exists(RESULTS_FILE) else None


def contestant_answer_rows(store: RunStore, contestant_id: str) -> list[dict[str, Any]]:
    """One contestant's answers, one row per prompt (empty before its answer stage finished)."""
    name = answers_file(contestant_id)
    return list(store.read_jsonl(name)) if store.exists(name) else []
