"""Method-specific sections of the run page (SPIN's iterations, CST trees, AFT layers ...).

A method's web app provides a module with `TEMPLATE` (a partial under templates/) and
`context(run) -> dict`; the run page's live partial includes it, so the section refreshes with the
progress while the run is active. Modules are imported on use, by dotted path.
"""
from __future__ import annotations

import importlib
from typing import Any

from .models import PipelineRun

KIND_PAGES: dict[str, str] = {
    PipelineRun.Kind.SPIN: "webapp.spin.run_page",
    PipelineRun.Kind.AUGCON: "webapp.augcon.run_page",
    PipelineRun.Kind.AFT_INFERENCE: "webapp.aft.run_page",
    PipelineRun.Kind.AFT_DATA: "webapp.aft.run_page",
    PipelineRun.Kind.ALMOST: "webapp.almost.run_page",
    PipelineRun.Kind.EVALUATION: "webapp.evaluation.run_page",
}


def kind_section(run: PipelineRun) -> dict[str, Any] | None:
    """`{"template": ..., **context}` for the run's method section, or None when its kind has none."""
    dotted = KIND_PAGES.get(run.kind)
    if dotted is None:
        return None
    try:
        module = importlib.import_module(dotted)
    except ModuleNotFoundError as error:
        if error.name == dotted:
            return None  # that method's pages are not installed
        raise
    return {"template": module.TEMPLATE, **module.context(run)}
