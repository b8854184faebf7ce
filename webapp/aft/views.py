"""AFT pages: start a propose-and-aggregate run (with a cost estimate), build aggregation data, browse a prompt's layers."""

from __future__ import annotations

import json
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from pipelines.aft.config import AftConfig
from webapp.accounts.permissions import research_required
from webapp.core.run_forms import Estimate, EstimateLine, estimate_response, new_run_response
from webapp.runs import selectors as run_selectors

from . import run_page, services
from .forms import AftInferenceForm, AggregationDataForm, aft_data_run_config, aft_inference_run_config

ESTIMATE_HINT = "Choose a model and a prompt set to see how much this run asks of the model."


@require_http_methods(["GET", "POST"])
@research_required
def aft_new(request: HttpRequest) -> HttpResponse:
    return new_run_response(
        request,
        form=AftInferenceForm(request.POST or None, request.FILES or None),
        build=aft_inference_run_config,
        kind="aft_inference",
        run_label="AFT",
        template="aft/new.html",
        context={"estimate_hint": ESTIMATE_HINT},
    )


def _layer_sampling(layer: dict[str, Any]) -> str:
    return "greedy" if layer["temperature"] == 0 else f"T {layer['temperature']}, top_p {layer['top_p']}"


def _inference_estimate(form: AftInferenceForm, config: dict[str, Any]) -> Estimate:
    """What the config asks of the model over the prompt set, at most, beside plain sampling's cost."""
    aft = AftConfig.from_dict(config["aft"])
    figures = services.inference_cost_estimate(aft=aft, prompt_count=form.cleaned_data["prompt_set"].prompts.count())
    layer_lines = [
        EstimateLine(
            layer["name"],
            f"{layer['samples']} × ≤{layer['max_tokens']} tokens",
            note=_layer_sampling(layer),
            key=f"layer-{position}",
        )
        for position, layer in enumerate(figures["layers"])
    ]
    return Estimate(
        lines=[
            EstimateLine("Prompts", figures["prompts"], key="prompts"),
            *layer_lines,
            EstimateLine("Generations per prompt", figures["generations_per_prompt"], key="generations-per-prompt"),
            EstimateLine("Generations in all", figures["generations"], key="generations"),
            EstimateLine("New tokens, at most", figures["max_new_tokens"], key="max-new-tokens"),
            EstimateLine("Model calls", figures["model_calls"], key="model-calls"),
            EstimateLine(
                "Plain sampling, at most",
                f"{figures['single_sample_max_new_tokens']} tokens",
                key="single-sample-max-new-tokens",
            ),
        ],
        warnings=services.inference_warnings(aft),
        notes=[f"{figures['times_single_sample']} generations per answer, against 1 for plain sampling."],
        resolved=json.dumps(config["aft"], indent=2),
    )


@require_POST
@research_required
def aft_estimate(request: HttpRequest) -> HttpResponse:
    """The cost of what the form would queue, or its problems; refreshed as the form changes."""
    return estimate_response(
        request,
        form=AftInferenceForm(request.POST, request.FILES),
        build=aft_inference_run_config,
        estimate=_inference_estimate,
        hint=ESTIMATE_HINT,
    )


@require_http_methods(["GET", "POST"])
@research_required
def aft_data_new(request: HttpRequest) -> HttpResponse:
    return new_run_response(
        request,
        form=AggregationDataForm(request.POST or None, initial={"source": request.GET.get("source")}),
        build=aft_data_run_config,
        kind="aft_data",
        run_label="Aggregation data",
        template="aft/data_new.html",
    )


@require_GET
@research_required
def aft_prompt(request: HttpRequest, run_id: int) -> HttpResponse:
    """One prompt's proposals, aggregation layers and final answer (a partial for htmx, else a page)."""
    run = run_selectors.run_get(run_id=run_id)
    if run.kind != "aft_inference":
        raise Http404("Only propose-and-aggregate runs have layers to show.")
    context = {"run": run, **run_page.prompt_context(run, request.GET.get("prompt_id") or None)}
    template = "aft/partials/_prompt_layers.html" if request.htmx else "aft/prompt.html"
    return render(request, template, context)
