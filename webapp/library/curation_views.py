"""The artifact's row viewer and its curation: search and filter pages, htmx row actions, save as new.

Thin: each view parses the request, calls one function of `curation.py`, renders. Row actions answer
with the row's partial (htmx swaps it in place) and an `HX-Trigger` that refreshes the draft summary.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from pipelines.errors import InvalidInputError
from webapp.accounts.permissions import research_required
from webapp.runs import selectors as run_selectors

from . import curation
from .models import Artifact

CHANGED_EVENT = "curation-changed"


def _error_text(error: ValidationError) -> str:
    return " ".join(error.messages)


def _page_context(request: HttpRequest, artifact: Artifact, filters: curation.RowFilters) -> dict[str, object]:
    draft = curation.curation_draft(artifact=artifact, user=request.user)
    return {
        "artifact": artifact,
        "curation": curation.curation_page(
            artifact=artifact, draft=draft, filters=filters, page_number=request.GET.get("page")
        ),
        "summary": curation.draft_summary(artifact=artifact, draft=draft),
        "show_choices": curation.SHOW_CHOICES,
        "children": artifact.curated_children.order_by("-created_at"),
        "suggested_name": f"{artifact.name} (curated)",
    }


@require_GET
@research_required
def artifact_detail(request: HttpRequest, artifact_id: int) -> HttpResponse:
    artifact = run_selectors.artifact_get(artifact_id=artifact_id)
    try:
        filters = curation.RowFilters.from_params(request.GET, columns=artifact.columns)
    except ValidationError as error:
        messages.error(request, _error_text(error))
        filters = curation.RowFilters()
    try:
        context = _page_context(request, artifact, filters)
    except InvalidInputError as error:
        # A run directory removed by hand, or a file edited outside the site: say so, keep the page.
        context = {"artifact": artifact, "unreadable": str(error)}
    return render(request, "runs/artifact_detail.html", context)


def _row_response(request: HttpRequest, artifact: Artifact, row_index: int, *, changed: bool) -> HttpResponse:
    draft = curation.curation_draft(artifact=artifact, user=request.user)
    row = curation.curation_row(artifact=artifact, draft=draft, row_index=row_index)
    response = render(request, "runs/partials/_curation_row.html", {"artifact": artifact, "row": row})
    if changed:
        response["HX-Trigger"] = CHANGED_EVENT
    return response


@require_GET
@research_required
def artifact_row(request: HttpRequest, artifact_id: int, row_index: int) -> HttpResponse:
    """One row's partial (the edit form's Cancel)."""
    artifact = run_selectors.artifact_get(artifact_id=artifact_id)
    try:
        return _row_response(request, artifact, row_index, changed=False)
    except ValidationError as error:
        return HttpResponseBadRequest(_error_text(error))


@require_POST
@research_required
def artifact_row_mark(request: HttpRequest, artifact_id: int, row_index: int, action: str) -> HttpResponse:
    artifact = run_selectors.artifact_get(artifact_id=artifact_id)
    try:
        curation.curation_row_mark(artifact=artifact, user=request.user, row_index=row_index, action=action)
    except ValidationError as error:
        return HttpResponseBadRequest(_error_text(error))
    if not request.htmx:
        return redirect(artifact)
    return _row_response(request, artifact, row_index, changed=True)


@require_http_methods(["GET", "POST"])
@research_required
def artifact_row_edit(request: HttpRequest, artifact_id: int, row_index: int) -> HttpResponse:
    """GET: the row's edit form in place; POST: record the edit and show the row again."""
    artifact = run_selectors.artifact_get(artifact_id=artifact_id)
    draft = curation.curation_draft(artifact=artifact, user=request.user)
    try:
        row = curation.curation_row(artifact=artifact, draft=draft, row_index=row_index)
    except ValidationError as error:
        return HttpResponseBadRequest(_error_text(error))
    error_text = ""
    if request.method == "POST":
        values = {column: request.POST[column] for column in row.editable_values if column in request.POST}
        try:
            curation.curation_row_edit(artifact=artifact, user=request.user, row_index=row_index, values=values)
        except ValidationError as error:
            error_text = _error_text(error)
        else:
            if not request.htmx:
                return redirect(artifact)
            return _row_response(request, artifact, row_index, changed=True)
    return render(
        request,
        "runs/partials/_curation_row_edit.html",
        {"artifact": artifact, "row": row, "error": error_text, "column_count": len(row.cells) + 1},
        status=400 if error_text and not request.htmx else 200,  # htmx swaps only 2xx answers
    )


@require_GET
@research_required
def artifact_curation_summary(request: HttpRequest, artifact_id: int) -> HttpResponse:
    artifact = run_selectors.artifact_get(artifact_id=artifact_id)
    draft = curation.curation_draft(artifact=artifact, user=request.user)
    return render(
        request,
        "runs/partials/_curation_summary.html",
        {
            "artifact": artifact,
            "summary": curation.draft_summary(artifact=artifact, draft=draft),
            "suggested_name": f"{artifact.name} (curated)",
        },
    )


@require_POST
@research_required
def artifact_curation_discard(request: HttpRequest, artifact_id: int) -> HttpResponse:
    artifact = run_selectors.artifact_get(artifact_id=artifact_id)
    curation.curation_discard(artifact=artifact, user=request.user)
    messages.success(request, "Draft discarded: every row is as in the artifact again.")
    return redirect(artifact)


@require_POST
@research_required
def artifact_curation_save(request: HttpRequest, artifact_id: int) -> HttpResponse:
    artifact = run_selectors.artifact_get(artifact_id=artifact_id)
    try:
        child = curation.curation_save(artifact=artifact, user=request.user, name=request.POST.get("name", ""))
    except ValidationError as error:
        messages.error(request, _error_text(error))
        return redirect(artifact)
    messages.success(
        request, f"Saved “{child.name}”: {child.row_count} rows, curated from “{artifact.name}” (left unchanged)."
    )
    return redirect(child)
