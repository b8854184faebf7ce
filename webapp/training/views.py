"""Training pages: the form (with a live preview of the resolved config) that queues a training run."""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from webapp.accounts.permissions import research_required
from webapp.core.forms import add_validation_error

from . import services
from .forms import TrainingRunForm


def _build(form: TrainingRunForm) -> dict[str, object] | None:
    """The validated run config, or None with the problems added to the form."""
    if not form.is_valid():
        return None
    data = form.cleaned_data
    try:
        return services.training_config_build(
            trainer=data["trainer"],
            model=data["model"],
            dataset=data["dataset"],
            preset=data["preset"],
            training_overrides=form.training_overrides(),
            method_options=form.method_options(),
            devices=data["devices"],
            reference_model=data.get("reference_model"),
        )
    except ValidationError as error:
        add_validation_error(form, error)
        return None


@require_http_methods(["GET", "POST"])
@research_required
def training_new(request: HttpRequest) -> HttpResponse:
    initial = {"dataset": request.GET.get("dataset"), "trainer": request.GET.get("trainer") or "sft"}
    if request.GET.get("preset") in services.PRESETS:  # e.g. AugCon's run page opens its own SFT settings
        initial["preset"] = request.GET["preset"]
    form = TrainingRunForm(request.POST or None, initial=initial)
    if request.method == "POST":
        config = _build(form)
        if config is not None:
            run = services.training_run_create(user=request.user, config=config, name=form.cleaned_data["name"])
            messages.success(request, f"Training run #{run.pk} queued.")
            return redirect(run)
    context = {"form": form, "presets": services.preset_table()}
    return render(request, "training/new.html", context, status=400 if form.errors else 200)


@require_GET
@research_required
def training_preview(request: HttpRequest) -> HttpResponse:
    """What the form would queue: the resolved config, or the problems; refreshed as the form changes."""
    form = TrainingRunForm(request.GET)
    config = _build(form)
    context: dict[str, object] = {"form": form, "resolved": ""}
    if config:
        context["resolved"] = json.dumps(config["config"], indent=2)
        context["effective_batch"] = config["effective_batch"]
        context["lengths"] = services.training_length_preview(
            config=config, model=form.cleaned_data["model"], dataset=form.cleaned_data["dataset"]
        )
    return render(request, "training/partials/_preview.html", context)
