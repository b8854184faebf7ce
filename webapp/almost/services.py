"""ALMoST runs from the site: build and check the rubric and the run config, estimate the cost, queue.

Everything a worker would trip over is refused here, before anything is queued: a seed set without
prompts, a rubric of fewer than two configurations, a configuration whose demonstration set is
missing or too short for its shots, two entries that are the same configuration, a reward base
model that cannot be trained. The pipeline's own config classes (no torch) do the numeric checks.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.text import slugify

from pipelines.almost.config import (
    DEFAULT_RESPONSE_MAX_TOKENS,
    FILTERS,
    AlmostConfig,
    configuration_name,
    estimate_cost,
)
from pipelines.errors import InvalidConfigError
from pipelines.training.arguments import TrainingArgs
from pipelines.training.config import RewardConfig, SFTConfig
from pipelines.training.presets import training_preset
from webapp.core.forms import config_refusal
from webapp.core.run_forms import EstimateWarning
from webapp.library.models import FewShotSet, SeedPromptSet
from webapp.registry.models import ModelEntry
from webapp.training.services import check_trainable, resolve_prompt_format

_LABEL_NOISE = {"demonstration", "demonstrations", "prompt", "prompts", "set", "style"}


# Which form field holds each config field (`InvalidConfigError.field`), so a refusal lands beside it;
# any other config field's refusal goes on top of the form.
@dataclass(frozen=True)
class PolicyChoice:
    """The policy stages as the form gives them: SFT, then RL (algorithm, preset, steps, held-out prompts)."""

    sft: bool = False
    rl: bool = False
    algorithm: str = "ppo"
    rl_preset: str = ""
    rl_max_steps: int | None = None
    held_out_prompts: int | None = None
    model: ModelEntry | None = None


FORM_FIELD_FOR_CONFIG_FIELD = {
    "policy.rl_enabled": "policy_rl",
    "policy.sft_enabled": "policy_sft",
    "policy.rl.held_out_prompts": "rl_held_out_prompts",
    "prompt_generation.num_generation": "num_generation",
    "prompt_generation.in_context": "in_context",
    "prompt_generation.max_tokens": "prompt_max_tokens",
    "rmsp.n": "rmsp_n",
    "rmsp.enabled": "rmsp_enabled",
}


@dataclass(frozen=True)
class ConfigurationChoice:
    """One rubric entry as the form gives it: a model, a number of shots, a demonstration set (or none)."""

    model: ModelEntry
    shots: int
    demonstration_set: FewShotSet | None = None


def model_label(model: ModelEntry) -> str:
    """The model part of a configuration's name (the original lower-cases the model's directory name)."""
    return slugify(model.name) or f"model-{model.pk}"


def prompt_label(few_shot_set: FewShotSet) -> str:
    """The prompt part: "HHH demonstration prompt" -> "hhh", "Faithful demonstration prompt" -> "faithful"."""
    words = [word for word in slugify(few_shot_set.name).split("-") if word and word not in _LABEL_NOISE]
    return "-".join(words) or f"prompt-{few_shot_set.pk}"


def choice_name(choice: ConfigurationChoice) -> str:
    """The configuration's name in the pipeline (`<model>-<prompt>-<k>shot`), for messages about the choice."""
    prompt = prompt_label(choice.demonstration_set) if choice.demonstration_set else ""
    return configuration_name(model_label(choice.model), prompt, choice.shots)


def demonstration_richness(few_shot_set: FewShotSet | None) -> float:
    """Mean characters per dialogue: the "better demonstrations" proxy (ALMoST's Faithful prompt has
    fewer, longer and more detailed dialogues than its HHH prompt, and ranks above it)."""
    if few_shot_set is None:
        return -1.0
    lengths = [len(text) for text in few_shot_set.examples.values_list("context", flat=True)]
    return statistics.fmean(lengths) if lengths else 0.0


def rubric_default_order(choices: list[ConfigurationChoice]) -> list[ConfigurationChoice]:
    """The rules of thumb, best first: larger model, then more shots, then better demonstrations."""
    richness = {id(choice): demonstration_richness(choice.demonstration_set) for choice in choices}
    return sorted(
        choices,
        key=lambda choice: (-(choice.model.parameter_count or 0), -choice.shots, -richness[id(choice)]),
    )


