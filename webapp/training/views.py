"""Training pages: the form (with a live estimate: the resolved config and its token lengths) that queues a training run."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods, require_POST

from webapp.accounts.permissions import research_required
from webapp.core.run_forms import Estimate, EstimateLine, EstimateWarning, estimate_response, new_run_response

from . import services
from .forms import TrainingRunForm, training_run_config

ESTIMATE_HINT = "Change a field to see the resolved settings."


@require_http_methods(["GET", "POST"])
@research_required
def training_new(request: HttpRequest) -> HttpResponse:
    initial = {"dataset": request.GET.get("dataset"), "trainer": request.GET.get("trainer") or "sft"}
    if request.GET.get("preset") in {preset.name for preset in services.TRAINING_PRESETS}:  # e.g. AugCon's run page opens its own SFT settings
        initial["preset"] = request.GET["preset"]
    return new_run_response(
        request,
        form=TrainingRunForm(request.POST or None, initial=initial),
        build=training_run_config,
        kind=services.training_kind,
        run_label="Training",
        template="training/new.html",
        context={"presets": services.preset_table(), "estimate_hint": ESTIMATE_HINT},
    )


def _estimate(form: TrainingRunForm, config: dict[str, Any]) -> Estimate:
    """How the run trains: the effective batch, the dataset's token lengths against the limits, the config."""
    lengths = services.training_length_preview(
        config=config, model=form.cleaned_data["model"], dataset=form.cleaned_data["dataset"]
    )
    lines = [EstimateLine("Effective batch", config["effective_batch"], key="effective-batch")]
    warnings = []
    if lengths.get("error"):
        lines.append(EstimateLine("Token lengths", "not measured here", note=lengths["error"], key="lengths"))
    else:
        partial_note = (
            f"Measured on the first {lengths['measured_rows']} rows; the job measures every row and reports the counts."
            if lengths["partial"]
            else ""
        )
        lines.append(EstimateLine("Token lengths", lengths["message"], note=partial_note, key="lengths"))
        if lengths["rows_over"]:
            warnings.append(_over_length_warning(lengths))
    return Estimate(lines=lines, warnings=warnings, resolved=json.dumps(config["config"], indent=2))


def _over_length_warning(lengths: dict[str, Any]) -> EstimateWarning:
    rows_over = lengths["rows_over"]
    outcome = {
        "refuse": "the run will refuse to start.",
        "drop": "they will be left out.",
    }.get(lengths["over_length"], "they will be cut (counted in the run summary).")
    summary = lengths["summary"]
    return EstimateWarning(
        f"{rows_over} row{'' if rows_over == 1 else 's'} over the limits: {outcome} Lengths that fit every row: "
        f"max_prompt_length {summary['proposed_max_prompt_length']}, max_length {summary['proposed_max_length']}.",
        stops_run=lengths["over_length"] == "refuse",
    )


@require_POST
@research_required
def training_estimate(request: HttpRequest) -> HttpResponse:
    """What the form would queue: the resolved config and how it trains, or the problems; refreshed as the form changes."""
    return estimate_response(
        request, form=TrainingRunForm(request.POST), build=training_run_config, estimate=_estimate, hint=ESTIMATE_HINT
    )
