"""AFT pages: start a propose-and-aggregate run (with a cost preview), build aggregation data, browse a prompt's layers."""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from pipelines.aft.config import AftConfig
from webapp.accounts.permissions import research_required
from webapp.core.forms import add_validation_error
from webapp.runs import selectors as run_selectors
from webapp.runs import services as run_services

from . import run_page, services
from .forms import AftInferenceForm, AggregationDataForm


def _inference_config(form: AftInferenceForm) -> AftConfig | None:
    """The AFT config the form describes (YAML first), or None with the problems added to the form."""
    if not form.is_valid():
        return None
    data = form.cleaned_data
    try:
        if data.get("yaml_config", "").strip():
            return services.inference_config_from_yaml(
                data["yaml_config"], source=data.get("yaml_source") or "the YAML config", mode=data["mode"]
            )
        return services.inference_config_from_fields(**form.sampling_fields())  # type: ignore[arg-type]
    except ValidationError as error:
        add_validation_error(form, error)
        return None


def _estimate(form: AftInferenceForm, config: AftConfig | None) -> dict[str, object] | None:
    prompt_set = form.cleaned_data.get("prompt_set") if hasattr(form, "cleaned_data") else None
    if config is None or prompt_set is None:
        return None
    return services.inference_cost_estimate(aft=config, prompt_count=prompt_set.prompts.count())


@require_http_methods(["GET", "POST"])
@research_required
def aft_new(request: HttpRequest) -> HttpResponse:
    form = AftInferenceForm(request.POST or None, request.FILES or None)
    estimate = None
    if request.method == "POST":
        config = _inference_config(form)
        estimate = _estimate(form, config)
        if config is not None:
            try:
                run_config = services.inference_config_build(
                    model=form.cleaned_data["model"], prompt_set=form.cleaned_data["prompt_set"], aft=config
                )
            except ValidationError as error:
                add_validation_error(form, error)
            else:
                run = run_services.run_create(kind="aft_inference", user=request.user, config=run_config, name=form.cleaned_data["name"])
                messages.success(request, f"AFT run #{run.pk} queued.")
                return redirect(run)
    context = {"form": form, "estimate": estimate}
    return render(request, "aft/new.html", context, status=400 if form.errors else 200)


@require_GET
@research_required
def aft_estimate(request: HttpRequest) -> HttpResponse:
    """The cost of what the form would queue, refreshed as the form changes."""
    form = AftInferenceForm(request.GET)
    config = _inference_config(form)
    return render(request, "aft/partials/_estimate.html", {"form": form, "estimate": _estimate(form, config)})


@require_http_methods(["GET", "POST"])
@research_required
def aft_data_new(request: HttpRequest) -> HttpResponse:
    initial = {"source": request.GET.get("source")}
    form = AggregationDataForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            config = services.data_config_build(
                source=form.cleaned_data["source"], model=form.cleaned_data.get("model"), options=form.options()
            )
        except ValidationError as error:
            add_validation_error(form, error)
        else:
            run = run_services.run_create(kind="aft_data", user=request.user, config=config, name=form.cleaned_data["name"])
            messages.success(request, f"Aggregation data run #{run.pk} queued.")
            return redirect(run)
    return render(request, "aft/data_new.html", {"form": form}, status=400 if form.errors else 200)


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
