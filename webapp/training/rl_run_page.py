"""The RL section of a run page: the held-out curve's start and end, and the held-out responses saved at
each evaluation, newest first, so reward hacking (a length blow-up, a repeated phrase) shows as it happens.

ALMoST's run page shows the same responses for its RL stage (`held_out_samples` of its `rl/` store).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipelines.common.store import RunStore
from pipelines.training.rl.files import SAMPLES_DIR, read_curve
from webapp.runs.models import PipelineRun
from webapp.runs.services import run_directory

TEMPLATE = "training/partials/_rl_section.html"


def held_out_samples(rl_store_root: Path) -> list[dict[str, Any]]:
    """Each evaluation's saved responses ({"step", "samples"}), newest first."""
    folder = rl_store_root / SAMPLES_DIR
    if not folder.is_dir():
        return []
    return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(folder.glob("step-*.json"), reverse=True)]


def held_out_curve(rl_store_root: Path) -> list[dict[str, Any]]:
    """The held-out figures per evaluation (reward mean and spread, KL, length), oldest first."""
    return read_curve(RunStore(rl_store_root))


def context(run: PipelineRun) -> dict[str, Any]:
    root = run_directory(run)
    return {"rl": {"curve": held_out_curve(root), "samples": held_out_samples(root)}}
