"""The researchers' dashboard: runs in flight, queues and workers, recent runs and artifacts.

It lives with the runs because everything it shows is theirs; `webapp.core` stays the ground floor
that every app imports and imports none of them.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from webapp.accounts.permissions import research_required

from . import selectors


@require_GET
@research_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """The whole page, or (htmx) only its live part, which re-renders every 2 s."""
    context = {
        "runs": selectors.runs_with_live_state(list(selectors.runs_in_flight()[:20])),
        "recent_runs": selectors.runs_with_live_state(
            list(selectors.run_list().exclude(status__in=("queued", "running"))[:10])
        ),
        "queues": selectors.queue_overview(),
        "artifacts": selectors.artifact_list_recent(limit=10),
    }
    template = "runs/partials/_dashboard_live.html" if request.htmx else "runs/dashboard.html"
    return render(request, template, context)
