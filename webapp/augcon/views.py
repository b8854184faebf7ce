"""AugCon pages: the run form (with a live prompt budget), and a run's browsable split trees."""

from __future__ import annotations

import json
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from webapp.accounts.permissions import research_required
from webapp.core.run_forms import Estimate, EstimateLine, estimate_response, new_run_response
from webapp.runs.models import PipelineRun

from . import selectors, services
from .forms import AugConRunForm, augcon_run_config

ESTIMATE_HINT = "Choose a corpus, a few-shot set and a model to see what the run asks of the model."


@require_http_methods(["GET", "POST"])
@research_required
def augcon_new(request: HttpRequest) -> HttpResponse:
    return new_run_response(
        request,
        form=AugConRunForm(request.POST or None),
        build=augcon_run_config,
        kind="augcon",
        run_label="AugCon",
        template="augcon/new.html",
        context={
            "defaults": services.defaults_table(),
            "presets": services.preset_table(),
            "estimate_hint": ESTIMATE_HINT,
        },
    )


def _estimate(form: AugConRunForm, config: dict[str, Any]) -> Estimate:
    """The prompt budget of the built config: calls and tokens per stage, from the chosen documents' texts."""
    budget = services.augcon_budget(config)
    figures = (
        ("Documents", len(config["document_positions"]), "documents"),
        ("Root chunks", budget.chunks, "chunks"),
        ("Questions to keep (gen_count)", budget.question_quota, "question-quota"),
        ("Questions to generate (× over-generation)", budget.question_target, "question-target"),
        ("Question-and-split calls, expected", budget.cst_calls_expected, "cst-calls"),
        ("… worst case (model never follows the format)", budget.cst_calls_worst_case, "cst-calls-worst-case"),
        ("Negative-question calls", budget.negative_calls, "negative-calls"),
        ("Scorer training steps", budget.scorer_steps, "scorer-steps"),
        ("Bootstrap calls (answers + yes/no judging)", budget.bootstrap_calls, "bootstrap-calls"),
        ("Answer calls", budget.answer_calls, "answer-calls"),
        ("Model calls in all, expected", budget.model_calls_expected, "model-calls"),
        ("Prompt tokens, expected", budget.prompt_tokens_expected, "prompt-tokens"),
        ("New tokens, expected", budget.completion_tokens_expected, "completion-tokens"),
        ("New tokens, at most", budget.completion_tokens_at_most, "completion-tokens-at-most"),
    )
    return Estimate(
        lines=[EstimateLine(label, value, key=key) for label, value, key in figures],
        warnings=services.augcon_warnings(config),
        notes=['Tokens at 4 characters each. "Expected" assumes every output parses (one call per question).'],
        resolved=json.dumps(config["augcon"], indent=2),
    )


@require_POST
@research_required
def augcon_estimate(request: HttpRequest) -> HttpResponse:
    """The prompt budget of what the form would queue, or what stops it; refreshed as the form changes."""
    return estimate_response(
        request, form=AugConRunForm(request.POST), build=augcon_run_config, estimate=_estimate, hint=ESTIMATE_HINT
    )


@require_GET
@research_required
def augcon_tree(request: HttpRequest, run_id: int, document_id: str) -> HttpResponse:
    """One document's split trees: every node's context, question, score, and kept or dropped and why."""
    run = get_object_or_404(PipelineRun, pk=run_id, kind="augcon")
    document = selectors.document_trees(run, document_id)
    if document is None:
        raise Http404("This document has no finished trees in this run (yet).")
    return render(request, "augcon/tree.html", {"run": run, "document": document})
