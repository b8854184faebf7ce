"""Annotation campaigns: researchers create, read statistics, export and write back; annotators see their own assignments.

An annotator's token reaches `/assignments` only: the campaigns assigned to them with their own
progress (never another annotator's verdicts or the synthetic label). Everything else here is for
researchers and admins, as on the pages.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.http import HttpRequest, StreamingHttpResponse
from django.urls import reverse
from ninja import Field, Path, Query, Router, Schema

from webapp.annotation import selectors, services
from webapp.annotation.forms import CampaignForm, WriteBackForm
from webapp.annotation.models import Campaign

from ..auth import EVERY_ROLE_AUTH, RESEARCH_AUTH
from ..errors import form_problem, service_problem
from ..schemas import MAX_ID, READ_ERRORS, WRITE_ERRORS, PageParams, page, plain
from ..services import form_initial_values
from .artifacts import ArtifactOut, artifact_out

router = Router(tags=["annotation"], auth=RESEARCH_AUTH)
assignments_router = Router(tags=["annotation"], auth=EVERY_ROLE_AUTH)
CampaignId = Path(..., ge=1, le=MAX_ID)


class CampaignOut(Schema):
    id: int
    name: str
    artifact: int
    rubric: int
    pair_format: str
    sample_size: int
    sampling: str
    group_by: str
    overlap: int
    lease_minutes: int
    flags: list[str]
    ask_comment: bool
    is_open: bool
    seed: int
    items: int
    assignees: list[str]
    created_at: datetime
    url: str


class CampaignPage(Schema):
    count: int
    items: list[CampaignOut]


class CampaignIn(Schema):
    name: str
    artifact: int = Field(description="A dataset of pairs (prompt/chosen/rejected or prompt/response_a/response_b).")
    rubric: int
    assignees: list[int] = Field(description="User ids of who judges (any role).")
    sample_size: int | None = None
    sampling: str | None = None
    group_by: str | None = None
    overlap: int | None = None
    lease_minutes: int | None = None
    flags: str | None = Field(None, description="Comma-separated flags annotators may tick.")
    ask_comment: bool | None = None
    seed: int | None = None


class WriteBackIn(Schema):
    rule: str = Field("drop_disagreements", description="How to treat pairs the humans disagreed with.")


class ExportParams(Schema):
    format: Literal["jsonl", "json"] = "jsonl"
    history: bool = Field(False, description="Include withdrawn (undone) judgments.")


class AssignmentOut(Schema):
    campaign: int
    name: str
    is_open: bool
    guidelines: str
    judged: int
    left: int
    total: int
    percent: int
    workspace_url: str


def campaign_out(request: HttpRequest, campaign: Campaign) -> dict[str, Any]:
    fields = (
        "name", "pair_format", "sample_size", "sampling", "group_by", "overlap", "lease_minutes",
        "flags", "ask_comment", "is_open", "seed", "created_at",
    )  # fmt: skip
    return {
        "id": campaign.pk,
        **{name: getattr(campaign, name) for name in fields},
        "artifact": campaign.artifact_id,
        "rubric": campaign.rubric_id,
        # The list's selector counts items in its query (`item_count`); one campaign counts them here.
        "items": getattr(campaign, "item_count", None) or campaign.items.count(),
        "assignees": sorted(user.username for user in campaign.assignees.all()),
        "url": request.build_absolute_uri(campaign.get_absolute_url()),
    }


@router.get("/campaigns", response={200: CampaignPage, **READ_ERRORS}, summary="Annotation campaigns, newest first")
def campaign_list(request: HttpRequest, params: Query[PageParams]) -> dict[str, Any]:
    result = page(selectors.campaign_list().prefetch_related("assignees"), params)
    return {"count": result["count"], "items": [campaign_out(request, campaign) for campaign in result["items"]]}


@router.post("/campaigns", response={201: CampaignOut, **WRITE_ERRORS}, summary="Create a campaign (the page's form)")
def campaign_create(request: HttpRequest, body: CampaignIn) -> tuple[int, dict[str, Any]]:
    given = {key: value for key, value in body.dict().items() if value is not None}
    form = CampaignForm({**form_initial_values(CampaignForm), **given})
    if not form.is_valid():
        raise form_problem(form)
    try:
        campaign = services.campaign_create_from_form(user=request.auth, data=form.cleaned_data)
    except ValidationError as error:
        raise service_problem(form, error) from None
    return 201, campaign_out(request, campaign)


@router.get("/campaigns/{campaign_id}", response={200: CampaignOut, **READ_ERRORS}, summary="One campaign")
def campaign_get(request: HttpRequest, campaign_id: int = CampaignId) -> dict[str, Any]:
    return campaign_out(request, selectors.campaign_get(campaign_id=campaign_id))


@router.get(
    "/campaigns/{campaign_id}/statistics",
    response={200: dict[str, Any], **READ_ERRORS},
    summary="Progress, agreement (kappa, alpha), synthetic-label accuracy with intervals, disagreements",
)
def campaign_statistics(request: HttpRequest, campaign_id: int = CampaignId) -> dict[str, Any]:
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    return plain(selectors.campaign_statistics(campaign=campaign))


@router.get(
    "/campaigns/{campaign_id}/export",
    response={**READ_ERRORS},
    summary="Every current judgment (with ?history=true, withdrawn ones too), as JSONL or JSON",
    openapi_extra={
        "responses": {
            200: {
                "description": "One judgment per line (JSONL), or a JSON array.",
                "content": {
                    "application/jsonl": {"schema": {"type": "string"}},
                    "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
                },
            }
        }
    },
)
def campaign_export(
    request: HttpRequest, params: Query[ExportParams], campaign_id: int = CampaignId
) -> StreamingHttpResponse:
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    rows = selectors.judgment_export_rows(campaign=campaign, include_withdrawn=params.history)

    def lines() -> Iterator[str]:
        for row in rows:
            yield json.dumps(row, ensure_ascii=False, default=str) + "\n"

    if params.format == "json":
        response = StreamingHttpResponse(
            [json.dumps(rows, ensure_ascii=False, indent=1, default=str)], content_type="application/json"
        )
    else:
        response = StreamingHttpResponse(lines(), content_type="application/jsonl")
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-judgments.{params.format}"'
    return response


@router.post(
    "/campaigns/{campaign_id}/write-back",
    response={201: ArtifactOut, **WRITE_ERRORS},
    summary="Write the human-checked pairs as a new preference dataset",
)
def campaign_write_back(
    request: HttpRequest, body: WriteBackIn, campaign_id: int = CampaignId
) -> tuple[int, dict[str, Any]]:
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    form = WriteBackForm(body.dict())
    if not form.is_valid():
        raise form_problem(form)
    try:
        artifact = services.campaign_write_back(campaign=campaign, rule=form.cleaned_data["rule"])
    except ValidationError as error:
        raise service_problem(form, error) from None
    return 201, artifact_out(request, artifact)


def assignment_out(request: HttpRequest, entry: dict[str, Any]) -> dict[str, Any]:
    campaign, progress = entry["campaign"], entry["progress"]
    return {
        "campaign": campaign.pk,
        "name": campaign.name,
        "is_open": campaign.is_open,
        "guidelines": campaign.rubric.guidelines,
        **{name: progress[name] for name in ("judged", "left", "total", "percent")},
        "workspace_url": request.build_absolute_uri(reverse("annotation:workspace", args=[campaign.pk])),
    }


@assignments_router.get(
    "/assignments",
    response={200: list[AssignmentOut], **READ_ERRORS},
    summary="The campaigns assigned to you, with your own progress (every role)",
)
def assignment_list(request: HttpRequest) -> list[dict[str, Any]]:
    return [assignment_out(request, entry) for entry in selectors.campaigns_for_annotator(user=request.auth)]
