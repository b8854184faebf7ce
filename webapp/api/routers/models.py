"""The model registry: list, one model, its lineage both ways, and registering an OpenAI-compatible endpoint."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest
from ninja import Field, Path, Query, Router, Schema

from webapp.registry import selectors, services
from webapp.registry.forms import EndpointModelForm
from webapp.registry.models import ModelEntry

from ..auth import RESEARCH_AUTH
from ..errors import form_problem, service_problem
from ..schemas import MAX_ID, READ_ERRORS, WRITE_ERRORS, PageParams, page

router = Router(tags=["models"], auth=RESEARCH_AUTH)


class ModelOut(Schema):
    id: int
    name: str
    task: str
    backend: str
    source: str
    path: str
    base_url: str
    served_model_name: str
    api_key_env: str = Field(description="The name of the variable holding the key on the workers (never the key).")
    parent: int | None
    produced_by_run: int | None
    trained_on: int | None
    reward_model: int | None = Field(description="RL policies: the reward model they were trained against.")
    parameter_count: int | None
    metrics: dict[str, Any]
    created_at: datetime
    url: str


class ModelPage(Schema):
    count: int
    items: list[ModelOut]


class ModelListParams(PageParams):
    task: str | None = Field(None, max_length=20)


class ModelBrief(Schema):
    id: int
    name: str


class DescendantOut(Schema):
    id: int
    name: str
    parent: int | None
    depth: int = Field(description="1 for a child of this model, 2 for a grandchild ...")


class RunBrief(Schema):
    id: int
    kind: str
    name: str
    status: str


class LineageOut(Schema):
    model: ModelOut
    ancestors: list[ModelBrief] = Field(description="From the root down to this model's parent.")
    descendants: list[DescendantOut]
    runs_using: list[RunBrief] = Field(description="Runs whose config names this model.")


class EndpointIn(Schema):
    name: str
    base_url: str
    served_model_name: str
    api_key_env: str = ""


def model_out(request: HttpRequest, entry: ModelEntry) -> dict[str, Any]:
    return {
        "id": entry.pk,
        "name": entry.name,
        "task": entry.task,
        "backend": entry.backend,
        "source": entry.source,
        "path": entry.path,
        "base_url": entry.base_url,
        "served_model_name": entry.served_model_name,
        "api_key_env": entry.api_key_env,
        "parent": entry.parent_id,
        "produced_by_run": entry.produced_by_run_id,
        "trained_on": entry.trained_on_id,
        "reward_model": entry.reward_model_id,
        "parameter_count": entry.parameter_count,
        "metrics": entry.metrics,
        "created_at": entry.created_at,
        "url": request.build_absolute_uri(entry.get_absolute_url()),
    }


@router.get("/models", response={200: ModelPage, **READ_ERRORS}, summary="Registered models, by name")
def model_list(request: HttpRequest, params: Query[ModelListParams]) -> dict[str, Any]:
    entries = ModelEntry.objects.order_by("name")
    if params.task:
        entries = entries.filter(task=params.task)
    result = page(entries, params)
    return {"count": result["count"], "items": [model_out(request, entry) for entry in result["items"]]}


def _entry(model_id: int) -> ModelEntry:
    try:
        return ModelEntry.objects.get(pk=model_id)
    except ModelEntry.DoesNotExist:
        raise Http404("No model with this id.") from None


@router.get("/models/{model_id}", response={200: ModelOut, **READ_ERRORS}, summary="One model")
def model_get(request: HttpRequest, model_id: int = Path(..., ge=1, le=MAX_ID)) -> dict[str, Any]:
    return model_out(request, _entry(model_id))


@router.get(
    "/models/{model_id}/lineage",
    response={200: LineageOut, **READ_ERRORS},
    summary="A model's ancestors, descendants and runs",
)
def model_lineage(request: HttpRequest, model_id: int = Path(..., ge=1, le=MAX_ID)) -> dict[str, Any]:
    try:
        detail = selectors.model_detail(model_id)
    except ModelEntry.DoesNotExist:
        raise Http404("No model with this id.") from None
    return {
        "model": model_out(request, detail.entry),
        "ancestors": [{"id": entry.pk, "name": entry.name} for entry in detail.ancestors],
        "descendants": [
            {"id": row.entry.pk, "name": row.entry.name, "parent": row.entry.parent_id, "depth": row.depth}
            for row in detail.descendants
        ],
        "runs_using": [
            {"id": run.pk, "kind": run.kind, "name": run.name, "status": run.status} for run in detail.runs_using
        ],
    }


@router.post(
    "/models",
    response={201: ModelOut, **WRITE_ERRORS},
    summary="Register an OpenAI-compatible endpoint (the page's rules: the endpoint policy, key variable names)",
)
def model_register_endpoint(request: HttpRequest, body: EndpointIn) -> tuple[int, dict[str, Any]]:
    form = EndpointModelForm(body.dict())
    if not form.is_valid():
        raise form_problem(form)
    try:
        entry = services.model_register_endpoint(**form.cleaned_data)
    except ValidationError as error:
        raise service_problem(form, error) from None
    return 201, model_out(request, entry)
