"""Start a generate run, with a live estimate of what it asks of the model."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods, require_POST

from webapp.accounts.permissions import research_required
from webapp.core.run_forms import Estimate, EstimateLine, estimate_response, new_run_response

from . import services
from .forms import GenerateRunForm, generate_run_config

ESTIMATE_HINT = "Choose a prompt set to see how much this run asks of the model."


@require_http_methods(["GET", "POST"])
@research_required
def generate_new(request: HttpRequest) -> HttpResponse:
    return new_run_response(
        request,
        form=GenerateRunForm(request.POST or None),
        build=generate_run_config,
        kind="generate",
        run_label="Generate",
        template="generate/new.html",
        context={"estimate_hint": ESTIMATE_HINT},
    )


def _estimate(form: GenerateRunForm, config: dict[str, Any]) -> Estimate:
    data = form.cleaned_data
    figures = services.generate_cost_estimate(
        prompt_count=data["prompt_set"].prompts.count(), n=data["n"], max_tokens=data["max_tokens"]
    )
    return Estimate(
        lines=[
            EstimateLine("Prompts (model calls)", figures["model_calls"], key="model-calls"),
            EstimateLine("Samples", figures["samples"], key="samples"),
            EstimateLine("New tokens, at most", figures["max_new_tokens"], key="max-new-tokens"),
        ],
        warnings=services.generate_warnings(config),
    )


@require_POST
@research_required
def generate_estimate(request: HttpRequest) -> HttpResponse:
    return estimate_response(
        request, form=GenerateRunForm(request.POST), build=generate_run_config, estimate=_estimate, hint=ESTIMATE_HINT
    )
