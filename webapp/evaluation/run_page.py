"""The evaluation section of the live run page: headline win rates and a link to the full result page."""
from __future__ import annotations

from typing import Any

from webapp.runs.models import PipelineRun

TEMPLATE = "evaluation/partials/_run_section.html"


def context(run: PipelineRun) -> dict[str, Any]:
    from .models import Evaluation

    evaluation = Evaluation.objects.filter(run=run).first()
    candidates = (evaluation.results.get("candidates") or {}) if evaluation else {}
    return {"evaluation": evaluation, "evaluation_candidates": candidates}
