"""Training runs: turn a form's choices into a validated training config, and queue it.

Everything is checked here, in the web process and before anything is queued, with the training
layer's own config classes (they import no torch): the preset and overrides, that the dataset has
the fields the trainer needs, and that the model fits the chosen device.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

from pipelines.errors import InvalidConfigError, InvalidInputError
from pipelines.llm.factory import model_directory
from pipelines.training.arguments import TrainingArgs, accumulation_for_effective_batch, effective_batch_text
from pipelines.training.config import REWARD_EFFECTIVE_BATCH, PreferenceConfig, RewardConfig, SFTConfig
from pipelines.training.layouts import validate_dataset_fields
from pipelines.training.length_preview import measure_dataset
from pipelines.training.memory import estimate_memory_fits, sharding_stage
from pipelines.training.presets import TRAINING_PRESETS, training_preset
from webapp.library.models import Artifact
from webapp.registry.models import ModelEntry

TRAINERS: dict[str, tuple[str, type]] = {
    "sft": ("train_sft", SFTConfig),
    "preference": ("train_preference", PreferenceConfig),
    "reward": ("train_reward", RewardConfig),
}
# Method-level options (outside TrainingArgs) each trainer accepts from the form.
METHOD_OPTIONS = {
    "sft": ("packing", "include_context", "completion_only_loss", "merge_adapter"),
    "preference": ("loss", "beta", "eval_fraction", "eval_steps", "merge_adapter", "disable_dropout"),
    "reward": ("eval_fraction", "eval_steps", "merge_adapter"),
}
# Length fields a data-sized preset fills in from the measured dataset unless the form sets them.
LENGTH_FIELDS = ("max_length", "max_prompt_length")
# Above this size a model trains on a GPU only: CPU runs are for small models.
CPU_MAX_PARAMETERS = 1_500_000_000
# Where a saved tokenizer keeps its chat template besides tokenizer_config.json's "chat_template".
CHAT_TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json")
RAW_FORMAT_LABEL = "raw (prompt\\n\\nAssistant: reply<eos>, raw_assistant)"


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
    training_overrides = training_overrides or {}
    try:
        config = config_class()
        chosen_preset = training_preset(preset) if preset else None
        if chosen_preset is not None:
            config = chosen_preset.apply(config)
        preset_training = chosen_preset.training if chosen_preset is not None else {}
        training = _merge(config.training.to_dict(), training_overrides)
        config = replace(config, training=TrainingArgs.from_dict(training))
        options = {key: value for key, value in (method_options or {}).items() if value is not None}
        unknown = set(options) - set(METHOD_OPTIONS[trainer])
        if unknown:
            raise InvalidConfigError(f"{trainer} training has no option(s) {', '.join(sorted(unknown))}")
        config = config_class.from_dict({**config.to_dict(), **options})
        accumulation_set = "gradient_accumulation_steps" in {*training_overrides, *preset_training}
        if trainer == "reward" and not accumulation_set:
            # ALMoST's 128 pairs a step, whatever the number of devices: 4 x 32 x 1, 4 x 8 x 4 ...
            accumulation = accumulation_for_effective_batch(
                REWARD_EFFECTIVE_BATCH, config.training.per_device_batch_size, devices
            )
            config = replace(config, training=replace(config.training, gradient_accumulation_steps=accumulation))
        sized_from_data = chosen_preset is not None and chosen_preset.sized_from_data
        if sized_from_data and not set(LENGTH_FIELDS) & set(training_overrides):
            config = _sized_from_data(config, trainer, model, dataset)
        chosen_format = training_overrides.get("prompt_format") or preset_training.get("prompt_format", "")
        prompt_format = resolve_prompt_format(model, chosen_format, "prompt_format")
        config = replace(config, training=replace(config.training, prompt_format=prompt_format))
    except (InvalidConfigError, InvalidInputError) as error:
        raise ValidationError(f"Invalid training settings: {error}.") from error
    except RecursionError as error:
        raise ValidationError("Invalid training settings: nested too deeply.") from error

    check_fits_memory(config.training, model, devices)
    return {
        "trainer": trainer,
        "model_id": model.pk,
        "reference_model_id": reference_model.pk if reference_model else None,
        "dataset_artifact_id": dataset.pk,
        "preset": preset,
        "devices": devices,
        # The worker launches this many processes (one per GPU it owns), so the run trains on the devices
        # the effective batch and the memory check counted; more than the worker owns is refused there.
        "distributed": {"processes": devices},
        "effective_batch": effective_batch_text(config.training, devices),
        "config": config.to_dict(),
    }


def _sized_from_data(config: Any, trainer: str, model: ModelEntry, dataset: Artifact) -> Any:
    """The config with max_length / max_prompt_length that fit every measured row of the dataset."""
    model_dir = measurable_model_dir(model)
    if model_dir is None:
        raise InvalidConfigError(
            f"this preset sizes max_length and max_prompt_length from the dataset, and {model.name}'s tokenizer is "
            "not on this host to measure it with; set both lengths"
        )
    report, _more = measure_dataset(
        trainer=trainer,
        model_dir=model_dir,
        dataset_path=dataset.jsonl_path,
        training=config.training,
        include_context=getattr(config, "include_context", False),
    )
    prompt_length, total_length = report.proposed_lengths()
    return replace(config, training=replace(config.training, max_length=total_length, max_prompt_length=prompt_length))


def measurable_model_dir(model: ModelEntry) -> Path | None:
    """The model's local directory when its tokenizer can be read here (no conversion, no download)."""
    spec = model.backend_spec()
    if spec.get("source") == "embedded":
        from pipelines.llm.embedded import EMBEDDED_MODEL_NAME

        path = Path(settings.MODEL_CACHE_DIR) / EMBEDDED_MODEL_NAME
        return path if (path / "tokenizer.json").is_file() else None
    try:
        return model_directory(spec, Path(settings.MODEL_CACHE_DIR))
    except InvalidConfigError:
        return None


