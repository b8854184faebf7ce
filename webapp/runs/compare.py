"""Compare runs of one kind: each metric's curves overlaid (one line per run) and the configs side by side.

`/runs/compare/?runs=3,5,8` (or `runs=3&runs=5`, as the run list's checkboxes send it). Runs of
different kinds are refused: their metrics and settings do not line up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from webapp.accounts.permissions import research_required

from .charts import Chart, compare_charts
from .models import PipelineRun

MAX_COMPARED_RUNS = 8
"""As many as the charts have distinct colours for."""


class CompareRefused(ValueError):
    """The runs asked for cannot be compared; the message says which and why."""


@dataclass(frozen=True)
class ConfigRow:
    """One setting (a dotted path into the configs) and its value in each run, as text."""

    key: str
    values: list[str]

    @property
    def differs(self) -> bool:
        return len(set(self.values)) > 1


def compared_run_ids(values: list[str]) -> list[int]:
    """Run numbers from `runs=1,2` and/or `runs=1&runs=2`, in the order given, each once."""
    run_ids: list[int] = []
    for part in (piece.strip() for value in values for piece in value.split(",")):
        if not part:
            continue
        if not part.isdigit():
            raise CompareRefused(f"runs: “{part}” is not a run number; give numbers such as ?runs=3,5.")
        if int(part) not in run_ids:
            run_ids.append(int(part))
    if len(run_ids) < 2:
        raise CompareRefused("runs: choose two or more runs to compare (tick them in the run list).")
    if len(run_ids) > MAX_COMPARED_RUNS:
        raise CompareRefused(f"runs: {len(run_ids)} runs chosen; compare at most {MAX_COMPARED_RUNS} at once.")
    return run_ids


def compared_runs(run_ids: list[int]) -> list[PipelineRun]:
    """The runs in the order asked for; all must exist and be of one kind."""
    found = PipelineRun.objects.select_related("created_by").in_bulk(run_ids)
    missing = [f"#{run_id}" for run_id in run_ids if run_id not in found]
    if missing:
        raise CompareRefused(f"runs: no run {', '.join(missing)}.")
    runs = [found[run_id] for run_id in run_ids]
    kinds = {run.kind for run in runs}
    if len(kinds) > 1:
        described = "; ".join(f"#{run.pk} is {run.kind_label}" for run in runs)
        raise CompareRefused(f"runs: only runs of one kind can be compared ({described}).")
    return runs


def run_legend_label(run: PipelineRun) -> str:
    return f"#{run.pk} {run.name}" if run.name else f"#{run.pk}"


def config_rows(configs: list[dict[str, Any]]) -> list[ConfigRow]:
    """Every setting any config has, flattened to dotted keys, in first-seen order; absent ones read "—"."""
    flattened = [_flatten(config) for config in configs]
    keys: list[str] = []
    for flat in flattened:
        keys.extend(key for key in flat if key not in keys)
    return [ConfigRow(key=key, values=[flat.get(key, "—") for flat in flattened]) for key in keys]


def _flatten(value: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(value, dict) and value:
        flat: dict[str, str] = {}
        for key, inner in value.items():
            flat.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}


@require_GET
@research_required
def run_compare(request: HttpRequest) -> HttpResponse:
    try:
        runs = compared_runs(compared_run_ids(request.GET.getlist("runs")))
    except CompareRefused as refusal:
        # Opened without a choice (a bookmark, the menu): the same guidance, but nothing was asked wrongly.
        status = 400 if any(request.GET.getlist("runs")) else 200
        return render(request, "runs/compare.html", {"refusal": str(refusal)}, status=status)
    charts: list[Chart] = compare_charts([(run_legend_label(run), run.metrics) for run in runs])
    rows = config_rows([run.config for run in runs])
    return render(
        request,
        "runs/compare.html",
        {
            "runs": runs,
            "charts": charts,
            "charts_panel_id": "compare-charts",
            "config_rows": rows,
            "differing_count": sum(row.differs for row in rows),
        },
    )
