"""The one-click win-rate evaluation at the end of an ALMoST run with the policy stages: RL policy and base
against the SFT policy, on the run's held-out generated prompts (none of the three trained on them).

The SFT policy is the baseline, so the evaluation reports the two comparisons the paper's question turns
on: does RL beat SFT, and does SFT beat the base (read from the base's win rate against it).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError

from pipelines.almost.config import AlmostConfig
from pipelines.almost.policy import HELD_OUT_FILE
from webapp.evaluation.models import Evaluation
from webapp.evaluation.services import evaluation_config_build, evaluation_create
from webapp.registry.models import ModelEntry
from webapp.runs.models import PipelineRun
from webapp.runs.services import run_directory


def prompt_source(run: PipelineRun) -> str:
    """How the evaluation names its prompts; also how the run page finds the evaluation again."""
    return f"held-out prompts of ALMoST run #{run.pk}"


def policy_evaluations(run: PipelineRun) -> list[Evaluation]:
    """The win-rate evaluations started from this run, newest first."""
    return list(Evaluation.objects.filter(prompt_source=prompt_source(run)).select_related("run").order_by("-pk"))


def policies_ready(run: PipelineRun) -> bool:
    """The run finished with an SFT and an RL policy in the registry."""
    summary = run.summary or {}
    return run.status == PipelineRun.Status.SUCCEEDED and bool(summary.get("sft_policy_id")) and bool(
        summary.get("rl_policy_id")
    )


def held_out_prompts(run: PipelineRun) -> list[str]:
    path = run_directory(run) / HELD_OUT_FILE
    if not path.is_file():
        raise ValidationError({"run": f"Run #{run.pk} has no held-out prompts file ({HELD_OUT_FILE})."})
    return [json.loads(line)["prompt"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def policy_evaluation_create(run: PipelineRun, user: Any, judge: ModelEntry | None = None) -> Evaluation:
    """Queue the RL-vs-SFT-vs-base evaluation; the judge defaults to the rubric's best model.

    Answers are as long as the RL stage's responses (`max_new_tokens`), so every policy answers under the
    length it was trained to; the judge reads both orders (the evaluation's usual position-bias check).
    """
    if not policies_ready(run):
        raise ValidationError({"run": f"Run #{run.pk} has not finished with an SFT and an RL policy."})
    summary = run.summary
    almost = AlmostConfig.from_dict(run.config["almost"])
    base_id = run.config.get("policy_model_id") or run.config["reward_model_id"]
    models = ModelEntry.objects.in_bulk([summary["rl_policy_id"], summary["sft_policy_id"], base_id])
    if len(models) < 3:
        raise ValidationError({"run": "A policy of this run is no longer in the registry."})
    judge = judge or ModelEntry.objects.get(pk=run.config["model_ids"][almost.configurations[0].model])
    rl = almost.policy.rl
    config, candidates, baseline = evaluation_config_build(
        candidate_models=[models[summary["rl_policy_id"]], models[base_id]],
        candidate_artifacts=[],
        baseline_model=models[summary["sft_policy_id"]],
        baseline_artifact=None,
        judge=judge,
        max_tokens=rl.max_new_tokens,
        candidate_temperature=rl.temperature,
        baseline_temperature=rl.temperature,
        seed=0,
    )
    return evaluation_create(
        user=user,
        config=config,
        candidates=candidates,
        baseline=baseline,
        judge=judge,
        imported_prompts=held_out_prompts(run),
        prompt_source=prompt_source(run),
        name=f"ALMoST run #{run.pk}: RL vs SFT vs base",
    )
