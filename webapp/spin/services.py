"""SPIN runs: build a validated SPIN config from the form's choices (before anything is queued), and queue it."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.core.exceptions import ValidationError

from pipelines.errors import InvalidConfigError, InvalidInputError
from pipelines.llm.types import SamplingParams
from pipelines.spin import SPIN_PRESETS, SpinConfig
from pipelines.training.config import TrainingArgs, validate_dataset_fields
from webapp.registry.models import ModelEntry
from webapp.runs import services as run_services
from webapp.runs.models import Artifact, PipelineRun
from webapp.training.services import check_fits, check_trainable


def spin_config_build(
    *,
    model: ModelEntry,
    dataset: Artifact,
    preset: str = "tiny-cpu-demo",
    iterations: int | None = None,
    max_prompts: int | None = None,
    max_new_tokens: int | None = None,
    training_overrides: dict[str, Any] | None = None,
    beta: float | None = None,
    mix_previous: bool = True,
    devices: int = 1,
) -> dict[str, Any]:
    """The run config of a SPIN run, or a ValidationError naming the field that is wrong.

    Layers, later wins: the paper's defaults, the preset, then the form's fields.
    """
    check_trainable(model, "model")
    try:
        validate_dataset_fields("sft", dataset.columns)
    except InvalidInputError as error:
        raise ValidationError({"dataset": f"Dataset “{dataset.name}”: {error}."}) from error
    try:
        config = SpinConfig()
        if preset:
            if preset not in SPIN_PRESETS:
                raise InvalidConfigError(f"unknown preset {preset!r}; choose one of {', '.join(SPIN_PRESETS)}")
            config = SPIN_PRESETS[preset](config)
        changes: dict[str, Any] = {"mix_previous": mix_previous}
        if iterations is not None:
            changes["iterations"] = iterations
        if max_prompts is not None:
            changes["max_prompts"] = max_prompts
        if max_new_tokens is not None:
            changes["generation"] = SamplingParams.from_dict({**config.generation.to_dict(), "max_tokens": max_new_tokens})
        training = config.training
        if training_overrides:
            training = replace(training, training=TrainingArgs.from_dict({**training.training.to_dict(), **training_overrides}))
        if beta is not None:
            training = replace(training, beta=beta)
        config = SpinConfig.from_dict({**replace(config, **changes, training=training).to_dict()})
    except InvalidConfigError as error:
        raise ValidationError(f"Invalid SPIN settings: {error}.") from error
    check_fits(config.training.training, model, devices)
    return {
        "model_id": model.pk,
        "dataset_artifact_id": dataset.pk,
        "preset": preset,
        "devices": devices,
        "spin": config.to_dict(),
    }


def spin_cost_estimate(*, prompt_count: int, config: dict[str, Any]) -> dict[str, int]:
    """Generations and training pairs the run implies, shown before it is queued."""
    spin = SpinConfig.from_dict(config["spin"])
    prompts = min(prompt_count, spin.max_prompts) if spin.max_prompts else prompt_count
    pair_counts = [prompts * (2 if spin.mix_previous and t > 0 else 1) for t in range(spin.iterations)]
    return {
        "iterations": spin.iterations,
        "prompts": prompts,
        "generations": prompts * spin.iterations,
        "max_new_tokens": prompts * spin.iterations * spin.generation.max_tokens,
        "training_pairs": sum(pair_counts),
    }


def spin_run_create(*, user: Any, config: dict[str, Any], name: str = "") -> PipelineRun:
    return run_services.run_create(user=user, kind=PipelineRun.Kind.SPIN, config=config, name=name, queue_name="gpu")
