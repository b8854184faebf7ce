"""The ALMoST section of the run page: counts at every step, the reward model's accuracy, RMSP scores, sample pairs."""

from __future__ import annotations

from typing import Any

from pipelines.almost.config import configuration_name
from webapp.runs.models import PipelineRun

TEMPLATE = "almost/partials/_run_section.html"
SAMPLE_PAIRS = 3


def context(run: PipelineRun) -> dict[str, Any]:
    """What the section shows; every part is optional, since the summary fills in step by step.

    A run finished before the steps' summary keys were renamed (pg, rg, cs, rm, rmsp) shows its
    steps as not finished rather than failing.
    """
    summary = run.summary or {}
    almost = run.config.get("almost") or {}
    artifacts = {artifact.name: artifact for artifact in run.artifacts.all()}
    comparisons = artifacts.get("comparisons")
    self_play = summary.get("self_play") or {}
    histogram = (self_play.get("scores") or {}).get("histogram") or []
    tallest = max((bin_["count"] for bin_ in histogram), default=0)
    reward_training = summary.get("reward_training")
    reward_lengths = (reward_training or {}).get("lengths")
    return {
        "almost": {
            "rubric": [
                configuration_name(entry["model"], entry.get("prompt") or "", entry["shots"])
                for entry in almost.get("configurations", [])
            ],
            "prompt_generation": summary.get("prompt_generation"),
            "responses": (summary.get("response_generation") or {}).get("configurations"),
            "comparisons": summary.get("comparisons"),
            "reward_training": reward_training,
            "self_play": self_play or None,
            "self_play_enabled": (almost.get("rmsp") or {}).get("enabled", True),
            "histogram": [
                {**bin_, "percent": round(100 * bin_["count"] / tallest) if tallest else 0} for bin_ in histogram
            ],
            "sample_pairs": (comparisons.preview[:SAMPLE_PAIRS] if comparisons else []),
            "artifacts": list(artifacts.values()),
            "reward_model": summary.get("reward_model"),
            # The reward model's token lengths and the pairs cut or dropped (shown as on a training run).
            "length_rows": [{"label": "reward model", "lengths": reward_lengths}] if reward_lengths else [],
        }
    }
