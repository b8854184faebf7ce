"""Runs of every kind: the kinds and their presets, create (through the kind's form), list, get, cancel, resume, log."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Path, Query, Router, Schema

from webapp.runs import selectors, services
from webapp.runs.models import PipelineRun
from webapp.runs.registry import all_run_kinds

from ..auth import RESEARCH_AUTH
from ..errors import ApiProblem
from ..schemas import AUTH_ERRORS, MAX_ID, READ_ERRORS, THROTTLED_ERRORS, WRITE_ERRORS, PageParams, page
from ..services import run_create_from_fields, run_form_presets
from ..throttle import run_create_throttle

router = Router(tags=["runs"], auth=RESEARCH_AUTH)

RunStatus = Literal["queued", "running", "succeeded", "failed", "cancelled", "lost"]


class PresetOut(Schema):
    name: str
    description: str


class RunKindOut(Schema):
    kind: str
    label: str
    trains: bool
    created_here: bool = Field(description="Whether POST /runs creates runs of this kind (it has a run form).")
    presets: list[PresetOut]


class ProgressOut(Schema):
    done: int = Field(description="The current stage's counts.")
    total: int
    fraction: float | None = Field(
        description="The whole run's fraction across its kind's stages, as the run page shows it; for a kind "
        "without a stage plan, done / total; null while neither is known."
    )
    stage_number: int | None = Field(description="Which stage of `stage_count` (1-based), where the kind has a plan.")
    stage_count: int | None
    eta_seconds: float | None


class ArtifactBrief(Schema):
    id: int
    name: str
    kind: str
    row_count: int


class ModelBrief(Schema):
    id: int
    name: str


class RunOut(Schema):
    id: int
    kind: str
    kind_label: str
    name: str
    status: str
    stage: str
    progress: ProgressOut
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str
    config: dict[str, Any]
    summary: dict[str, Any]
    artifacts: list[ArtifactBrief]
    models: list[ModelBrief]
    url: str


class RunPage(Schema):
    count: int
    items: list[RunOut]


class RunCreateIn(Schema):
    kind: str = Field(description="A kind from GET /run-kinds whose `created_here` is true.")
    name: str = Field("", max_length=200)
    preset: str | None = Field(None, description="A preset of the kind (sets the form's `preset` field).")
    fields: dict[str, Any] = Field(
        default_factory=dict, description="The kind's form fields, named as the HTML form posts them."
    )


class RunListParams(PageParams):
    status: RunStatus | None = None
    kind: str | None = Field(None, max_length=30)


class LogOut(Schema):
    lines: list[str]


def _progress(run: PipelineRun) -> dict[str, Any]:
    total = run.progress_total
    whole = selectors.run_progress(run)
    if whole is not None:
        fraction, stage_number, stage_count = whole.fraction, whole.stage_number, whole.stage_count
    else:
        fraction, stage_number, stage_count = (min(1.0, run.progress_done / total) if total else None), None, None
    return {
        "done": run.progress_done,
        "total": total,
        "fraction": fraction,
        "stage_number": stage_number,
        "stage_count": stage_count,
        "eta_seconds": run.eta_seconds,
    }


def run_out(request: HttpRequest, run: PipelineRun) -> dict[str, Any]:
    """A run as the API shows it; its artifacts and models read from `.all()`, so a list's prefetch serves them."""
    return {
        "id": run.pk,
        "kind": run.kind,
        "kind_label": run.kind_label,
        "name": run.name,
        "status": run.status,
        "stage": run.stage,
        "progress": _progress(run),
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "error": run.error,
        "config": run.config,
        "summary": run.summary,
        "artifacts": [
            {"id": artifact.pk, "name": artifact.name, "kind": artifact.kind, "row_count": artifact.row_count}
            for artifact in sorted(run.artifacts.all(), key=lambda artifact: artifact.pk)
        ],
        "models": [
            {"id": model.pk, "name": model.name}
            for model in sorted(run.produced_models.all(), key=lambda model: model.pk)
        ],
        "url": request.build_absolute_uri(run.get_absolute_url()),
    }


@router.get("/run-kinds", response={200: list[RunKindOut], **AUTH_ERRORS}, summary="Run kinds and their presets")
def run_kinds(request: HttpRequest) -> list[dict[str, Any]]:
    return [
        {
            "kind": declaration.kind,
            "label": declaration.label,
            "trains": declaration.trains,
            "created_here": bool(declaration.form),
            "presets": run_form_presets(declaration.kind),
        }
        for declaration in all_run_kinds()
    ]


@router.post(
    "/runs",
    response={201: RunOut, **THROTTLED_ERRORS},
    throttle=[run_create_throttle()],
    summary="Create a run (validated by the kind's form, as on its page)",
)
def run_create(request: HttpRequest, body: RunCreateIn) -> tuple[int, dict[str, Any]]:
    run = run_create_from_fields(
        user=request.auth,
        kind=body.kind,
        fields=body.fields,
        name=body.name,
        preset=body.preset,
        idempotency_key=request.headers.get("Idempotency-Key", "").strip(),
    )
    return 201, run_out(request, run)


@router.get("/runs", response={200: RunPage, **READ_ERRORS}, summary="Runs, newest first")
def run_list(request: HttpRequest, params: Query[RunListParams]) -> dict[str, Any]:
    runs = selectors.run_list(status=params.status or "").prefetch_related("artifacts", "produced_models")
    if params.kind:
        runs = runs.filter(kind=params.kind)
    result = page(runs, params)
    return {"count": result["count"], "items": [run_out(request, run) for run in result["items"]]}


@router.get("/runs/{run_id}", response={200: RunOut, **READ_ERRORS}, summary="One run, with its progress")
def run_get(request: HttpRequest, run_id: int = Path(..., ge=1, le=MAX_ID)) -> dict[str, Any]:
    return run_out(request, selectors.run_get(run_id=run_id))


def _transition(request: HttpRequest, run_id: int, service: Any) -> dict[str, Any]:
    run = selectors.run_get(run_id=run_id)
    try:
        run = service(run=run)
    except services.RunStateError as error:
        raise ApiProblem(409, str(error)) from None
    return run_out(request, selectors.run_get(run_id=run.pk))


@router.post("/runs/{run_id}/cancel", response={200: RunOut, **WRITE_ERRORS}, summary="Ask a run to stop")
def run_cancel(request: HttpRequest, run_id: int = Path(..., ge=1, le=MAX_ID)) -> dict[str, Any]:
    return _transition(request, run_id, services.run_request_cancel)


@router.post(
    "/runs/{run_id}/resume", response={200: RunOut, **WRITE_ERRORS}, summary="Resume a failed, cancelled or lost run"
)
def run_resume(request: HttpRequest, run_id: int = Path(..., ge=1, le=MAX_ID)) -> dict[str, Any]:
    return _transition(request, run_id, services.run_resume)


@router.get("/runs/{run_id}/log", response={200: LogOut, **READ_ERRORS}, summary="The last lines of a run's log")
def run_log(
    request: HttpRequest, run_id: int = Path(..., ge=1, le=MAX_ID), tail: int = Query(200, ge=1, le=10_000)
) -> dict[str, Any]:
    lines = selectors.run_get(run_id=run_id).log_tail.splitlines()
    return {"lines": lines[-tail:]}
