"""Method-specific sections of the run page (SPIN's iterations, CST trees, AFT layers ...).

A method's web app provides a module with `TEMPLATE` (a partial under templates/) and
`context(run) -> dict`; the partial is rendered with that dict (plus `run`) as its own context and
placed in the run page's live partial, so the section refreshes with the progress while the run is
active. Modules are imported on use, by dotted path.
"""
from __future__ import annotations

import importlib

from django.http import HttpRequest
from django.template.loader import render_to_string

from .models import PipelineRun

KIND_PAGES: dict[str, str] = {
    PipelineRun.Kind.SPIN: "webapp.spin.run_page",
    PipelineRun.Kind.AUGCON: "webapp.augcon.run_page",
    PipelineRun.Kind.AFT_INFERENCE: "webapp.aft.run_page",
    PipelineRun.Kind.AFT_DATA: "webapp.aft.run_page",
    PipelineRun.Kind.ALMOST: "webapp.almost.run_page",
    PipelineRun.Kind.EVALUATION: "webapp.evaluation.run_page",
}


def kind_section(run: PipelineRun, request: HttpRequest | None = None) -> str:
    """The run's method section as HTML, or "" when its kind has none."""
    dotted = KIND_PAGES.get(run.kind)
    if dotted is None:
        return ""
    try:
        module = importlib.import_module(dotted)
    except ModuleNotFoundError as error:
        if error.name == dotted:
            return ""  # that method's pages are not installed
        raise
    return render_to_string(module.TEMPLATE, {**module.context(run), "run": run}, request=request)
