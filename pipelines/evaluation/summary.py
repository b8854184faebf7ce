"""The run page's figures of a finished evaluation: counts, then each candidate's headline numbers by label.

The run page shows a flat table; the evaluation's own page reads the full statistics from
`results.json`. Each candidate's figures are keyed by its label ("tiny (T=1): win rate"), so a run
with several candidates reads as one table.
"""

from __future__ import annotations

from typing import Any


def run_summary(
    results: dict[str, Any], *, answers_generated: int, answers_reused: int, judgments_made: int, seconds: float
) -> dict[str, Any]:
    """The flat summary of `results` (the content of `results.json`) and this attempt's counts."""
    summary: dict[str, Any] = {
        "prompts": results["prompts"],
        "answers_generated": answers_generated,
        "answers_reused": answers_reused,
        "judgments_made_this_attempt": judgments_made,
        "evaluation_seconds": round(seconds, 2),
    }
    for statistics in results["candidates"].values():
        summary.update(candidate_figures(statistics))
    return summary


def candidate_figures(statistics: dict[str, Any]) -> dict[str, Any]:
    """One candidate's headline figures, each key prefixed with its label."""
    label = statistics["label"]
    figures: dict[str, Any] = {
        f"{label}: win rate": statistics["win_rate"]["win_rate"],
        f"{label}: LC win rate": statistics["length_controlled"]["win_rate"],
        f"{label}: LC bootstrap standard error": statistics["length_controlled"]["standard_error"],
        f"{label}: judge method": statistics["judge_method"],
        f"{label}: parse failures": f"{statistics['parse_failures']} of {statistics['judgments']}",
        f"{label}: prompts read in one order only": statistics["single_order_prompts"],
    }
    bias = statistics["position_bias"]
    if bias["same_position_share"] is not None:
        figures[f"{label}: same position chosen"] = (
            f"{bias['same_position_share']:.0%} {bias['favoured']} of {bias['decided']} decided judgments"
            + (f" (position bias: above {bias['threshold']:.0%})" if bias["warning"] else "")
        )
    return figures
