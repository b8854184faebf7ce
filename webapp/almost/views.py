"""ALMoST pages: the run form with the rubric editor (reorder, default ordering) and its cost estimate."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from webapp.accounts.permissions import research_required
from webapp.core.run_forms import Estimate, EstimateLine, estimate_response, new_run_response
from webapp.library.models import SeedPromptSet
from webapp.registry.models import ModelEntry
from webapp.runs.models import PipelineRun

from . import services
from .forms import AlmostRunForm, almost_run_config, rubric_rows
from .policy_evaluation import policy_evaluation_create
from .rubric_editor import initial_rubric, is_editor_action, rubric_edit

TEMPLATE = "almost/new.html"
ESTIMATE_HINT = "Change a field to see how much this run asks of the models."


@require_http_methods(["GET", "POST"])
@research_required
def almost_new(request: HttpRequest) -> HttpResponse:
    """The form; an editor button (add, sort, up/down/remove) redraws the rubric, any other POST starts the run."""
    action = request.POST.get("action", "start")
    if request.method == "POST" and is_editor_action(action):
        form = AlmostRunForm(request.POST, rubric_rows=rubric_edit(action, rubric_rows(request.POST)))
        return render(request, TEMPLATE, _page_context(form, show_errors=False))
    if request.method == "GET":
        form = AlmostRunForm(initial=_initial_choices(), rubric_rows=initial_rubric())
    else:
        form = AlmostRunForm(request.POST)
    return new_run_response(
        request,
        form=form,
        build=almost_run_config,
        kind="almost",
        run_label="ALMoST",
        template=TEMPLATE,
        context=lambda shown: _page_context(shown, show_errors=True),
    )


def _initial_choices() -> dict[str, Any]:
    """The first seed set and the first trainable generation model, preselected."""
    reward_model = (
        ModelEntry.objects.filter(backend=ModelEntry.Backend.TRANSFORMERS, task=ModelEntry.Task.GENERATION)
        .order_by("pk")
        .first()
    )
    return {"seed_prompt_set": SeedPromptSet.objects.order_by("pk").first(), "reward_model": reward_model}


def _page_context(form: AlmostRunForm, *, show_errors: bool) -> dict[str, Any]:
    # The editor's redraw binds the form to keep what was typed, but shows no errors for half-filled rows.
    return {"form": form, "rubric": form.rubric, "show_errors": show_errors, "estimate_hint": ESTIMATE_HINT}


def _estimate(form: AlmostRunForm, config: dict[str, Any]) -> Estimate:
    """Generations, new tokens and reward-model steps the run implies (upper bounds), and how the reward model trains."""
    figures = services.almost_cost_estimate(config)
    batch = figures["reward_batch"]
    raw_format = figures["reward_prompt_format"] == "raw_assistant"
    return Estimate(
        lines=[
            EstimateLine(
                "Prompt candidates (model calls)",
                f"{figures['prompt_candidates_min']} – {figures['prompt_candidates_max']}",
                key="prompt-candidates",
            ),
            EstimateLine("Responses (prompts × configurations)", figures["responses"], key="responses"),
            EstimateLine("Comparisons, at most", figures["pairs_max"], key="pairs"),
            EstimateLine("Reward-model steps, at most", figures["reward_steps"], key="reward-steps"),
            EstimateLine(
                "Reward-model batch (pairs a step)",
                batch["text"],
                note="" if batch["effective"] == 128 else f"(paper: {batch['paper']})",
                key="reward-batch",
            ),
            EstimateLine(
                "Reward-model held out (ours)",
                f"{batch['held_out_fraction']} of the pairs",
                note="the paper trains on every pair",
                key="reward-held-out",
            ),
            EstimateLine(
                "Reward-model text format",
                "raw: prompt\\n\\nAssistant: reply<eos> (the paper's)" if raw_format else "the model's chat template",
                note="" if raw_format else "(paper: raw text on a base model)",
                key="reward-format",
            ),
            EstimateLine("RMSP samples", figures["rmsp_samples"], key="rmsp-samples"),
            EstimateLine("Generations, at most", figures["generations_max"], key="generations"),
            EstimateLine("New tokens, at most", figures["new_tokens_max"], key="new-tokens"),
        ],
        warnings=services.almost_warnings(config),
    )


@require_POST
@research_required
def almost_estimate(request: HttpRequest) -> HttpResponse:
    """What the form would ask of the models, or why it would be refused; refreshed as the form changes."""
    return estimate_response(
        request, form=AlmostRunForm(request.POST), build=almost_run_config, estimate=_estimate, hint=ESTIMATE_HINT
    )


@require_POST
@research_required
def almost_evaluate_policies(request: HttpRequest, pk: int) -> HttpResponse:
    """One click: queue the RL-vs-SFT-vs-base win-rate evaluation on the run's held-out prompts."""
    run = get_object_or_404(PipelineRun, pk=pk, kind="almost")
    try:
        evaluation = policy_evaluation_create(run, request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect(run.get_absolute_url())
    return redirect(evaluation.get_absolute_url())