def tokenizer_has_chat_template(model: ModelEntry) -> bool | None:
    """Whether the model's tokenizer carries a chat template, read from its saved files (no tokenizer is
    loaded in the web process); None when its tokenizer is not on this host to look at."""
    model_dir = measurable_model_dir(model)
    if model_dir is None:
        return None
    if any((model_dir / name).is_file() for name in CHAT_TEMPLATE_FILES):
        return True
    tokenizer_config = model_dir / "tokenizer_config.json"
    if not tokenizer_config.is_file():
        return None if not (model_dir / "tokenizer.json").is_file() else False
    try:
        values = json.loads(tokenizer_config.read_text())
    except (OSError, ValueError):
        return None  # unreadable here: the worker's tokenizer check has the last word
    return bool(isinstance(values, dict) and values.get("chat_template"))


def resolve_prompt_format(model: ModelEntry, chosen: str, field: str) -> str:
    """The prompt format a run trains `model` with, or a ValidationError on `field`.

    Blank picks the model's chat template when its tokenizer has one, else ALMoST's raw format
    (`prompt\\n\\nAssistant: reply<eos>`, what a base model is trained on in the paper). A tokenizer
    that is not on this host cannot be looked at: blank then keeps the chat template, and the worker
    refuses before training if there is none. "chat_template" on a model without one is refused here.
    """
    has_template = tokenizer_has_chat_template(model)
    if not chosen:
        return "raw_assistant" if has_template is False else "chat_template"
    if chosen == "chat_template" and has_template is False:
        raise ValidationError(
            {
                field: f"{model.name}'s tokenizer has no chat template (a base model), so its examples cannot be "
                f"formatted with one: choose {RAW_FORMAT_LABEL}, ALMoST's format for base models, or leave the "
                "field blank to pick it from the model."
            }
        )
    return chosen


