"""Run pages: list, live detail, cancel, resume, artifact download (the artifact's row viewer is
webapp/library/curation_views.py)."""
from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from webapp.accounts.permissions import research_required

from . import selectors, services
from .charts import metric_charts
from .clone import clone_link
from .models import PipelineRun
from .sections import kind_section


@require_GET
@research_required
def run_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    page = Paginator(selectors.run_list(status=status), 50).get_page(request.GET.get("page"))
    selectors.runs_with_live_state(page.object_list)
    return render(
        request, "runs/run_list.html", {"page": page, "status": status, "statuses": PipelineRun.Status.choices}
    )


@require_GET
@research_required
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = selectors.run_get(run_id=run_id)
    template = "runs/partials/_run_live.html" if request.htmx else "runs/run_detail.html"
    return render(request, template, _live_context(run, request))


def _live_context(run: PipelineRun, request: HttpRequest) -> dict[str, object]:
    # Lists and objects in the summary (SPIN's iteration rows ...) belong to the method's own section.
    summary_items = [(key, value) for key, value in run.summary.items() if not isinstance(value, list | dict)]
    return {
        "run": run,
        "summary_items": summary_items,
        "charts": metric_charts(run.metrics),
        "section_html": kind_section(run, request),
        "clone_link": clone_link(run),
        "progress": selectors.run_progress(run),
        "queue_position": selectors.run_queue_position(run),
    }


@require_POST
@research_required
def run_cancel(request: HttpRequest, run_id: int) -> HttpResponse:
    return _transition(request, run_id, services.run_request_cancel, "Cancel requested.")


@require_POST
@research_required
def run_resume(request: HttpRequest, run_id: int) -> HttpResponse:
    return _transition(request, run_id, services.run_resume, "Resumed: finished work is kept and skipped.")


def _transition(request: HttpRequest, run_id: int, service, success_message: str) -> HttpResponse:  # type: ignore[no-untyped-def]
    run = selectors.run_get(run_id=run_id)
    try:
        run = service(run=run)
    except services.RunStateError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, success_message)
    if request.htmx:
        return render(request, "runs/partials/_run_live.html", _live_context(selectors.run_get(run_id=run_id), request))
    return redirect(run)


@require_GET
@research_required
def artifact_download(request: HttpRequest, artifact_id: int, file_format: str) -> FileResponse:
    artifact = selectors.artifact_get(artifact_id=artifact_id)
    path = {"jsonl": artifact.jsonl_path, "parquet": artifact.parquet_path}.get(file_format)
    if not path:
        raise Http404("No such format for this artifact.")
    return FileResponse(open(path, "rb"), as_attachment=True, filename=artifact.download_name(file_format))  # noqa: SIM115 - FileResponse closes it
