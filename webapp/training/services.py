"""Training runs: turn a form's choices into a validated training config, and queue it.

Everything is checked here, in the web process and before anything is queued, with the training
layer's own config classes (they import no torch): the preset and overrides, that the dataset has
the fields the trainer needs, and that the model fits the chosen device.
"""
from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

from pipelines.errors import InvalidConfigError, InvalidInputError
from pipelines.training.config import (
    PRESETS,
    PreferenceConfig,
    RewardConfig,
    SFTConfig,
    TrainingArgs,
    apply_preset,
    estimate_memory_fits,
    validate_dataset_fields,
)
from webapp.registry.models import ModelEntry
from webapp.runs import services as run_services
from webapp.runs.models import Artifact, PipelineRun

TRAINERS: dict[str, tuple[str, type]] = {
    "sft": (PipelineRun.Kind.TRAIN_SFT, SFTConfig),
    "preference": (PipelineRun.Kind.TRAIN_PREFERENCE, PreferenceConfig),
    "reward": (PipelineRun.Kind.TRAIN_REWARD, RewardConfig),
}
# Method-level options (outside TrainingArgs) each trainer accepts from the form.
METHOD_OPTIONS = {
    "sft": ("packing", "include_context", "merge_adapter"),
    "preference": ("loss", "beta", "eval_fraction", "eval_steps", "merge_adapter"),
    "reward": ("eval_fraction", "eval_steps", "merge_adapter"),
}
# Above this size a model trains on a GPU only: CPU runs are for small models.
CPU_MAX_PARAMETERS = 1_500_000_000


def training_config_build(
    *,
    trainer: str,
    model: ModelEntry,
    dataset: Artifact,
    preset: str = "",
    training_overrides: dict[str, Any] | None = None,
    method_options: dict[str, Any] | None = None,
    devices: int = 1,
    reference_model: ModelEntry | None = None,
) -> dict[str, Any]:
    """The run config for a training job, or a ValidationError naming the field that is wrong.

    Layers, later wins: the trainer's defaults (the papers'), the preset, then the form's fields.
    """
    if trainer not in TRAINERS:
        raise ValidationError({"trainer": f"Unknown trainer {trainer!r}; choose one of {', '.join(TRAINERS)}."})
    check_trainable(model, "model")
    if reference_model is not None:
        if trainer != "preference":
            raise ValidationError({"reference_model": "Only preference training uses a reference model."})
        check_trainable(reference_model, "reference_model")
    try:
        validate_dataset_fields(trainer, dataset.columns)
    except InvalidInputError as error:
        raise ValidationError({"dataset": f"Dataset “{dataset.name}”: {error}."}) from error

    config_class = TRAINERS[trainer][1]
    try:
        config = config_class()
        if preset:
            config = apply_preset(config, preset)
        training = _merge(config.training.to_dict(), training_overrides or {})
        config = replace(config, training=TrainingArgs.from_dict(training))
        options = {key: value for key, value in (method_options or {}).items() if value is not None}
        unknown = set(options) - set(METHOD_OPTIONS[trainer])
        if unknown:
            raise InvalidConfigError(f"{trainer} training has no option(s) {', '.join(sorted(unknown))}")
        config = config_class.from_dict({**config.to_dict(), **options})
    except InvalidConfigError as error:
        raise ValidationError(f"Invalid training settings: {error}.") from error

    check_fits(config.training, model, devices)
    return {
        "trainer": trainer,
        "model_id": model.pk,
        "reference_model_id": reference_model.pk if reference_model else None,
        "dataset_artifact_id": dataset.pk,
        "preset": preset,
        "devices": devices,
        "config": config.to_dict(),
    }


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Overrides over base; a nested object (lora) is merged key by key, so `{"lora": {"r": 4}}` keeps alpha."""
    merged = dict(base)
    for key, value in overrides.items():
        merged[key] = {**base[key], **value} if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


def check_trainable(model: ModelEntry, field: str) -> None:
    """Refuse models a trainer cannot load: remote endpoints and reward models."""
    if model.backend != ModelEntry.Backend.TRANSFORMERS or model.source == ModelEntry.Source.ENDPOINT:
        raise ValidationError({field: f"{model.name} is served by {model.get_backend_display()}; training needs local transformers weights."})
    if model.task != ModelEntry.Task.GENERATION:
        raise ValidationError({field: f"{model.name} is a reward model; train from a text-generation model."})


def check_fits(args: TrainingArgs, model: ModelEntry, devices: int) -> None:
    """Refuse a run whose weights, gradients and optimizer state cannot fit the device it asks for."""
    if not model.parameter_count:
        return  # unknown size (e.g. a directory without safetensors): the worker finds out
    device = args.device
    if device == "cpu" and model.parameter_count > CPU_MAX_PARAMETERS:
        raise ValidationError(
            {"device": f"{model.name} has {model.parameter_count / 1e9:.1f}B parameters; CPU training is for models "
             f"up to {CPU_MAX_PARAMETERS / 1e9:.1f}B. Choose cuda (a GPU worker) or a smaller model."}
        )
    if device == "auto":
        return  # the worker's hardware decides; it checks again when it starts
    available = _device_memory_bytes(device)
    estimate = estimate_memory_fits(
        model.parameter_count,
        args.dtype,
        device,
        args.adapter == "lora",
        qlora=args.qlora,
        available_bytes=available,
        devices=devices,
    )
    if not estimate.fits:
        raise ValidationError({"device": f"Does not fit: {estimate.message}."})


def _device_memory_bytes(device: str) -> int:
    """Memory of one training device, without touching torch (the web process never loads it)."""
    if device == "cuda":
        return int(settings.TRAINING_GPU_MEMORY_GIB * 1024**3)
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def training_run_create(*, user: Any, config: dict[str, Any], name: str = "") -> PipelineRun:
    """Queue a validated training config on the gpu queue (CPU workers listen there too)."""
    kind = TRAINERS[config["trainer"]][0]
    return run_services.run_create(user=user, kind=kind, config=config, name=name, queue_name="gpu")


def preset_table() -> list[dict[str, Any]]:
    """The presets and what each sets, for the form's explanation."""
    from pipelines.training.config import PRESET_DESCRIPTIONS

    return [
        {"name": name, "description": PRESET_DESCRIPTIONS.get(name, ""), "values": values}
        for name, values in PRESETS.items()
    ]
