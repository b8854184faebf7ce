"""SPIN pages: the run form with a cost preview; the iterations live on the run page (run_page.py)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from webapp.accounts.permissions import research_required
from webapp.core.forms import add_validation_error
from webapp.runs import services as run_services

from . import services
from .forms import SpinRunForm


def _build(form: SpinRunForm) -> dict | None:  # type: ignore[type-arg]
    if not form.is_valid():
        return None
    data = form.cleaned_data
    try:
        return services.spin_config_build(
            model=data["model"],
            dataset=data["dataset"],
            preset=data["preset"],
            iterations=data["iterations"],
            max_prompts=data["max_prompts"],
            max_new_tokens=data["max_new_tokens"],
            training_overrides=form.training_overrides(),
            beta=data["beta"],
            mix_previous=data["mix_previous"],
            devices=data["devices"],
            conversation_turn=data["conversation_turn"],
        )
    except ValidationError as error:
        add_validation_error(form, error)
        return None


@require_http_methods(["GET", "POST"])
@research_required
def spin_new(request: HttpRequest) -> HttpResponse:
    form = SpinRunForm(request.POST or None, initial={"dataset": request.GET.get("dataset")})
    estimate = None
    if request.method == "POST":
        config = _build(form)
        if config is not None:
            if "preview" not in request.POST:
                run = run_services.run_create(kind="spin", user=request.user, config=config, name=form.cleaned_data["name"])
                messages.success(request, f"SPIN run #{run.pk} queued.")
                return redirect(run)
            dataset = form.cleaned_data["dataset"]
            try:
                estimate = services.spin_cost_estimate(prompt_count=dataset.row_count, config=config, dataset=dataset)
            except ValidationError as error:
                add_validation_error(form, error)
    return render(request, "spin/new.html", {"form": form, "estimate": estimate}, status=400 if form.errors else 200)