def training_length_preview(*, config: dict[str, Any], model: ModelEntry, dataset: Artifact) -> dict[str, Any]:
    """What the dataset's token lengths mean for a built config: the preview's "Lengths" section.

    Keys: `message` (one sentence), `summary` (figures), `partial` (only the first rows were measured),
    `rows_over` and `error` (why nothing could be measured: the job measures when it starts).
    """
    trainer = config["trainer"]
    config_class = TRAINERS[trainer][1]
    training_config = config_class.from_dict(config["config"])
    model_dir = measurable_model_dir(model)
    if model_dir is None:
        return {"error": f"{model.name}'s tokenizer is not on this host; the job measures the lengths when it starts."}
    try:
        report, more = measure_dataset(
            trainer=trainer,
            model_dir=model_dir,
            dataset_path=dataset.jsonl_path,
            training=training_config.training,
            include_context=getattr(training_config, "include_context", False),
        )
    except (InvalidConfigError, InvalidInputError, OSError) as error:
        return {"error": str(error)}
    return {
        "message": report.message(),
        "summary": report.summary(),
        "partial": more,
        "measured_rows": report.measured_rows,
        "rows_over": report.rows_over,
        "over_length": report.over_length,
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
        raise ValidationError(
            {
                field: f"{model.name} is served by {model.get_backend_display()}; training needs local transformers weights."
            }
        )
    if model.task != ModelEntry.Task.GENERATION:
        raise ValidationError({field: f"{model.name} is a reward model; train from a text-generation model."})


def check_fits_memory(args: TrainingArgs, model: ModelEntry, devices: int) -> None:
    """Refuse a run whose weights, gradients and optimizer state cannot fit the device it asks for."""
    if not model.parameter_count:
        return  # unknown size (e.g. a directory without safetensors): the worker finds out
    device = args.device
    if device == "cpu" and model.parameter_count > CPU_MAX_PARAMETERS:
        raise ValidationError(
            {
                "device": f"{model.name} has {model.parameter_count / 1e9:.1f}B parameters; CPU training is for models "
                f"up to {CPU_MAX_PARAMETERS / 1e9:.1f}B. Choose cuda (a GPU worker) or a smaller model."
            }
        )
    if device == "auto":
        return  # the worker's hardware decides; it checks again when it starts
    available = _device_memory_bytes(device)
    try:
        estimate = estimate_memory_fits(
            model.parameter_count,
            args.dtype,
            device,
            args.adapter == "lora",
            qlora=args.qlora,
            available_bytes=available,
            devices=devices,
            zero_stage=sharding_stage(args.deepspeed_config, args.trainer_overrides),
        )
    except InvalidConfigError as error:
        raise ValidationError({"device": f"Cannot size the run: {error}."}) from error
    if not estimate.fits:
        raise ValidationError({"device": f"Does not fit: {estimate.message}."})


def worker_training_devices() -> int:
    """How many processes a training worker launches for a run: one per GPU it owns, else its CPU processes.

    The same settings the worker reads (`REFINERY_TRAINING_DEVICES`, `REFINERY_TRAINING_PROCESSES`), so
    the forms start from the device count the run will actually train on.
    """
    return len(settings.REFINERY_TRAINING_DEVICES) or max(1, int(settings.REFINERY_TRAINING_PROCESSES))


def _device_memory_bytes(device: str) -> int:
    """Memory of one training device, without touching torch (the web process never loads it)."""
    if device == "cuda":
        return int(settings.TRAINING_GPU_MEMORY_GIB * 1024**3)
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def training_kind(config: dict[str, Any]) -> str:
    """The run kind of a built training config: its trainer decides (train_sft, train_preference, train_reward)."""
    return TRAINERS[config["trainer"]][0]


def preset_table() -> list[dict[str, Any]]:
    """The presets and what each sets, for the form's explanation."""
    return [
        {
            "name": preset.name,
            "description": preset.description,
            "values": {**preset.training, **preset.options},
            "trainers": preset.trainers,
        }
        for preset in TRAINING_PRESETS
    ]
