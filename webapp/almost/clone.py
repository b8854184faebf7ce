"""Clone and edit for ALMoST runs: the rubric's rows and the filters' boxes back from the config.

The other fields take their values by name or by the paths in kinds.py (`RunClone`).
"""

from __future__ import annotations

from typing import Any

from pipelines.almost.config import FILTERS

from .forms import RUBRIC_PREFIX


def almost_form_data(config: dict[str, Any]) -> dict[str, Any]:
    """The rubric rows (models and demonstration sets by id, in rank order), the filters, the response length."""
    almost = config["almost"]
    configurations = almost["configurations"]
    data: dict[str, Any] = {
        f"{RUBRIC_PREFIX}-TOTAL_FORMS": len(configurations),
        f"{RUBRIC_PREFIX}-INITIAL_FORMS": 0,
        f"{RUBRIC_PREFIX}-MIN_NUM_FORMS": 0,
        f"{RUBRIC_PREFIX}-MAX_NUM_FORMS": 1000,
    }
    for index, entry in enumerate(configurations):
        data[f"{RUBRIC_PREFIX}-{index}-model"] = config["model_ids"].get(entry["model"], "")
        data[f"{RUBRIC_PREFIX}-{index}-shots"] = entry["shots"]
        data[f"{RUBRIC_PREFIX}-{index}-demonstration_set"] = config["demonstration_set_ids"].get(entry["prompt"], "")
    filters = almost["comparisons"]["filters"]
    data.update({f"filter_{name}": bool(filters.get(name)) for name in FILTERS})
    # One length for every configuration was the form's; different ones were the pipeline's rule (left blank).
    lengths = {entry.get("max_tokens") for entry in configurations}
    data["response_max_tokens"] = lengths.pop() if len(lengths) == 1 else None
    max_steps = almost["reward"]["training"]["max_steps"]
    data["reward_max_steps"] = max_steps if max_steps > 0 else None
    if "policy" in almost:  # runs made before the policy stages keep the form's initial values
        rl_steps = almost["policy"]["rl"]["training"]["max_steps"]
        data["rl_max_steps"] = rl_steps if rl_steps > 0 else None
        data["rl_preset"] = config.get("rl_preset", "")
    return data
