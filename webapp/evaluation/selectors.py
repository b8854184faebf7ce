"""Reads for the evaluation pages: per-prompt rows with filters, chart geometry, exports, the leaderboard."""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipelines.common.jsonl import read_jsonl_rows
from pipelines.evaluation.stats import Comparison, bradley_terry_leaderboard
from webapp.core.spreadsheet import spreadsheet_safe_row
from webapp.registry.models import ModelEntry

from .models import Evaluation

ROW_FILTERS = {
    "all": "all prompts",
    "disagreements": "position disagreements (the two orders' verdicts differ)",
    "unparsed": "a judgment could not be read",
    "single_order": "read in one order only (position bias not cancelled)",
    "wins": "candidate preferred",
    "losses": "baseline preferred",
}
EXPORT_COLUMNS = (
    "prompt_id", "candidate", "baseline", "prompt", "candidate_answer", "baseline_answer", "candidate_chars",
    "baseline_chars", "verdict_candidate_first", "verdict_baseline_first", "outcome_candidate_first",
    "outcome_baseline_first", "preference", "position_disagreement", "unparsed_orders", "judge_attempts",
    "judge_method", "preference_candidate_first", "preference_baseline_first", "single_order",
)


def evaluation_rows(evaluation: Evaluation) -> Iterator[dict[str, Any]]:
    """Every per-prompt row of every candidate, from the comparisons artifact (empty before the run ends)."""
    if evaluation.comparisons is None:
        return
    path = Path(evaluation.comparisons.jsonl_path)
    if not path.is_file():
        return
    yield from read_jsonl_rows(path)


def filtered_rows(evaluation: Evaluation, *, row_filter: str = "all", candidate_id: str = "") -> list[dict[str, Any]]:
    rows = []
    for row in evaluation_rows(evaluation):
        if candidate_id and row["candidate_id"] != candidate_id:
            continue
        preference = row["preference"]
        keep = {
            "all": True,
            "disagreements": row["position_disagreement"],
            "unparsed": row["unparsed_orders"] > 0,
            "single_order": bool(row.get("single_order")),
            "wins": preference is not None and preference > 0.5,
            "losses": preference is not None and preference < 0.5,
        }.get(row_filter, True)
        if keep:
            rows.append(row)
    return rows


def export_csv(evaluation: Evaluation) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in evaluation_rows(evaluation):
        writer.writerow(spreadsheet_safe_row(row))
    return buffer.getvalue()


def export_json(evaluation: Evaluation) -> str:
    document = {
        "evaluation": evaluation.pk,
        "name": str(evaluation),
        "judge": evaluation.judge.name if evaluation.judge else None,
        "baseline": evaluation.baseline.get("label"),
        "results": evaluation.results,
        "rows": list(evaluation_rows(evaluation)),
    }
    return json.dumps(document, ensure_ascii=False, indent=2)


# --- charts ---------------------------------------------------------------------------------------

CHART_WIDTH = 520
BAR_HEIGHT = 18


def win_rate_bars(results: dict[str, Any]) -> list[dict[str, Any]]:
    """SVG geometry (0-100 % across `CHART_WIDTH` px) for each candidate's win rate and LC win rate with intervals."""
    bars = []
    for candidate_id, statistics in (results.get("candidates") or {}).items():
        for metric, title in (("win_rate", "win rate"), ("length_controlled", "LC win rate")):
            values = statistics.get(metric) or {}
            value = values.get("win_rate")
            if value is None:
                continue
            low, high = values.get("ci_low"), values.get("ci_high")
            bars.append(
                {
                    "candidate_id": candidate_id,
                    "label": statistics.get("label", candidate_id),
                    "metric": metric,
                    "title": title,
                    "value": value,
                    "ci_low": low,
                    "ci_high": high,
                    "width": _x(value),
                    "low_x": _x(low if low is not None else value),
                    "high_x": _x(high if high is not None else value),
                }
            )
    for index, bar in enumerate(bars):
        bar["y"] = 8 + index * (BAR_HEIGHT + 10)
        bar["mid_y"] = bar["y"] + BAR_HEIGHT // 2
    return bars


def chart_height(bars: list[dict[str, Any]]) -> int:
    return 16 + len(bars) * (BAR_HEIGHT + 10)


def _x(percent: float) -> float:
    return round(max(0.0, min(100.0, float(percent))) * CHART_WIDTH / 100, 2)


# --- leaderboard ------------------------------------------------------------------------------------


def leaderboard_judges() -> list[ModelEntry]:
    """Judges that have finished evaluations (the leaderboard never mixes judges)."""
    ids = Evaluation.objects.filter(status=Evaluation.Status.SUCCEEDED).values_list("judge_id", flat=True).distinct()
    return list(ModelEntry.objects.filter(pk__in=list(ids)))


def leaderboard(*, judge: ModelEntry | None, bootstrap_rounds: int = 200, seed: int = 0) -> dict[str, Any]:
    """Bradley-Terry ratings of every contestant in the judge's finished evaluations, with bootstrap intervals.

    Each prompt's preference (both orders combined) is one comparison between the candidate and the
    baseline; evaluations are the bootstrap's groups. Registry models show their parent, so SPIN's
    iterations or base-vs-AFT read as a lineage.
    """
    evaluations = list(
        Evaluation.objects.filter(status=Evaluation.Status.SUCCEEDED, judge=judge, comparisons__isnull=False)
        .select_related("comparisons")
        .order_by("created_at")
    )
    comparisons: list[Comparison] = []
    labels: dict[str, str] = {}
    models: dict[str, int] = {}
    for evaluation in evaluations:
        for description in [*evaluation.candidates, evaluation.baseline]:
            key = description.get("leaderboard_key")
            if key:
                labels[key] = description.get("label", key)
                if description.get("model_id"):
                    models[key] = description["model_id"]
        for row in evaluation_rows(evaluation):
            if row.get("preference") is None or not row.get("candidate_key") or not row.get("baseline_key"):
                continue
            comparisons.append(Comparison(row["candidate_key"], row["baseline_key"], float(row["preference"]), str(evaluation.pk)))
    rows = bradley_terry_leaderboard(comparisons, bootstrap_rounds=bootstrap_rounds, seed=seed)
    entries = ModelEntry.objects.in_bulk(list(models.values()))
    table = []
    for row in rows:
        entry = entries.get(models.get(row.contestant, -1))
        table.append(
            {
                **row.to_dict(),
                "label": labels.get(row.contestant, row.contestant),
                "model": entry,
                "parent": entry.parent if entry else None,
            }
        )
    reference = next((r["label"] for r in table if r["strength"] == 0), "")
    return {"rows": table, "evaluations": len(evaluations), "comparisons": len(comparisons), "reference": reference}
