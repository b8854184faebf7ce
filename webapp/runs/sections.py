"""The run page's method section: the kind's own partial (SPIN's iterations, CST trees, AFT layers ...)."""

from __future__ import annotations

from django.http import HttpRequest
from django.template.loader import render_to_string

from .models import PipelineRun
from .registry import UnknownRunKind, run_kind


def kind_section(run: PipelineRun, request: HttpRequest | None = None) -> str:
    """The run's section as HTML, or "" when its kind declares none."""
    try:
        section = run_kind(run.kind).section
    except UnknownRunKind:
        return ""  # a run of a kind no installed app declares any more: the generic page still shows it
    if section is None:
        return ""
    return render_to_string(section.template, {**section.context(run), "run": run}, request=request)
