"""SPIN pages: the run form with a live cost estimate; the iterations live on the run page (run_page.py)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods, require_POST

from webapp.accounts.permissions import research_required
from webapp.core.run_forms import Estimate, EstimateLine, estimate_response, new_run_response

from . import services
from .forms import SpinRunForm, spin_run_config

ESTIMATE_HINT = (
    "Choose a model and an SFT dataset to see the generations and training pairs this run implies, "
    "and how it trains (adapter, effective batch, learning rate and β per iteration)."
)
ESTIMATE_LABELS = {
    "iterations": "Iterations",
    "prompts": "Prompts",
    "generations": "Generations",
    "max_new_tokens": "New tokens, at most",
    "training_pairs": "Training pairs, all iterations",
}
"""How the estimate names SPIN's counts; the training summary's entries are named in words already."""


@require_http_methods(["GET", "POST"])
@research_required
def spin_new(request: HttpRequest) -> HttpResponse:
    return new_run_response(
        request,
        form=SpinRunForm(request.POST or None, initial={"dataset": request.GET.get("dataset")}),
        build=spin_run_config,
        kind="spin",
        run_label="SPIN",
        template="spin/new.html",
        context={"estimate_hint": ESTIMATE_HINT},
    )


def _estimate(form: SpinRunForm, config: dict[str, Any]) -> Estimate:
    """Generations and training pairs the run implies, and how it trains (the paper's settings or ours)."""
    dataset = form.cleaned_data["dataset"]
    figures = services.spin_cost_estimate(prompt_count=dataset.row_count, config=config, dataset=dataset)
    return Estimate(
        lines=[EstimateLine(ESTIMATE_LABELS.get(key, key), value, key=key) for key, value in figures.items()]
    )


@require_POST
@research_required
def spin_estimate(request: HttpRequest) -> HttpResponse:
    """What the form would queue, or the problems; refreshed as the form changes."""
    return estimate_response(
        request, form=SpinRunForm(request.POST), build=spin_run_config, estimate=_estimate, hint=ESTIMATE_HINT
    )
