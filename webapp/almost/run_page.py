"""The ALMoST section of the run page: counts at every step, the reward model's accuracy, RMSP scores, sample pairs."""

from __future__ import annotations

from typing import Any

from pipelines.almost.config import configuration_name
from pipelines.almost.policy import RL_DIR
from webapp.runs.models import PipelineRun
from webapp.runs.services import run_directory
from webapp.training.rl_run_page import held_out_curve, held_out_samples

from .policy_evaluation import policies_ready, policy_evaluations

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
            "policy": policy_context(run),
        }
    }


STAGE_LABELS = {
    "prompt_generation": "prompt generation",
    "response_generation": "responses",
    "reward_model": "reward model",
    "self_play": "RMSP",
    "sft": "SFT policy",
    "rl": "RL policy",
    "policy_evaluation": "policy evaluation",
}


def policy_context(run: PipelineRun) -> dict[str, Any] | None:
    """The SFT and RL stages, the three policies on held-out prompts, samples per evaluation, wall time per stage."""
    summary = run.summary or {}
    policy = (run.config.get("almost") or {}).get("policy") or {}
    if not policy.get("sft_enabled"):
        return None
    evaluation = summary.get("policy_evaluation") or {}
    policies = evaluation.get("policies") or {}
    return {
        "rl_enabled": policy.get("rl_enabled"),
        "algorithm": (policy.get("rl") or {}).get("algorithm"),
        "sft": summary.get("sft"),
        "rl": _rl_figures(summary.get("rl")),
        "evaluation_rows": [
            {"policy": name, **policies[name]} for name in ("base", "sft", "rl") if name in policies
        ],
        "held_out_prompts": evaluation.get("held_out_prompts"),
        "samples": held_out_samples(run_directory(run) / RL_DIR),
        "curve": held_out_curve(run_directory(run) / RL_DIR),
        "stage_seconds": [
            {"stage": STAGE_LABELS.get(name, name), "seconds": seconds}
            for name, seconds in (summary.get("stage_seconds") or {}).items()
        ],
        "can_evaluate": policies_ready(run),
        "evaluations": policy_evaluations(run),
    }


def _rl_figures(rl: dict[str, Any] | None) -> dict[str, Any] | None:
    """The RL stage's held-out figures under template-friendly names ("held_out/kl" -> kl)."""
    if not rl:
        return None
    return {
        "steps": rl.get("steps"),
        "reward_start": rl.get("held_out/reward_mean_at_start"),
        "reward_end": rl.get("held_out/reward_mean"),
        "kl": rl.get("held_out/kl"),
        "length_start": rl.get("held_out/length_mean_at_start"),
        "length_end": rl.get("held_out/length_mean"),
    }
