"""Model registry pages: the lineage tree, one model's page, and the two ways to register a model."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from webapp.accounts.permissions import research_required
from webapp.core.forms import add_validation_error

from . import selectors, services
from .forms import EndpointModelForm, LocalModelForm
from .models import ModelEntry


@require_GET
@research_required
def model_list(request: HttpRequest) -> HttpResponse:
    return _render_list(request, LocalModelForm(), EndpointModelForm())


@require_GET
@research_required
def model_detail(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        detail = selectors.model_detail(pk)
    except ModelEntry.DoesNotExist:
        raise Http404("No model with this id.") from None
    return render(request, "registry/model_detail.html", {"detail": detail, "entry": detail.entry})


def _render_list(
    request: HttpRequest, local_form: LocalModelForm, endpoint_form: EndpointModelForm, status: int = 200
) -> HttpResponse:
    context = {"rows": selectors.model_lineage_rows(), "local_form": local_form, "endpoint_form": endpoint_form}
    return render(request, "registry/model_list.html", context, status=status)


@require_POST
@research_required
def model_register_local(request: HttpRequest) -> HttpResponse:
    form = LocalModelForm(request.POST)
    if form.is_valid():
        try:
            entry = services.model_register_local(**form.cleaned_data)
        except ValidationError as error:
            add_validation_error(form, error)
        else:
            messages.success(request, f"Registered {entry.name}.")
            return redirect("registry:list")
    return _render_list(request, form, EndpointModelForm(), status=400)


@require_POST
@research_required
def model_register_endpoint(request: HttpRequest) -> HttpResponse:
    form = EndpointModelForm(request.POST)
    if form.is_valid():
        try:
            entry = services.model_register_endpoint(**form.cleaned_data)
        except ValidationError as error:
            add_validation_error(form, error)
        else:
            messages.success(request, f"Registered {entry.name}.")
            return redirect("registry:list")
    return _render_list(request, LocalModelForm(), form, status=400)
