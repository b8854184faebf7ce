"""Clone and edit for evaluations: the contestants, prompts, judge and settings an evaluation used, as its form's data.

The run's config holds the pipeline's view (contestants with backend specs); what the form chose
(models and artifacts by id, the prompt set, the judge, the rubric) is on the run's `Evaluation`.
Prompts imported from a file are kept on the evaluation: a clone with neither a new file nor a
prompt set asks the same prompts again (`cloned_prompts`).
"""

from __future__ import annotations

from typing import Any

from .models import Evaluation


def evaluation_form_data(config: dict[str, Any]) -> dict[str, Any]:
    evaluation = Evaluation.objects.get(pk=config["evaluation_id"])
    settings = config["evaluation"]
    judge = settings["judge"]
    contestants = [*evaluation.candidates, evaluation.baseline]
    models = [entry for entry in evaluation.candidates if entry.get("kind") == "model"]
    data: dict[str, Any] = {
        "candidate_models": [entry["model_id"] for entry in models],
        "candidate_artifacts": [
            entry["artifact_id"] for entry in evaluation.candidates if entry.get("kind") == "answers"
        ],
        "baseline_model": evaluation.baseline.get("model_id"),
        "baseline_artifact": evaluation.baseline.get("artifact_id"),
        "prompt_set": evaluation.prompt_set_id,
        "judge": evaluation.judge_id,
        "rubric": evaluation.rubric_id,
        "seed": settings["seed"],
        "judge_method": judge["method"],
        "judge_max_tokens": judge["sampling"]["max_tokens"],
        "judge_retries": judge["retries"],
        # Text-judge configs from before grammars existed were unconstrained (JudgeConfig.from_dict).
        "judge_constrained_output": judge.get("constrained_output", judge["method"] != "text"),
        "bootstrap_rounds": settings["bootstrap_rounds"],
    }
    answering = [entry for entry in contestants if entry.get("kind") == "model"]
    if answering:
        data["max_tokens"] = answering[0]["max_tokens"]
    if models:
        data["candidate_temperature"] = models[0]["temperature"]
    if evaluation.baseline.get("kind") == "model":
        data["baseline_temperature"] = evaluation.baseline["temperature"]
    return data


def cloned_prompts(config: dict[str, Any]) -> tuple[list[str], str]:
    """The prompts a cloned evaluation imported from a file, and where they came from ([] without any)."""
    evaluation = Evaluation.objects.get(pk=config["evaluation_id"])
    return list(evaluation.imported_prompts), evaluation.prompt_source
