"""Landing pages: home sends each role to its start page; the dashboard shows what is in flight."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from webapp.accounts.permissions import ALL_ROLES, research_required, role_required
from webapp.annotation import selectors as annotation_selectors
from webapp.runs import selectors as run_selectors
from webapp.runs import services as run_services


@require_GET
@role_required(*ALL_ROLES)
def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_researcher_role:
        return redirect("dashboard")
    campaigns = annotation_selectors.campaigns_for_annotator(user=request.user)
    return render(request, "core/annotator_home.html", {"campaigns": campaigns})


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


@require_GET
@research_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """Runs in flight, queues and workers, recent artifacts; the live part re-renders every 2 s."""
    run_services.runs_mark_lost()
    context = {
        "runs": run_selectors.runs_in_flight()[:20],
        "recent_runs": run_selectors.run_list().exclude(status__in=("queued", "running"))[:10],
        "queues": run_selectors.queue_overview(),
        "artifacts": run_selectors.artifact_list_recent(limit=10),
    }
    template = "core/partials/_dashboard_live.html" if request.htmx else "core/dashboard.html"
    return render(request, template, context)
