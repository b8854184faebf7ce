"""Annotation pages: researchers create campaigns and read their statistics; assignees use the workspace.

The workspace is one htmx partial: a judgment is stored by the POST that returns the next item, so
nothing new is shown before the previous answer is in the database.
"""

from __future__ import annotations

import csv
import json
import uuid
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from webapp.accounts.permissions import ALL_ROLES, research_required, role_required
from webapp.core.forms import add_validation_error
from webapp.core.spreadsheet import spreadsheet_safe_row

from . import selectors, services
from .forms import CampaignForm, JudgmentForm, WriteBackForm
from .models import Campaign, Item, Judgment

WORKSPACE_PARTIAL = "annotation/partials/_workspace.html"


def _side_names(campaign: Campaign) -> dict[str, str]:
    if campaign.pair_format == Campaign.PairFormat.PREFERENCE:
        return {"a": "chosen", "b": "rejected", "tie": "tie", "both_bad": "both bad", "": "—"}
    return {"a": "response_a", "b": "response_b", "tie": "tie", "both_bad": "both bad", "": "—"}


# ---------------------------------------------------------------- researchers


@require_GET
@research_required
def campaign_list(request: HttpRequest) -> HttpResponse:
    return render(request, "annotation/campaign_list.html", {"campaigns": selectors.campaign_list()})


@require_http_methods(["GET", "POST"])
@research_required
def campaign_new(request: HttpRequest) -> HttpResponse:
    form = CampaignForm(request.POST or None, initial={"artifact": request.GET.get("artifact")})
    if request.method == "POST" and form.is_valid():
        try:
            campaign = services.campaign_create_from_form(user=request.user, data=form.cleaned_data)
        except ValidationError as error:
            add_validation_error(form, error)
        else:
            messages.success(request, f"Campaign “{campaign.name}” created with {campaign.items.count()} items.")
            return redirect(campaign)
    return render(request, "annotation/campaign_new.html", {"form": form}, status=400 if form.errors else 200)


