"""The health check. Pages that show several apps' content live in those apps (the dashboard in
`runs`, the front page in `annotation`), so `core`, which every app imports, imports none of them."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")
