"""AugCon's section of the live run page: per-stage progress, per-document counts with links to the
split trees, parse failures and retries, and the button that fine-tunes on the SFT dataset."""
from __future__ import annotations

from typing import Any

from webapp.library.models import Artifact
from webapp.runs.models import PipelineRun

from . import selectors

TEMPLATE = "augcon/partials/_run_section.html"


def context(run: PipelineRun) -> dict[str, Any]:
    sft = run.artifacts.filter(kind=Artifact.Kind.SFT).first()
    return {
        "augcon": selectors.run_overview(run),
        "augcon_sft": sft,
        "augcon_sft_dataset_dir": selectors.sft_dataset_path(run),
    }