def _check_choice(index: int, choice: ConfigurationChoice) -> None:
    where = f"Configuration {index} ({choice_name(choice)})"
    if choice.model.task != ModelEntry.Task.GENERATION:
        raise ValidationError(
            {"configurations": f"{where}: {choice.model.name} is a reward model; choose a text-generation model."}
        )
    if choice.shots < 0:
        raise ValidationError({"configurations": f"{where}: shots cannot be negative."})
    if choice.demonstration_set is None:
        if choice.shots:
            raise ValidationError(
                {
                    "configurations": f"{where}: {choice.shots} shots need a demonstration set to take the dialogues from."
                }
            )
        return
    if choice.demonstration_set.kind != FewShotSet.Kind.DEMONSTRATION:
        raise ValidationError(
            {
                "configurations": f"{where}: “{choice.demonstration_set.name}” is a QA set; choose a demonstration prompt set."
            }
        )
    available = choice.demonstration_set.examples.count()
    if choice.shots > available:
        raise ValidationError(
            {
                "configurations": f"{where}: {choice.shots} shots, but “{choice.demonstration_set.name}” holds only "
                f"{available} dialogues. Lower the shots or add dialogues to the set."
            }
        )


def almost_config_build(
    *,
    seed_prompt_set: SeedPromptSet,
    configurations: list[ConfigurationChoice],
    reward_model: ModelEntry,
    num_generation: int = 100,
    in_context: int = 10,
    rmsp_n: int = 4,
    rmsp_enabled: bool = True,
    filters: dict[str, bool] | None = None,
    preset: str = "",
    reward_max_steps: int | None = None,
    reward_eval_fraction: float | None = None,
    response_max_tokens: int | None = None,
    prompt_max_tokens: int | None = None,
    reward_overrides: dict[str, Any] | None = None,
    reward_prompt_format: str = "",
    constrained_output: bool = True,
    policy: PolicyChoice | None = None,
) -> dict[str, Any]:
    """The run config of an ALMoST run, or a ValidationError naming the field and the fix."""
    if not seed_prompt_set.prompts.exists():
        raise ValidationError({"seed_prompt_set": f"Seed prompt set “{seed_prompt_set.name}” has no prompts."})
    if len(configurations) < 2:
        raise ValidationError(
            {
                "configurations": f"The rubric needs at least two configurations to compare; it has {len(configurations)}."
            }
        )
    model_ids: dict[str, int] = {}
    set_ids: dict[str, int] = {}
    for index, choice in enumerate(configurations, start=1):
        _check_choice(index, choice)
        label = model_label(choice.model)
        if model_ids.setdefault(label, choice.model.pk) != choice.model.pk:
            raise ValidationError(
                {"configurations": f"Two different models are both labelled {label!r}; rename one in the registry."}
            )
        if choice.demonstration_set is not None:
            label = prompt_label(choice.demonstration_set)
            if set_ids.setdefault(label, choice.demonstration_set.pk) != choice.demonstration_set.pk:
                raise ValidationError(
                    {"configurations": f"Two different demonstration sets are both labelled {label!r}; rename one."}
                )
    check_trainable(reward_model, "reward_model")
    chosen_format = reward_prompt_format or (reward_overrides or {}).get("prompt_format", "")
    prompt_format = resolve_prompt_format(reward_model, chosen_format, "reward_prompt_format")
    reward = training_preset(preset).apply(RewardConfig()) if preset else RewardConfig()  # unknown: refused on "preset"
    unknown_filters = set(filters or {}) - set(FILTERS)
    if unknown_filters:
        raise ValidationError({"filters": f"Unknown filter(s) {', '.join(sorted(unknown_filters))}."})

    rubric = []
    for choice in configurations:
        prompt = prompt_label(choice.demonstration_set) if choice.demonstration_set else ""
        # Left out, max_tokens follows the original's rule in the pipeline config (768 with Faithful, else 384).
        entry: dict[str, Any] = {"model": model_label(choice.model), "shots": choice.shots, "prompt": prompt}
        if response_max_tokens:
            entry["max_tokens"] = response_max_tokens
        rubric.append(entry)
    try:
        training = {**reward.training.to_dict(), **(reward_overrides or {}), "prompt_format": prompt_format}
        if reward_max_steps:
            training["max_steps"] = reward_max_steps
        reward_values = {**reward.to_dict(), "training": TrainingArgs.from_dict(training).to_dict()}
        if reward_eval_fraction is not None:
            reward_values["eval_fraction"] = reward_eval_fraction
        reward = RewardConfig.from_dict(reward_values)
        pg: dict[str, Any] = {
            "num_generation": num_generation,
            "in_context": in_context,
            "constrained_output": constrained_output,
        }
        if prompt_max_tokens:
            pg["max_tokens"] = prompt_max_tokens
        config = AlmostConfig.from_dict(
            {
                "configurations": rubric,
                "prompt_generation": pg,
                "comparisons": {"filters": dict(filters or {})},
                "reward": reward.to_dict(),
                "rmsp": {"n": rmsp_n, "enabled": rmsp_enabled},
                "policy": policy_config_values(policy or PolicyChoice(), preset, reward_model),
            }
        )
    except InvalidConfigError as error:
        raise config_refusal(error, FORM_FIELD_FOR_CONFIG_FIELD, f"Invalid ALMoST settings: {error}.") from error
    policy_ids = {"policy_model_id": policy.model.pk} if policy is not None and policy.model is not None else {}
    return {
        **policy_ids,
        "almost": config.to_dict(),
        "seed_prompt_set_id": seed_prompt_set.pk,
        "model_ids": model_ids,
        "demonstration_set_ids": set_ids,
        "reward_model_id": reward_model.pk,
        "preset": preset,
        "rl_preset": policy.rl_preset if policy is not None else "",
    }


