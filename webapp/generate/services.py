"""Generate runs: the form's input as a validated run config, and what the run will ask of the model."""
from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from pipelines.errors import InvalidConfigError
from pipelines.generate.config import GenerateConfig
from pipelines.llm.types import SamplingParams
from webapp.core.forms import config_refusal
from webapp.core.run_forms import EstimateWarning
from webapp.library.models import SeedPromptSet
from webapp.registry.models import ModelEntry

# The generate form names the sampling settings without their section.
FORM_FIELD_FOR_CONFIG_FIELD = {f"sampling.{name}": name for name in ("n", "max_tokens", "temperature", "top_p", "seed")}


def generate_config_build(
    *,
    model: ModelEntry,
    prompt_set: SeedPromptSet,
    n: int,
    max_tokens: int,
    temperature: float,
    top_p: float,
    seed: int | None,
    batch_size: int,
    system_prompt: str = "",
) -> dict[str, Any]:
    """Validate through the pipeline's own config so the worker never sees a config it would reject."""
    if not prompt_set.prompts.exists():
        raise ValidationError({"prompt_set": f"Prompt set “{prompt_set.name}” has no prompts."})
    try:
        sampling = SamplingParams(n=n, max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed)
        generate = GenerateConfig(sampling=sampling, batch_size=batch_size, system_prompt=system_prompt)
    except InvalidConfigError as error:
        raise config_refusal(error, FORM_FIELD_FOR_CONFIG_FIELD) from error
    return {"model_id": model.pk, "prompt_set_id": prompt_set.pk, "generate": generate.to_dict()}


def generate_cost_estimate(*, prompt_count: int, n: int, max_tokens: int) -> dict[str, int]:
    """Upper bound of what a generate run asks of the model, shown before it is queued."""
    return {"model_calls": prompt_count, "samples": prompt_count * n, "max_new_tokens": prompt_count * n * max_tokens}


def generate_warnings(config: dict[str, Any]) -> list[EstimateWarning]:
    """Settings that waste part of a generate run, shown before queueing.

    Why: greedy decoding (temperature 0) gives the same answer every time, so n > 1 answers per prompt
    are n copies: they cost n times the tokens and give AFT's aggregation data nothing to choose from.
    """
    sampling = GenerateConfig.from_dict(config["generate"]).sampling
    if sampling.n > 1 and sampling.temperature == 0:
        return [
            EstimateWarning(
                f"Temperature 0 decodes greedily: the {sampling.n} answers of each prompt will be identical. "
                "Raise the temperature (e.g. 0.7) to get different answers, or ask for 1 answer per prompt."
            )
        ]
    return []
