"""AFT's section of the run page: one prompt's drafts turning into the answer, and the cost per layer.

Included in the live run page (refreshed every second while the run is active), so it reads only
what it shows: the prompt list, one finished row, and the summary the worker wrote.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.urls import reverse

from pipelines.aft.inspect import find_row, prompt_choices
from pipelines.common.store import RunStore
from webapp.library.models import Artifact
from webapp.runs import services
from webapp.runs.models import PipelineRun

TEMPLATE = "aft/partials/_run_section.html"
AGGREGATION_PRESET = "aft-aggregation"
"""The training preset the data run's "Train" link opens: lengths sized from the data, drafts cut last."""
PROMPTS_LISTED = 1000


def context(run: PipelineRun) -> dict[str, Any]:
    if run.kind == "aft_data":
        return _data_context(run)
    return {"aft_kind": "inference", **prompt_context(run, None)}


def prompt_context(run: PipelineRun, prompt_id: str | None) -> dict[str, Any]:
    """The prompts to choose from and the chosen (default: first finished) prompt's layers."""
    directory = Path(services.run_directory(run))
    config = run.config.get("aft", {})
    base = {
        "aft_config": config,
        "prompt_choices": [],
        "row": None,
        "layer_rows": [],
        "chosen_prompt_id": prompt_id or "",
        "prompt_url": reverse("aft:prompt", args=[run.pk]),
    }
    if not directory.is_dir():  # queued: nothing written yet (and the page must not create the directory)
        return base
    store = RunStore(directory)
    base["prompt_choices"] = prompt_choices(store, PROMPTS_LISTED)
    row = find_row(store, prompt_id)
    if row is not None:
        base["row"] = row
        base["chosen_prompt_id"] = row["prompt_id"]
        base["layer_rows"] = [_layer_view(layer) for layer in row["layers"]]
    return base


def _layer_view(layer: dict[str, Any]) -> dict[str, Any]:
    samples = [
        {"text": text, "tokens": tokens, "finish_reason": reason}
        for text, tokens, reason in zip(
            layer["responses"], layer["completion_tokens"], layer["finish_reasons"], strict=True
        )
    ]
    return {
        "name": layer["name"],
        "role": layer["role"],
        "system": layer["system"],
        "prompt_tokens": layer["prompt_tokens"],
        "completion_tokens": sum(layer["completion_tokens"]),
        "samples": samples,
    }


def _data_context(run: PipelineRun) -> dict[str, Any]:
    artifact = run.artifacts.filter(kind=Artifact.Kind.SFT).first()
    example = artifact.preview[0] if artifact is not None and artifact.preview else None
    return {
        "aft_kind": "data",
        "data_config": run.config.get("data", {}),
        "artifact": artifact,
        "example": example,
        # The aggregation preset sizes max_length and max_prompt_length from this data's longest rows.
        "train_url": (
            f"{reverse('training:new')}?dataset={artifact.pk}&trainer=sft&preset={AGGREGATION_PRESET}"
            if artifact is not None
            else ""
        ),
    }