@require_GET
@research_required
def campaign_detail(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """The statistics page: progress, agreement, synthetic-label accuracy, disagreements, export, write-back."""
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    figures = selectors.campaign_statistics(campaign=campaign)
    names = _side_names(campaign)
    disagreements = [
        {
            "item_id": item.item_id,
            "position": item.position,
            "group": item.group,
            "synthetic": names[item.synthetic_label],
            "majority": names[item.human_majority] if item.human_majority else "no majority",
            "votes": ", ".join(f"{who}: {names[verdict]}" for who, verdict in sorted(item.votes.items())),
        }
        for item in figures["disagreements"]
    ]
    outcomes = [
        (key.replace("human_", "human says ").replace("_", " "), count)
        for key, count in sorted(figures["synthetic"]["outcomes"].items())
    ]
    verdict_counts = [(names[key], count) for key, count in sorted(figures["human_verdicts"].items())]
    context = {
        "campaign": campaign,
        "figures": figures,
        "disagreements": disagreements,
        "outcomes": outcomes,
        "verdict_counts": verdict_counts,
        "write_back_form": WriteBackForm(),
        "has_synthetic_label": campaign.has_synthetic_label,
    }
    return render(request, "annotation/campaign_detail.html", context)


@require_GET
@research_required
def campaign_export(request: HttpRequest, campaign_id: int, fmt: str) -> HttpResponse:
    """Every current judgment (and, with ?history=1, withdrawn ones) as CSV or JSON."""
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    if fmt not in ("csv", "json"):
        return HttpResponseBadRequest(f"Unknown export format {fmt!r}; use csv or json.")
    rows = selectors.judgment_export_rows(campaign=campaign, include_withdrawn=request.GET.get("history") == "1")
    filename = f"campaign-{campaign.pk}-judgments.{fmt}"
    if fmt == "json":
        response = HttpResponse(json.dumps(rows, ensure_ascii=False, indent=1), content_type="application/json")
    else:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        columns = list(rows[0]) if rows else ["campaign_id", "item_id", "annotator", "verdict"]
        writer = csv.DictWriter(response, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow(
                spreadsheet_safe_row(
                    {
                        **row,
                        "flags": "; ".join(row.get("flags", [])),
                        "provenance": json.dumps(row.get("provenance", {}), ensure_ascii=False),
                    }
                )
            )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_POST
@research_required
def campaign_write_back(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Write the human-checked pairs as a new preference artifact and open it."""
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    form = WriteBackForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose how to treat pairs the humans disagreed with.")
        return redirect(campaign)
    try:
        artifact = services.campaign_write_back(campaign=campaign, rule=form.cleaned_data["rule"])
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect(campaign)
    messages.success(request, f"Wrote {artifact.row_count} checked pairs to “{artifact.name}”; training can use it.")
    return redirect(artifact)


@require_POST
@research_required
def campaign_set_open(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    is_open = request.POST.get("open") == "1"
    services.campaign_set_open(campaign=campaign, is_open=is_open)
    messages.success(request, "Campaign reopened." if is_open else "Campaign closed: no more items are handed out.")
    return redirect(campaign)


@require_GET
@research_required
def item_detail(request: HttpRequest, campaign_id: int, item_id: int) -> HttpResponse:
    """One item with its provenance and every judgment (withdrawn ones too): for reviewing disagreements."""
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    item, judgments = selectors.item_review(campaign=campaign, item_id=item_id)
    names = _side_names(campaign)
    rows = [{"judgment": j, "verdict": names[j.verdict]} for j in judgments]
    context = {
        "campaign": campaign,
        "item": item,
        "rows": rows,
        "synthetic": names[item.synthetic_label],
        "names": names,
    }
    return render(request, "annotation/item_detail.html", context)


# ---------------------------------------------------------------- the workspace (assignees of any role)


def _workspace_context(
    request: HttpRequest, campaign: Campaign, *, notice: str = "", error: str = ""
) -> dict[str, Any]:
    """The next item for this annotator (leased now), never with its label, provenance or others' judgments."""
    item: Item | None = services.assignment_next(campaign=campaign, annotator=request.user)
    progress = selectors.annotator_progress(campaign=campaign, annotator=request.user)
    earlier: Judgment | None = None
    if item is not None and progress["withdrawn"]:
        earlier = selectors.withdrawn_judgment(item=item, annotator=request.user)
    return {
        "campaign": campaign,
        "item": item,
        "earlier": earlier,
        "flags": campaign.flags,
        "progress": progress,
        "submission_key": uuid.uuid4().hex,
        "notice": notice,
        "error": error,
        "choices": [
            ("1", Judgment.Choice.LEFT, "A is better"),
            ("2", Judgment.Choice.RIGHT, "B is better"),
            ("3", Judgment.Choice.TIE, "Tie"),
            ("4", Judgment.Choice.BOTH_BAD, "Both bad"),
        ],
    }


def _workspace_response(
    request: HttpRequest, campaign: Campaign, *, status: int = 200, **messages_: str
) -> HttpResponse:
    context = _workspace_context(request, campaign, **messages_)
    if request.htmx:
        return render(request, WORKSPACE_PARTIAL, context, status=status)
    if status >= 400:
        return render(request, "annotation/workspace.html", context, status=status)
    for level, text in (("success", messages_.get("notice")), ("error", messages_.get("error"))):
        if text:
            getattr(messages, level)(request, text)
    return redirect("annotation:workspace", campaign_id=campaign.pk)


@require_GET
@role_required(*ALL_ROLES)
def workspace(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = selectors.campaign_for_annotator(campaign_id=campaign_id, user=request.user)
    context = _workspace_context(request, campaign)
    template = WORKSPACE_PARTIAL if request.htmx else "annotation/workspace.html"
    return render(request, template, context)


@require_POST
@role_required(*ALL_ROLES)
def judge(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Store the judgment, then answer with the next item (htmx) or redirect to the workspace."""
    campaign = selectors.campaign_for_annotator(campaign_id=campaign_id, user=request.user)
    form = JudgmentForm(request.POST, campaign=campaign)
    if not form.is_valid():
        problems = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in form.errors.items())
        return _workspace_response(request, campaign, status=400, error=f"Not stored: {problems}")
    data = form.cleaned_data
    try:
        services.judgment_submit(
            campaign=campaign,
            annotator=request.user,
            item_id=data["item"],
            choice=data["choice"],
            flags=data["flags"],
            comment=data["comment"],
            seconds_spent=data["seconds_spent"] or 0.0,
            submission_key=data["submission_key"],
        )
    except services.LeaseLost as lost:
        return _workspace_response(request, campaign, status=409, error=str(lost))
    except services.CampaignClosed as closed:
        return _workspace_response(request, campaign, status=409, error=str(closed))
    except ValidationError as error:
        return _workspace_response(request, campaign, status=400, error="Not stored: " + " ".join(error.messages))
    return _workspace_response(request, campaign, notice="Saved.")


@require_POST
@role_required(*ALL_ROLES)
def undo(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Withdraw the annotator's last judgment and show its item again."""
    campaign = selectors.campaign_for_annotator(campaign_id=campaign_id, user=request.user)
    try:
        withdrawn = services.judgment_undo(campaign=campaign, annotator=request.user)
    except services.CampaignClosed as closed:
        return _workspace_response(request, campaign, status=409, error=str(closed))
    notice = "Undone: judge this item again." if withdrawn else "Nothing to undo."
    return _workspace_response(request, campaign, notice=notice)
