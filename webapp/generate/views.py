"""Start a generate run, with a live preview of what it asks of the model."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from webapp.accounts.permissions import research_required
from webapp.core.forms import add_validation_error
from webapp.library.models import SeedPromptSet
from webapp.runs import services as run_services

from . import services
from .forms import GenerateRunForm


@require_http_methods(["GET", "POST"])
@research_required
def generate_new(request: HttpRequest) -> HttpResponse:
    form = GenerateRunForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            config = services.generate_config_build(
                model=data["model"],
                prompt_set=data["prompt_set"],
                n=data["n"],
                max_tokens=data["max_tokens"],
                temperature=data["temperature"],
                top_p=data["top_p"],
                seed=data["seed"],
                batch_size=data["batch_size"],
                system_prompt=data["system_prompt"],
            )
        except ValidationError as error:
            add_validation_error(form, error)
        else:
            run = run_services.run_create(user=request.user, kind="generate", config=config, name=data["name"])
            messages.success(request, f"Run #{run.pk} queued.")
            return redirect(run)
    return render(
        request,
        "generate/new.html",
        {"form": form, "estimate": _estimate(form)},
        status=400 if form.errors else 200,
    )


@require_GET
@research_required
def generate_estimate(request: HttpRequest) -> HttpResponse:
    return render(request, "generate/partials/_estimate.html", {"estimate": _estimate(GenerateRunForm(request.GET))})


def _estimate(form: GenerateRunForm) -> dict[str, int] | None:
    data = form.data
    try:
        prompt_set = SeedPromptSet.objects.get(pk=int(data.get("prompt_set") or 0))
        return services.generate_cost_estimate(
            prompt_count=prompt_set.prompts.count(),
            n=int(data.get("n") or 1),
            max_tokens=int(data.get("max_tokens") or 128),
        )
    except (ValueError, SeedPromptSet.DoesNotExist):
        return None
