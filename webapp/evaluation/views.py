"""Evaluation pages: the list, the new-evaluation form, a result page, exports and the leaderboard."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from webapp.accounts.permissions import research_required
from webapp.core.forms import add_validation_error
from webapp.library.uploads import size_limited_uploads, upload_on_disk
from webapp.registry.models import ModelEntry
from webapp.runs.clone import clone_form, clone_notice, clone_source

from . import selectors, services
from .clone import cloned_prompts
from .forms import EvaluationForm
from .models import Evaluation

ROWS_PER_PAGE = 25


@require_GET
@research_required
def evaluation_list(request: HttpRequest) -> HttpResponse:
    evaluations = Evaluation.objects.select_related("judge", "run", "prompt_set").order_by("-created_at")[:200]
    return render(request, "evaluation/list.html", {"evaluations": evaluations})


def _prompt_file_limit() -> int:
    return services.MAX_PROMPT_FILE_BYTES


@require_http_methods(["GET", "POST"])
@research_required
@size_limited_uploads(_prompt_file_limit)
def evaluation_new(request: HttpRequest) -> HttpResponse:
    # The prompt file takes the library's upload path: cut off while it streams in, read from disk.
    if request.method == "POST" and request.upload_limit.declared_problem:
        messages.error(request, request.upload_limit.declared_problem)
        return render(request, "evaluation/new.html", {"form": EvaluationForm()}, status=400)
    source = clone_source(request)  # Clone and edit: ?from_run=<id> (webapp/runs/clone.py)
    form = EvaluationForm(request.POST or None, request.FILES or None)
    if request.method == "GET" and source is not None:
        form = clone_form(form, source)
        messages.info(request, clone_notice(source))
        imported, where = cloned_prompts(source.config)
        if imported:
            messages.info(
                request,
                f"Its {len(imported)} prompts imported from {where} are asked again unless you choose a "
                "prompt set or a file.",
            )
    if request.method == "POST":
        size_problem = request.upload_limit.problem(request.FILES.get("prompts_file"))
        if size_problem:
            form.add_error("prompts_file", size_problem)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            imported: list[str] = []
            upload = data.get("prompts_file")
            prompt_source = upload.name if upload is not None else ""
            if upload is not None:
                with upload_on_disk(upload) as path:
                    imported = services.parse_imported_prompts(path, file_name=upload.name)
            elif source is not None and data.get("prompt_set") is None:
                imported, prompt_source = cloned_prompts(source.config)  # the clone asks the same prompts
            evaluation = services.evaluation_create_from_form(
                user=request.user,
                data=data,
                imported_prompts=imported,
                prompt_source=prompt_source,
                cloned_from=source,
            )
        except ValidationError as error:
            add_validation_error(form, error)
        else:
            messages.success(request, f"Evaluation #{evaluation.pk} queued as run #{evaluation.run_id}.")
            return redirect(evaluation)
    return render(request, "evaluation/new.html", {"form": form}, status=400 if form.errors else 200)


@require_GET
@research_required
def evaluation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    evaluation = get_object_or_404(Evaluation.objects.select_related("judge", "run", "rubric", "comparisons"), pk=pk)
    row_filter = request.GET.get("filter", "all")
    if row_filter not in selectors.ROW_FILTERS:
        row_filter = "all"
    candidate_id = request.GET.get("candidate", "")
    rows = selectors.filtered_rows(evaluation, row_filter=row_filter, candidate_id=candidate_id)
    page = Paginator(rows, ROWS_PER_PAGE).get_page(request.GET.get("page"))
    bars = selectors.win_rate_bars(evaluation.results)
    context = {
        "evaluation": evaluation,
        "candidates": (evaluation.results.get("candidates") or {}),
        "bars": bars,
        "chart_width": selectors.CHART_WIDTH,
        "chart_height": selectors.chart_height(bars),
        "row_filters": selectors.ROW_FILTERS,
        "row_filter": row_filter,
        "candidate_id": candidate_id,
        "page": page,
        "row_count": len(rows),
        "human_judging": services.human_judging_summaries(evaluation=evaluation),
    }
    return render(request, "evaluation/detail.html", context)


@require_POST
@research_required
def evaluation_human_judging(request: HttpRequest, pk: int) -> HttpResponse:
    """Turn the evaluation's pairs into an artifact and open the campaign form on it."""
    evaluation = get_object_or_404(Evaluation, pk=pk)
    try:
        artifact = services.evaluation_pairs_artifact(evaluation=evaluation)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("evaluation:detail", pk=pk)
    return redirect(f"{reverse('annotation:new')}?artifact={artifact.pk}")


@require_GET
@research_required
def evaluation_export(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    evaluation = get_object_or_404(Evaluation.objects.select_related("judge", "comparisons"), pk=pk)
    if fmt == "csv":
        response = HttpResponse(selectors.export_csv(evaluation), content_type="text/csv; charset=utf-8")
    elif fmt == "json":
        response = HttpResponse(selectors.export_json(evaluation), content_type="application/json")
    else:
        raise Http404(f"no export format {fmt!r}; use csv or json")
    response["Content-Disposition"] = f'attachment; filename="evaluation-{evaluation.pk}.{fmt}"'
    return response


@require_GET
@research_required
def leaderboard(request: HttpRequest) -> HttpResponse:
    judges = selectors.leaderboard_judges()
    judge = None
    if request.GET.get("judge"):
        judge = ModelEntry.objects.filter(pk=request.GET["judge"]).first() if request.GET["judge"].isdigit() else None
    elif judges:
        judge = judges[0]
    board = (
        selectors.leaderboard(judge=judge)
        if judge is not None
        else {"rows": [], "evaluations": 0, "comparisons": 0, "reference": ""}
    )
    return render(request, "evaluation/leaderboard.html", {"board": board, "judges": judges, "judge": judge})
