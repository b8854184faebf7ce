"""The site's front page: researchers go on to the dashboard, annotators see their campaigns.

Annotators are the only role whose start page is its own content, so the page lives with the
annotation app; the researchers' dashboard is reached by its URL name and belongs to `runs`.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from webapp.accounts.permissions import ALL_ROLES, role_required

from . import selectors


@require_GET
@role_required(*ALL_ROLES)
def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_researcher_role:
        return redirect("dashboard")
    campaigns = selectors.campaigns_for_annotator(user=request.user)
    return render(request, "annotation/annotator_home.html", {"campaigns": campaigns})