def policy_config_values(policy: PolicyChoice, preset: str, reward_model: ModelEntry) -> dict[str, Any]:
    """The `policy` part of the ALMoST config: SFT with the run's training preset, RL with its own preset.

    Both read prompts in the policy base's format (its chat template when it has one), so the RL stage
    prompts the SFT policy as it was trained.
    """
    from pipelines.training.rl.presets import lay_over, rl_default_values, rl_preset

    base = policy.model or reward_model
    if policy.model is not None:
        check_trainable(policy.model, "policy_model")
    prompt_format = resolve_prompt_format(base, "", "policy_model")
    sft = training_preset(preset).apply(SFTConfig()) if preset else SFTConfig()
    sft_values = {**sft.to_dict(), "training": {**sft.training.to_dict(), "prompt_format": prompt_format}}
    rl_values = rl_default_values()
    if policy.rl_preset:
        rl_values = rl_preset(policy.rl_preset).lay_over_values(rl_values)
    changes: dict[str, Any] = {"algorithm": policy.algorithm, "training": {"prompt_format": prompt_format}}
    if policy.rl_max_steps:
        changes["training"]["max_steps"] = policy.rl_max_steps
    if policy.held_out_prompts:
        changes["held_out_prompts"] = policy.held_out_prompts
    return {
        "sft_enabled": policy.sft,
        "rl_enabled": policy.rl,
        "sft": sft_values,
        "rl": lay_over(rl_values, changes),
    }


def almost_cost_estimate(config: dict[str, Any]) -> dict[str, Any]:
    """Generations, new tokens and reward-model steps the run implies (upper bounds), shown before queueing,
    and the text format the reward model will read (what a blank choice resolved to for its tokenizer)."""
    almost = AlmostConfig.from_dict(config["almost"])
    return {**estimate_cost(almost), "reward_prompt_format": almost.reward.training.prompt_format}


SHORT_RESPONSE_TOKENS = 128
"""A response cap below this (about 500 characters, one paragraph) stops many answers mid-sentence."""
CHARACTERS_PER_TOKEN = 4
"""English text's usual characters per token, as the other estimates assume."""


def almost_warnings(config: dict[str, Any]) -> list[EstimateWarning]:
    """Settings that will empty most of the comparisons, shown before queueing.

    Why: a response cut at its token cap ends mid-sentence, and the `no_final_punctuation` filter
    then drops every pair it is in; a cap shorter than `too_short`'s bound drops them all the same.
    The run would finish with few or no comparisons and a reward model trained on nothing.
    """
    almost = AlmostConfig.from_dict(config["almost"])
    filters = almost.comparisons.filters
    warnings = []
    short = [entry for entry in almost.configurations if entry.max_tokens < SHORT_RESPONSE_TOKENS]
    if filters["no_final_punctuation"] and short:
        named = ", ".join(f"{entry.name} ({entry.max_tokens} tokens)" for entry in short)
        warnings.append(
            EstimateWarning(
                f"Responses capped short: {named}. A response cut at its cap ends mid-sentence, and the "
                "no_final_punctuation filter removes every pair it is in, so most comparisons may be lost. "
                f"Raise the response cap to {SHORT_RESPONSE_TOKENS} tokens or more (the original's is "
                f"{DEFAULT_RESPONSE_MAX_TOKENS}), or switch the filter off."
            )
        )
    bound = almost.comparisons.min_response_chars
    too_short = [entry for entry in almost.configurations if entry.max_tokens * CHARACTERS_PER_TOKEN < bound]
    if filters["too_short"] and too_short:
        named = ", ".join(f"{entry.name} ({entry.max_tokens} tokens)" for entry in too_short)
        warnings.append(
            EstimateWarning(
                f"{named}: at about {CHARACTERS_PER_TOKEN} characters a token, these responses stay under the "
                f"too_short filter's {bound} characters, so their pairs will be removed."
            )
        )
    return warnings
