"""AugCon pages: the run form (with a live prompt budget), and a run's browsable split trees."""
from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from webapp.accounts.permissions import research_required
from webapp.core.forms import add_validation_error
from webapp.runs import services as run_services
from webapp.runs.models import PipelineRun

from . import selectors, services
from .forms import AugConRunForm


def _build(form: AugConRunForm) -> dict[str, object] | None:
    """The validated run config, or None with the problems added to the form."""
    if not form.is_valid():
        return None
    data = form.cleaned_data
    try:
        return services.augcon_config_build(
            model=data["model"],
            corpus=data["corpus"],
            few_shot_set=data["few_shot_set"],
            scorer_model=data.get("scorer_model"),
            documents=data.get("documents") or "",
            max_documents=data.get("max_documents"),
            preset=data.get("preset") or "",
            overrides=form.overrides(),
        )
    except ValidationError as error:
        add_validation_error(form, error)
        return None


@require_http_methods(["GET", "POST"])
@research_required
def augcon_new(request: HttpRequest) -> HttpResponse:
    form = AugConRunForm(request.POST or None)
    if request.method == "POST":
        config = _build(form)
        if config is not None:
            run = run_services.run_create(kind="augcon", user=request.user, config=config, name=form.cleaned_data["name"])
            messages.success(request, f"AugCon run #{run.pk} queued.")
            return redirect(run)
    context = {"form": form, "defaults": services.defaults_table(), "presets": services.preset_table()}
    return render(request, "augcon/new.html", context, status=400 if form.errors else 200)


@require_GET
@research_required
def augcon_estimate(request: HttpRequest) -> HttpResponse:
    """The prompt budget of what the form would queue, or what stops it; refreshed as the form changes."""
    form = AugConRunForm(request.GET)
    config = _build(form) if request.GET else None
    budget = services.augcon_budget(config) if config else None
    resolved = json.dumps(config["augcon"], indent=2) if config else ""
    return render(
        request,
        "augcon/partials/_estimate.html",
        {"form": form, "budget": budget, "resolved": resolved, "asked": bool(request.GET),
         "documents": len(config["document_positions"]) if config else 0},
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
