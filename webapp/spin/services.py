"""SPIN runs: build a validated SPIN config from the form's choices (before anything is queued), and queue it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.core.exceptions import ValidationError

from pipelines.common.presets import preset_named
from pipelines.errors import InvalidInputError
from pipelines.llm.types import SamplingParams
from pipelines.spin import SPIN_PRESETS, SpinConfig
from pipelines.spin.config import PRESETS_WITH_PAPER_BATCH, batch_for_devices, effective_batch
from pipelines.training.arguments import TrainingArgs
from pipelines.training.layouts import validate_dataset_fields
from webapp.library.models import Artifact
from webapp.registry.models import ModelEntry
from webapp.training.services import check_fits_memory, check_trainable


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
    conversation_turn: str = "first",
) -> dict[str, Any]:
    """The run config of a SPIN run; refused with a ValidationError (dataset, memory) or the config's
    own InvalidConfigError, each naming the field that is wrong.

    Layers, later wins: the paper's defaults (`SpinConfig()`), the preset, the paper's effective
    batch of 64 split over `devices` (for the presets that follow the paper's batch), then the
    form's fields.
    """
    check_trainable(model, "model")
    try:
        validate_dataset_fields("sft", dataset.columns)
    except InvalidInputError as error:
        raise ValidationError({"dataset": f"Dataset “{dataset.name}”: {error}."}) from error
    config = SpinConfig()
    if preset:
        config = preset_named(SPIN_PRESETS, preset).apply(config)
    if preset in PRESETS_WITH_PAPER_BATCH:
        config = batch_for_devices(config, devices)
    changes: dict[str, Any] = {"mix_previous": mix_previous, "conversation_turn": conversation_turn}
    if iterations is not None:
        changes["iterations"] = iterations
    if max_prompts is not None:
        changes["max_prompts"] = max_prompts
    if max_new_tokens is not None:
        changes["generation"] = SamplingParams.from_dict({**config.generation.to_dict(), "max_tokens": max_new_tokens})
    training = config.training
    if training_overrides:
        training = replace(
            training, training=TrainingArgs.from_dict({**training.training.to_dict(), **training_overrides})
        )
    if beta is not None:
        training = replace(training, beta=beta)
    config = SpinConfig.from_dict({**replace(config, **changes, training=training).to_dict()})
    check_fits_memory(config.training.training, model, devices)
    return {
        "model_id": model.pk,
        "dataset_artifact_id": dataset.pk,
        "preset": preset,
        "devices": devices,
        "spin": config.to_dict(),
    }


def training_summary(config: dict[str, Any]) -> dict[str, str]:
    """How a SPIN run trains, in words, for the form's preview and the run page: what is the paper's and what is ours."""
    spin = SpinConfig.from_dict(config["spin"])
    args = spin.training.training
    batch = effective_batch(args, int(config.get("devices", 1)))
    if args.adapter == "full":
        adapter = "full fine-tuning (the paper's)"
    else:
        adapter = f"LoRA r{args.lora.r}, alpha {args.lora.alpha}{' on a 4-bit base' if args.qlora else ''} (ours; the paper fine-tunes every weight)"
    plan = spin.plan()
    return {
        "adapter": adapter,
        "optimizer": f"{args.optimizer}, {args.lr_scheduler} schedule, warmup {args.warmup_ratio:g}",
        "effective batch": (
            f"{batch['per_device']} per device × {batch['accumulation']} accumulation × {batch['devices']} "
            f"device{'s' if batch['devices'] != 1 else ''} = {batch['effective']} (paper: 8 × 1 × 8 = 64)"
        ),
        "length": "max_steps " + str(args.max_steps)
        if args.max_steps > 0
        else f"{args.num_epochs:g} epochs per iteration",
        "learning rate per iteration": ", ".join(f"{row['learning_rate']:.3g}" for row in plan),
        "beta per iteration": ", ".join(f"{row['beta']:g}" for row in plan),
        "prompt turn": spin.conversation_turn,
    }


def spin_cost_estimate(*, prompt_count: int, config: dict[str, Any], dataset: Artifact | None = None) -> dict[str, Any]:
    """Generations and training pairs the run implies, and how it trains, shown before it is queued.

    With `conversation_turn: every` a row gives one prompt per reply, so the dataset is read to count them.
    """
    spin = SpinConfig.from_dict(config["spin"])
    rows = min(prompt_count, spin.max_prompts) if spin.max_prompts else prompt_count
    prompts = rows
    if spin.conversation_turn == "every" and dataset is not None:
        from pipelines.spin.run import build_spin_prompts
        from pipelines.training.examples import read_rows

        try:
            prompts = build_spin_prompts(read_rows(dataset.jsonl_path), spin.max_prompts, "every")[1]["prompts"]
        except InvalidInputError as error:
            raise ValidationError({"dataset": f"Dataset “{dataset.name}”: {error}."}) from error
    pair_counts = [prompts * (2 if spin.mix_previous and t > 0 else 1) for t in range(spin.iterations)]
    return {
        "iterations": spin.iterations,
        "prompts": prompts,
        "generations": prompts * spin.iterations,
        "max_new_tokens": prompts * spin.iterations * spin.generation.max_tokens,
        "training_pairs": sum(pair_counts),
        **training_summary(config),
    }
