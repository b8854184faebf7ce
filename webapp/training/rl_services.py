"""RL training runs: a policy, a reward model and a prompt set in, a validated RL config out, checked before queueing.

Layers, later wins: the RL stage's defaults (TRL's PPO settings, `pipelines/training/rl/config.py`),
the preset, then the form's fields and its extra settings. Checked here, in the web process, with
the pipeline's own config class (no torch): the models (a trainable generation model as the policy,
a local reward model as the reward), the prompts, the settings and whether the run fits its device.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from pipelines.errors import InvalidConfigError
from pipelines.training.rl.config import RLConfig
from pipelines.training.rl.presets import RL_PRESETS, lay_over, rl_default_values, rl_memory_estimate, rl_preset
from pipelines.training.rl.prompts import PROMPT_FIELDS
from webapp.library.models import Artifact, SeedPromptSet
from webapp.registry.models import ModelEntry

from .services import (
    CPU_MAX_PARAMETERS,
    _device_memory_bytes,
    check_trainable,
    resolve_prompt_format,
    worker_training_devices,
)

RL_TRAINER = "rl"
RL_KIND = "train_rl"
GIB = 1024**3


def rl_config_build(
    *,
    model: ModelEntry,
    reward_model: ModelEntry,
    prompt_set: SeedPromptSet | None = None,
    prompts_dataset: Artifact | None = None,
    preset: str = "",
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The run config of an RL run, or a ValidationError naming the field that is wrong.

    `settings` are RLConfig values from the form (`{"kl_coef": 0.1, "training": {"max_steps": 50}}`),
    laid over the preset. Exactly one of `prompt_set` (snapshotted by the worker when the run starts)
    and `prompts_dataset` (a dataset with a prompt column) gives the prompts.
    """
    check_trainable(model, "model")
    check_reward_model(reward_model)
    check_prompts(prompt_set, prompts_dataset)
    try:
        values = rl_default_values()
        if preset:
            values = rl_preset(preset).lay_over_values(values)
        values = lay_over(values, settings or {})
        config = RLConfig.from_dict(values)
    except InvalidConfigError as error:
        message = f"Invalid RL settings: {error}."
        raise (ValidationError({error.field: message}) if error.field else ValidationError(message)) from error
    except (TypeError, RecursionError) as error:
        raise ValidationError(f"Invalid RL settings: {error}.") from error
    chosen_format = (settings or {}).get("training", {}).get("prompt_format") or ""
    prompt_format = resolve_prompt_format(model, chosen_format, "prompt_format")
    config = RLConfig.from_dict(lay_over(config.to_dict(), {"training": {"prompt_format": prompt_format}}))
    check_rl_fits_memory(config, model, reward_model)
    processes = 1 if config.algorithm == "ppo" else worker_training_devices()
    return {
        "trainer": RL_TRAINER,
        "model_id": model.pk,
        "reward_model_id": reward_model.pk,
        "prompt_set_id": prompt_set.pk if prompt_set is not None else None,
        "prompts_dataset_id": prompts_dataset.pk if prompts_dataset is not None else None,
        "preset": preset,
        # PPO trains in one process (policy, reference, reward and value model on one device); RLOO and GRPO
        # on every device the worker owns, as the other trainers do (each rank a copy of every model).
        "distributed": {"processes": processes},
        "effective_batch": rl_batch_text(config, processes),
        "config": config.to_dict(),
    }


def check_reward_model(reward_model: ModelEntry) -> None:
    """The reward model must score (task=reward) and have local transformers weights the worker loads."""
    if reward_model.task != ModelEntry.Task.REWARD:
        raise ValidationError(
            {
                "reward_model": f"{reward_model.name} is a {reward_model.get_task_display().lower()} model, not a "
                "reward model: choose a registry entry with task “reward” (train one with “Train: reward model”)."
            }
        )
    if reward_model.backend != ModelEntry.Backend.TRANSFORMERS or reward_model.source == ModelEntry.Source.ENDPOINT:
        raise ValidationError(
            {
                "reward_model": f"{reward_model.name} is served by {reward_model.get_backend_display()}; RL scores "
                "responses with local transformers weights."
            }
        )


def check_prompts(prompt_set: SeedPromptSet | None, prompts_dataset: Artifact | None) -> None:
    """Exactly one source of prompts, and it holds prompts."""
    if (prompt_set is None) == (prompts_dataset is None):
        message = "Choose the prompts to train on: a prompt set or a dataset with a prompt column (one of them)."
        raise ValidationError({"prompt_set": message})
    if prompt_set is not None and prompt_set.prompt_count == 0:
        raise ValidationError({"prompt_set": f"Prompt set “{prompt_set.name}” holds no prompt."})
    if prompts_dataset is not None and not set(PROMPT_FIELDS) & set(prompts_dataset.columns):
        raise ValidationError(
            {
                "prompts_dataset": f"Dataset “{prompts_dataset.name}” has no prompt column (one of "
                f"{', '.join(PROMPT_FIELDS)}); its columns: {', '.join(prompts_dataset.columns) or 'none'}."
            }
        )


def check_rl_fits_memory(config: RLConfig, model: ModelEntry, reward_model: ModelEntry) -> None:
    """Refuse a run whose policy, reference, reward model (and PPO's value model) cannot fit its one device."""
    args = config.training
    if not model.parameter_count:
        return  # unknown size: the worker finds out
    if args.device == "cpu" and model.parameter_count > CPU_MAX_PARAMETERS:
        raise ValidationError(
            {
                "device": f"{model.name} has {model.parameter_count / 1e9:.1f}B parameters; CPU training is for "
                f"models up to {CPU_MAX_PARAMETERS / 1e9:.1f}B. Choose cuda (a GPU worker) or a smaller model."
            }
        )
    if args.device == "auto":
        return  # the worker's hardware decides
    parts = rl_memory_estimate(config, model.parameter_count, reward_model.parameter_count or None)
    available = _device_memory_bytes(args.device)
    if parts["total"] > available:
        shares = ", ".join(
            f"{name.replace('_', ' ')} {size / GIB:.1f}" for name, size in parts.items() if name != "total"
        )
        raise ValidationError(
            {
                "device": f"Does not fit: RL holds {parts['total'] / GIB:.1f} GiB on one device ({shares} GiB); "
                f"{args.device} has {available / GIB:.1f} GiB. Use LoRA, RLOO/GRPO (no value model) or smaller models."
            }
        )


def rl_batch_text(config: RLConfig, devices: int = 1) -> str:
    """What one RL step samples, spelt out: "8 prompts x 4 responses = 32 rollouts a step" (per device, then
    "x 8 devices = 256" when a group of RLOO/GRPO ranks each samples its own batch)."""
    prompts = config.prompts_per_step
    responses = 1 if config.algorithm == "ppo" else config.num_generations
    text = f"{prompts} prompts x {responses} response{'s' if responses > 1 else ''} = {prompts * responses} rollouts"
    if devices > 1:
        return f"{text} x {devices} devices = {prompts * responses * devices} rollouts a step"
    return f"{text} a step"


def rl_kind(config: dict[str, Any]) -> str:
    """The run kind of a built RL config (one form, one kind)."""
    return RL_KIND


def rl_preset_table() -> list[dict[str, Any]]:
    """The RL presets and what each sets, for the form page's explanation."""
    return [
        {"name": preset.name, "description": preset.description, "values": {**preset.options, **preset.training}}
        for preset in RL_PRESETS
    ]
