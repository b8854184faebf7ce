"""Hook for human judging: an evaluation's per-prompt rows as pairs an annotation campaign can be made from.

HUMAN-JUDGING HOOK. The annotation app (built separately) makes campaigns over pairwise artifacts
with rows `prompt`, `response_a`, `response_b`, `model_a`, `model_b`; this module turns an
evaluation's rows into exactly that, with the LLM judge's combined verdict beside each pair so the
campaign's results can be set side by side with the judge's and their agreement computed. The
annotation workspace randomizes sides itself; here A is always the candidate.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any


def judge_verdict_of(preference: float | None) -> str | None:
    """The LLM judge's verdict over both orders, in the pair's terms: A (candidate), B (baseline), tie."""
    if preference is None:
        return None
    if preference > 0.5:
        return "A"
    if preference < 0.5:
        return "B"
    return "tie"


def annotation_pairs(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Rows for a campaign: prompt, response_a, response_b, model_a, model_b, judge_verdict (+ ids to join back)."""
    for row in rows:
        yield {
            "prompt": row["prompt"],
            "response_a": row["candidate_answer"],
            "response_b": row["baseline_answer"],
            "model_a": row["candidate"],
            "model_b": row["baseline"],
            "judge_verdict": judge_verdict_of(row["preference"]),
            "judge_preference": row["preference"],
            "prompt_id": row["prompt_id"],
            "candidate_id": row["candidate_id"],
        }
