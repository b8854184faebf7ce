"""The ALMoST section of the run page: counts at every step, the reward model's accuracy, RMSP scores, sample pairs."""

from __future__ import annotations

from typing import Any

from webapp.runs.models import PipelineRun

TEMPLATE = "almost/partials/_run_section.html"
SAMPLE_PAIRS = 3


def context(run: PipelineRun) -> dict[str, Any]:
    """What the section shows; every part is optional, since the summary fills in step by step."""
    summary = run.summary or {}
    artifacts = {artifact.name: artifact for artifact in run.artifacts.all()}
    comparisons = artifacts.get("comparisons")
    rmsp = summary.get("rmsp") or {}
    histogram = (rmsp.get("scores") or {}).get("histogram") or []
    tallest = max((bin_["count"] for bin_ in histogram), default=0)
    rubric = [configuration for configuration in (run.config.get("almost") or {}).get("configurations", [])]
    rm_lengths = (summary.get("rm") or {}).get("lengths")
    return {
        "almost": {
            "rubric": [f"{c['model']}-{c.get('prompt') or 'none'}-{c['shots']}shot" for c in rubric],
            "pg": summary.get("pg"),
            "rg": (summary.get("rg") or {}).get("configurations"),
            "cs": summary.get("cs"),
            "rm": summary.get("rm"),
            "rmsp": rmsp or None,
            "rmsp_enabled": ((run.config.get("almost") or {}).get("rmsp") or {}).get("enabled", True),
            "histogram": [
                {**bin_, "percent": round(100 * bin_["count"] / tallest) if tallest else 0} for bin_ in histogram
            ],
            "sample_pairs": (comparisons.preview[:SAMPLE_PAIRS] if comparisons else []),
            "artifacts": list(artifacts.values()),
            "reward_model": summary.get("reward_model"),
            # The reward model's token lengths and the pairs cut or dropped (shown as on a training run).
            "length_rows": [{"label": "reward model", "lengths": rm_lengths}] if rm_lengths else [],
        }
    }
