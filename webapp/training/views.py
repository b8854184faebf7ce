"""Training pages: the forms (with a live estimate: the resolved config and what it asks for) that queue a training
run, and the RL run (a policy against a reward model), which has its own form."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods, require_POST

from webapp.accounts.permissions import research_required
from webapp.core.run_forms import Estimate, EstimateLine, EstimateWarning, estimate_response, new_run_response
from webapp.runs.registry import run_kind

from . import rl_services, services
from .forms import TrainingRunForm, training_run_config
from .rl_forms import RLRunForm, rl_run_config

ESTIMATE_HINT = "Change a field to see the resolved settings."
RL_ESTIMATE_HINT = "Choose a policy, a reward model and prompts to see the resolved settings."


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
        context={
            "presets": services.preset_table(),
            "estimate_hint": ESTIMATE_HINT,
            "rl_label": run_kind(rl_services.RL_KIND).label,
        },
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


@require_http_methods(["GET", "POST"])
@research_required
def rl_new(request: HttpRequest) -> HttpResponse:
    """RL from a reward model: its own form (a policy, a reward model, prompts), queued as a `train_rl` run."""
    initial = {key: request.GET[key] for key in ("model", "reward_model", "prompt_set") if request.GET.get(key)}
    return new_run_response(
        request,
        form=RLRunForm(request.POST or None, initial=initial),
        build=rl_run_config,
        kind=rl_services.RL_KIND,
        run_label="RL",
        template="training/rl_new.html",
        context={"presets": rl_services.rl_preset_table(), "estimate_hint": RL_ESTIMATE_HINT},
    )


def _rl_estimate(form: RLRunForm, config: dict[str, Any]) -> Estimate:
    """What each step samples and how long the run is."""
    settings = config["config"]
    training = settings["training"]
    steps = training["max_steps"] if training["max_steps"] > 0 else f"{training['num_epochs']:g} passes over the prompts"
    lines = [
        EstimateLine("Each step", config["effective_batch"], key="rollouts"),
        EstimateLine(
            "Steps",
            steps,
            note=f"held-out reward and KL every {settings['eval_steps']} steps on {settings['held_out_prompts']} prompts",
            key="steps",
        ),
    ]
    return Estimate(lines=lines, resolved=json.dumps(settings, indent=2))


@require_POST
@research_required
def rl_estimate(request: HttpRequest) -> HttpResponse:
    """What the RL form would queue, refreshed as the form changes."""
    return estimate_response(
        request, form=RLRunForm(request.POST), build=rl_run_config, estimate=_rl_estimate, hint=RL_ESTIMATE_HINT
    )
