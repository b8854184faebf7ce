"""AFT runs from the site: validate a propose-and-aggregate or aggregation-data config, then queue it.

Every check runs here, in the web process and before anything is queued, with the pipeline's own
config classes (they import no torch), so the worker never receives a config it would refuse.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from pipelines.aft.config import AftConfig, AggregationDataConfig
from pipelines.errors import InvalidConfigError, InvalidInputError
from webapp.core.forms import config_refusal
from webapp.core.run_forms import EstimateWarning
from webapp.library.models import Artifact, SeedPromptSet
from webapp.registry.models import ModelEntry

# Which inference form field holds each config field (`InvalidConfigError.field`), so a refusal lands
# next to the field that caused it; any other config field's refusal goes on top of the form.
INFERENCE_FORM_FIELD_FOR_CONFIG_FIELD = {
    "proposal_params.temperature": "proposal_temperature",
    "proposal_params.top_p": "proposal_top_p",
    "proposal_params.max_tokens": "max_tokens",
    "proposal_params.n": "n",
    "aggregation_params.temperature": "aggregation_temperature",
    "aggregation_params.top_p": "aggregation_top_p",
    "aggregation_params.max_tokens": "max_tokens",
    "aggregation_params.n": "n",
    "final_params.temperature": "final_temperature",
    "final_params.top_p": "final_temperature",
    "final_params.max_tokens": "max_tokens",
    "final_params.n": "final_temperature",
    "final_params": "final_temperature",
    "hidden_layer": "hidden_layer",
    "batch_size": "batch_size",
    "seed": "seed",
    "mode": "mode",
}
# The same for the aggregation-data form.
DATA_FORM_FIELD_FOR_CONFIG_FIELD = {
    "target_rule": "target_rule",
    "min_proposals": "min_proposals",
    "max_proposals": "max_proposals",
    "aggregator.temperature": "aggregator_temperature",
    "aggregator.max_tokens": "max_tokens",
    "seed": "seed",
    "max_examples": "max_examples",
}


def inference_config_from_fields(
    *,
    mode: str = "aggregate",
    n: int | None = None,
    hidden_layer: int | None = None,
    final_aggregation: bool = True,
    proposal_temperature: float | None = None,
    proposal_top_p: float | None = None,
    aggregation_temperature: float | None = None,
    aggregation_top_p: float | None = None,
    final_temperature: float | None = None,
    max_tokens: int | None = None,
    seed: int | None = None,
    batch_size: int | None = None,
) -> AftConfig:
    """The form's fields in the original's keys; a blank field keeps the paper's default."""

    def section(**values: Any) -> dict[str, Any]:
        return {key: value for key, value in values.items() if value is not None}

    data: dict[str, Any] = {
        "mode": mode,
        "proposal_params": section(temperature=proposal_temperature, top_p=proposal_top_p, max_tokens=max_tokens, n=n),
        "aggregation_params": section(
            temperature=aggregation_temperature, top_p=aggregation_top_p, max_tokens=max_tokens, n=n
        ),
        "final_aggregation": final_aggregation,
        "seed": seed,
    }
    if final_aggregation:  # without a final layer there is nothing for final_params to set
        data["final_params"] = section(temperature=final_temperature, max_tokens=max_tokens, n=1)
    if hidden_layer is not None:
        data["hidden_layer"] = hidden_layer
    if batch_size is not None:
        data["batch_size"] = batch_size
    try:
        return AftConfig.from_dict(data)
    except InvalidConfigError as error:
        raise config_refusal(error, INFERENCE_FORM_FIELD_FOR_CONFIG_FIELD) from error


def inference_config_from_yaml(text: str, *, source: str = "config.yaml", mode: str | None = None) -> AftConfig:
    """A YAML in any of the original repository's three formats; the form's mode applies unless it sets one."""
    try:
        config = AftConfig.from_yaml(text, source=source)
        if mode and config.mode != mode:
            import yaml

            if "mode" not in (yaml.safe_load(text) or {}):
                config = AftConfig.from_dict({**config.to_dict(), "mode": mode})
    except InvalidConfigError as error:
        raise ValidationError({"yaml_config": str(error)}) from error
    return config


def inference_config_build(*, model: ModelEntry, prompt_set: SeedPromptSet, aft: AftConfig) -> dict[str, Any]:
    """The run config of an inference run, or a ValidationError naming the field."""
    if model.task != ModelEntry.Task.GENERATION:
        raise ValidationError({"model": f"{model.name} is a reward model; choose a text-generation model."})
    if not prompt_set.prompts.exists():
        raise ValidationError({"prompt_set": f"Prompt set “{prompt_set.name}” has no prompts."})
    return {"model_id": model.pk, "prompt_set_id": prompt_set.pk, "aft": aft.to_dict()}


def inference_cost_estimate(*, aft: AftConfig, prompt_count: int) -> dict[str, Any]:
    """The config's cost over the prompt set, beside the single-sample baseline's."""
    estimate = aft.cost_estimate(prompt_count)
    single = AftConfig.from_dict({**aft.to_dict(), "mode": "single"})
    estimate["single_sample_max_new_tokens"] = single.cost_estimate(prompt_count)["max_new_tokens"]
    estimate["times_single_sample"] = aft.generations_per_prompt()
    return estimate


def data_config_build(*, source: Artifact, model: ModelEntry | None, options: dict[str, Any]) -> dict[str, Any]:
    """The run config of an aggregation-data run; the source's layout is checked on its preview rows."""
    from pipelines.aft.data import prepare_examples, response_groups

    try:
        config = AggregationDataConfig.from_dict({key: value for key, value in options.items() if value is not None})
    except InvalidConfigError as error:
        raise config_refusal(error, DATA_FORM_FIELD_FOR_CONFIG_FIELD) from error
    if config.needs_model:
        if model is None:
            raise ValidationError(
                {
                    "model": "The aggregator rule needs a model to write the aggregations; choose one (ideally stronger than the model you will train)."
                }
            )
        if model.task != ModelEntry.Task.GENERATION:
            raise ValidationError({"model": f"{model.name} is a reward model; choose a text-generation model."})
    if not source.preview:
        raise ValidationError({"source": f"Dataset “{source.name}” has no rows."})
    try:
        groups, _layout = response_groups(list(source.preview))
        prepare_examples(groups, config)
    except InvalidInputError as error:
        raise ValidationError({"source": f"Dataset “{source.name}”: {error}."}) from error
    except InvalidConfigError as error:
        raise ValidationError({"target_rule": f"Dataset “{source.name}”: {error}."}) from error
    return {
        "source_artifact_id": source.pk,
        "model_id": model.pk if (model is not None and config.needs_model) else None,
        "data": config.to_dict(),
    }


def inference_warnings(aft: AftConfig) -> list[EstimateWarning]:
    """Settings that waste an aggregation run, shown before queueing.

    Why: a layer of n samples at temperature 0 is n copies of one greedy answer, so the aggregator
    reads the same draft n times: the run costs n times plain sampling and aggregates nothing.
    """
    if aft.mode != "aggregate":
        return []
    layers = [("proposal", aft.proposal)] + ([("aggregation", aft.aggregation)] if aft.hidden_layer else [])
    greedy = [
        f"{name} ({sampling.n} samples)" for name, sampling in layers if sampling.n > 1 and sampling.temperature == 0
    ]
    if not greedy:
        return []
    return [
        EstimateWarning(
            f"Temperature 0 makes each layer's samples identical: {', '.join(greedy)}; the aggregator would read one "
            "draft several times. Raise the temperature (the paper samples at 0.7)."
        )
    ]
