"""An AugCon run's pages read its run directory through `pipelines.augcon.inspect`; this finds the directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.augcon import inspect
from webapp.runs.models import PipelineRun
from webapp.runs.services import run_directory


def run_overview(run: PipelineRun) -> dict[str, Any]:
    return inspect.run_overview(run_directory(run))


def document_trees(run: PipelineRun, document_id: str) -> dict[str, Any] | None:
    return inspect.document_trees(run_directory(run), document_id)


def sft_dataset_path(run: PipelineRun) -> Path | None:
    return inspect.sft_dataset_path(run_directory(run))
