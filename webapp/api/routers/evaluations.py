"""Win-rate evaluations: create (the page's form and services), read results with their intervals, the leaderboard."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Path, Query, Router, Schema

from webapp.evaluation import selectors, services
from webapp.evaluation.forms import EvaluationForm
from webapp.evaluation.models import Evaluation
from webapp.registry.models import ModelEntry

from ..auth import RESEARCH_AUTH
from ..errors import form_problem, service_problem
from ..schemas import MAX_ID, READ_ERRORS, THROTTLED_ERRORS, PageParams, page, plain
from ..services import form_initial_values
from ..throttle import run_create_throttle

router = Router(tags=["evaluations"], auth=RESEARCH_AUTH)


class EvaluationOut(Schema):
    id: int
    name: str
    status: str
    run: int | None
    judge: int | None
    candidates: list[dict[str, Any]]
    baseline: dict[str, Any]
    prompt_set: int | None
    prompt_source: str
    created_at: datetime
    finished_at: datetime | None
    url: str


class EvaluationDetailOut(EvaluationOut):
    results: dict[str, Any] = Field(description="Win rates per candidate with their confidence intervals.")
    comparisons: int | None = Field(description="The artifact of every judged comparison.")


class EvaluationPage(Schema):
    count: int
    items: list[EvaluationOut]


class EvaluationIn(Schema):
    name: str = Field("", max_length=200)
    fields: dict[str, Any] = Field(
        default_factory=dict, description="The evaluation form's fields, named as the HTML form posts them."
    )
    prompts: list[str] = Field(
        default_factory=list, description="Prompts given inline instead of a prompt set (the page's file import)."
    )


class LeaderboardParams(Schema):
    judge: int | None = Field(None, ge=1, le=MAX_ID, description="The judge model; default: the first with results.")


def evaluation_out(request: HttpRequest, evaluation: Evaluation) -> dict[str, Any]:
    return {
        "id": evaluation.pk,
        "name": evaluation.name,
        "status": evaluation.status,
        "run": evaluation.run_id,
        "judge": evaluation.judge_id,
        "candidates": evaluation.candidates,
        "baseline": evaluation.baseline,
        "prompt_set": evaluation.prompt_set_id,
        "prompt_source": evaluation.prompt_source,
        "created_at": evaluation.created_at,
        "finished_at": evaluation.finished_at,
        "url": request.build_absolute_uri(evaluation.get_absolute_url()),
    }


@router.get("/evaluations", response={200: EvaluationPage, **READ_ERRORS}, summary="Evaluations, newest first")
def evaluation_list(request: HttpRequest, params: Query[PageParams]) -> dict[str, Any]:
    evaluations = Evaluation.objects.select_related("judge", "run", "prompt_set").order_by("-created_at", "-pk")
    result = page(evaluations, params)
    return {"count": result["count"], "items": [evaluation_out(request, item) for item in result["items"]]}


@router.post(
    "/evaluations",
    response={201: EvaluationDetailOut, **THROTTLED_ERRORS},
    throttle=[run_create_throttle()],
    summary="Create an evaluation and queue its run (the page's form and rules)",
)
def evaluation_create(request: HttpRequest, body: EvaluationIn) -> tuple[int, dict[str, Any]]:
    given = {key: value for key, value in body.fields.items() if value is not None and key != "prompts_file"}
    form = EvaluationForm({**form_initial_values(EvaluationForm), **given, "name": body.name})
    if not form.is_valid():
        raise form_problem(form)
    data = form.cleaned_data
    try:
        evaluation = services.evaluation_create_from_form(
            user=request.auth,
            data=data,
            imported_prompts=[prompt for prompt in body.prompts if prompt.strip()],
            prompt_source="prompts given to the API" if body.prompts else "",
        )
    except ValidationError as error:
        raise service_problem(form, error) from None
    return 201, evaluation_detail_out(request, evaluation)


def evaluation_detail_out(request: HttpRequest, evaluation: Evaluation) -> dict[str, Any]:
    return {
        **evaluation_out(request, evaluation),
        "results": evaluation.results,
        "comparisons": evaluation.comparisons_id,
    }


@router.get(
    "/evaluations/{evaluation_id}",
    response={200: EvaluationDetailOut, **READ_ERRORS},
    summary="One evaluation with its results (win rates and intervals)",
)
def evaluation_get(request: HttpRequest, evaluation_id: int = Path(..., ge=1, le=MAX_ID)) -> dict[str, Any]:
    evaluation = get_object_or_404(Evaluation.objects.select_related("judge", "run"), pk=evaluation_id)
    return evaluation_detail_out(request, evaluation)


@router.get(
    "/leaderboard",
    response={200: dict[str, Any], **READ_ERRORS},
    summary="Bradley-Terry ratings of every contestant a judge has seen, with bootstrap intervals",
)
def leaderboard(request: HttpRequest, params: Query[LeaderboardParams]) -> dict[str, Any]:
    judges = selectors.leaderboard_judges()
    judge = ModelEntry.objects.filter(pk=params.judge).first() if params.judge else (judges[0] if judges else None)
    board = (
        selectors.leaderboard(judge=judge)
        if judge is not None
        else {"rows": [], "evaluations": 0, "comparisons": 0, "reference": ""}
    )
    return {**plain(board), "judge": plain(judge), "judges": plain(judges)}
