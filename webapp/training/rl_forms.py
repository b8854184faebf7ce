"""The RL form: a policy, a reward model, prompts, an algorithm, a preset, and the settings worth changing.

Its own form rather than a trainer of the training form: RL trains on prompts (not a dataset of
answers) against a second model, and its knobs (KL, responses per prompt, held-out evaluation) are
not a trainer's. Blank fields keep the preset's value; the service (`rl_services`) layers and checks.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.db.models import Model, Q, QuerySet

from pipelines.errors import InvalidConfigError
from pipelines.training.arguments import ADAPTERS, DEVICES, DTYPES, TrainingArgs
from pipelines.training.rl.config import RL_ALGORITHMS, RLConfig
from pipelines.training.rl.presets import RL_PRESETS, lay_over, rl_default_values, rl_preset
from pipelines.training.rl.prompts import PROMPT_FIELDS
from webapp.core.choices import ModelEntryChoiceField, artifact_label, prompt_set_choice_field, trainable_models
from webapp.core.forms import GuidedFormMixin, PresetChoice, help_text_from_config_docs
from webapp.library.models import Artifact
from webapp.registry.models import ModelEntry
from webapp.registry.selectors import default_model_pk

from . import rl_services
from .forms import EXTRA_SETTINGS_MAX_DEPTH, PROMPT_FORMAT_CHOICES, BoundedJSONField

RL_FIELDS = (
    "algorithm",
    "kl_coef",
    "max_new_tokens",
    "num_generations",
    "held_out_prompts",
    "eval_steps",
    "temperature",
    "top_p",
    "samples_per_eval",
    "reward_batch_size",
    "missing_eos_penalty",
)
"""Form fields that map one to one onto RLConfig fields."""
RL_TRAINING_FIELDS = (
    "max_steps",
    "learning_rate",
    "per_device_batch_size",
    "gradient_accumulation_steps",
    "max_prompt_length",
    "prompt_format",
    "save_steps",
    "adapter",
    "device",
    "dtype",
)
"""Form fields that map one to one onto the RL config's TrainingArgs fields."""
ALGORITHM_CHOICES = [
    ("", "(preset)"),
    ("ppo", "PPO: a value model and a per-token KL penalty (ALMoST's RLSF)"),
    ("rloo", "RLOO: each response against the others to its prompt (TRL, no value model)"),
    ("grpo", "GRPO: group-normalised rewards (TRL, no value model)"),
]
assert {value for value, _label in ALGORITHM_CHOICES if value} == set(RL_ALGORITHMS)


def _blank_first(values: tuple[str, ...]) -> list[tuple[str, str]]:
    return [("", "(preset)")] + [(value, value) for value in values]


def prompt_datasets() -> QuerySet[Artifact]:
    """Datasets with a column the RL prompt reader takes (`PROMPT_FIELDS`), newest first."""
    has_prompt = Q()
    for name in PROMPT_FIELDS:
        has_prompt |= Q(columns__contains=[name])
    return Artifact.objects.filter(has_prompt).select_related("run").order_by("-created_at")


def reward_models() -> QuerySet[ModelEntry]:
    """Registry entries that score responses (task=reward)."""
    return ModelEntry.objects.filter(task=ModelEntry.Task.REWARD)


class PromptDatasetChoiceField(forms.ModelChoiceField):
    """A dataset dropdown labelled with origin and row count: "augcon-qa (run 12) — 340 rows"."""

    def label_from_instance(self, obj: Model) -> str:
        return artifact_label(obj)  # type: ignore[arg-type]


class RLRunForm(GuidedFormMixin, forms.Form):
    essential_fields = (
        "name",
        "model",
        "reward_model",
        "prompt_set",
        "prompts_dataset",
        "algorithm",
        "preset",
        "max_steps",
        "kl_coef",
        "max_new_tokens",
        "num_generations",
        "learning_rate",
        "held_out_prompts",
        "eval_steps",
    )
    preset_inputs = ("preset",)

    name = forms.CharField(max_length=200, required=False, help_text="Optional label for the run list.")
    model = ModelEntryChoiceField(
        initial=default_model_pk,
        queryset=trainable_models(),
        label="Policy",
        help_text="The model RL trains (local transformers weights); its starting point is the frozen KL reference.",
    )
    reward_model = ModelEntryChoiceField(
        queryset=reward_models(),
        label="Reward model",
        help_text="Scores each sampled response; a registry entry with task “reward” (e.g. from “Train: reward model”).",
        error_messages={"invalid_choice": "Not a registered reward model: choose an entry with task “reward”."},
    )
    prompt_set = prompt_set_choice_field(
        required=False,
        help_text="The prompts to sample responses for; copied into the run when it starts.",
    )
    prompts_dataset = PromptDatasetChoiceField(
        queryset=prompt_datasets(),
        required=False,
        label="…or prompts from a dataset",
        help_text=f"Instead of a prompt set: a dataset with a {' / '.join(PROMPT_FIELDS)} column (text or chat turns).",
    )
    algorithm = forms.ChoiceField(
        choices=ALGORITHM_CHOICES,
        required=False,
        help_text="PPO is ALMoST's (a value model learns alongside the policy); RLOO and GRPO are TRL's critic-free "
        "trainers, which compare several responses to each prompt instead (see responses per prompt).",
    )
    preset = forms.ChoiceField(
        choices=[("", "none: the RL defaults (TRL's PPO settings)")]
        + [(preset.name, preset.name) for preset in RL_PRESETS],
        required=False,
        initial="cpu-demo",
    )
    max_steps = forms.IntegerField(
        required=False,
        min_value=-1,
        help_text="RL steps, each one batch of prompts; -1 runs num_epochs passes over the training prompts.",
    )
    kl_coef = forms.FloatField(required=False, min_value=0, label="KL coefficient")
    max_new_tokens = forms.IntegerField(required=False, min_value=1)
    num_generations = forms.IntegerField(required=False, min_value=1, label="Responses per prompt")
    learning_rate = forms.FloatField(required=False, min_value=0)
    held_out_prompts = forms.IntegerField(required=False, min_value=0)
    eval_steps = forms.IntegerField(required=False, min_value=1)
    temperature = forms.FloatField(required=False, min_value=0)
    top_p = forms.FloatField(required=False, min_value=0, max_value=1)
    samples_per_eval = forms.IntegerField(required=False, min_value=0)
    reward_batch_size = forms.IntegerField(required=False, min_value=1)
    missing_eos_penalty = forms.FloatField(required=False, min_value=0)
    per_device_batch_size = forms.IntegerField(required=False, min_value=1, label="Prompts per step")
    gradient_accumulation_steps = forms.IntegerField(required=False, min_value=1)
    max_prompt_length = forms.IntegerField(
        required=False, min_value=1, help_text="Longest prompt in tokens; longer prompts are left out and counted."
    )
    prompt_format = forms.ChoiceField(choices=PROMPT_FORMAT_CHOICES, required=False, label="Prompt format")
    save_steps = forms.IntegerField(required=False, min_value=1, help_text="A checkpoint every this many steps.")
    adapter = forms.ChoiceField(choices=_blank_first(ADAPTERS), required=False)
    lora_r = forms.IntegerField(required=False, min_value=1, max_value=1024, label="LoRA rank")
    device = forms.ChoiceField(choices=_blank_first(DEVICES), required=False)
    dtype = forms.ChoiceField(choices=_blank_first(DTYPES), required=False)
    extra_settings = BoundedJSONField(
        max_depth=EXTRA_SETTINGS_MAX_DEPTH,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text='Any other RL setting as JSON, laid over the rest, e.g. {"ppo": {"num_ppo_epochs": 2}, '
        '"training": {"warmup_ratio": 0.1}}.',
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        reward_field = self.fields["reward_model"]
        reward_field.empty_text = (  # type: ignore[attr-defined]
            "No reward model registered yet: train one (Train: reward model) or register one with task “reward”."
        )
        reward_field.empty_url_name = "training:new"  # type: ignore[attr-defined]
        help_text_from_config_docs(self, RLConfig, RL_FIELDS)
        help_text_from_config_docs(self, TrainingArgs, RL_TRAINING_FIELDS)
        self.show_preset_values()

    def preset_values(self, choice: PresetChoice) -> dict[str, Any]:
        """What each blank setting resolves to under the preset (the RL defaults without one)."""
        (preset,) = choice
        try:
            values = rl_default_values()
            config = RLConfig.from_dict(rl_preset(preset).lay_over_values(values) if preset else values)
        except InvalidConfigError:
            return {}
        shown: dict[str, Any] = {name: getattr(config, name) for name in RL_FIELDS}
        shown.update({name: getattr(config.training, name) for name in RL_TRAINING_FIELDS if name != "prompt_format"})
        shown["lora_r"] = config.training.lora.r
        return shown

    def clean_extra_settings(self) -> dict[str, Any]:
        value = self.cleaned_data.get("extra_settings") or {}
        if not isinstance(value, dict):
            raise forms.ValidationError('Give a JSON object of RL settings, e.g. {"ppo": {"num_ppo_epochs": 2}}.')
        return value

    def settings(self) -> dict[str, Any]:
        """The RLConfig values the form sets: its filled fields, then the extra settings over them."""
        data = self.cleaned_data
        chosen = {name: data[name] for name in RL_FIELDS if data.get(name) not in (None, "")}
        training = {name: data[name] for name in RL_TRAINING_FIELDS if data.get(name) not in (None, "")}
        if data.get("lora_r"):
            training["lora"] = {"r": data["lora_r"], "alpha": 2 * data["lora_r"]}
        return lay_over({**chosen, "training": training}, data.get("extra_settings") or {})


def rl_run_config(form: RLRunForm) -> dict[str, Any]:
    """The validated run config of a valid form; raises ValidationError naming the field at fault.

    The "new run" page and the JSON API both build RL runs here.
    """
    data = form.cleaned_data
    return rl_services.rl_config_build(
        model=data["model"],
        reward_model=data["reward_model"],
        prompt_set=data.get("prompt_set"),
        prompts_dataset=data.get("prompts_dataset"),
        preset=data.get("preset") or "",
        settings=form.settings(),
    )


def rl_form_data(config: dict[str, Any]) -> dict[str, Any]:
    """Clone and edit: every field of the form from a run's config, the rest as extra settings, so the
    clone trains exactly as the run did even if its preset has changed since."""
    method = config["config"]
    training = method["training"]
    lora = training.get("lora") or {}
    extra: dict[str, Any] = {name: value for name, value in method.items() if name not in (*RL_FIELDS, "training")}
    extra_training = {name: value for name, value in training.items() if name not in (*RL_TRAINING_FIELDS, "lora")}
    if lora and lora.get("alpha") != 2 * lora.get("r", 0):
        extra_training["lora"] = lora  # not the form's rule (alpha = 2 x rank): kept as it was
    if extra_training:
        extra["training"] = extra_training
    return {
        "model": config["model_id"],
        "reward_model": config["reward_model_id"],
        "prompt_set": config.get("prompt_set_id"),
        "prompts_dataset": config.get("prompts_dataset_id"),
        "preset": config.get("preset", ""),
        **{name: method[name] for name in RL_FIELDS},
        **{name: training[name] for name in RL_TRAINING_FIELDS},
        "lora_r": lora.get("r"),
        "extra_settings": json.dumps(extra) if extra else "",
    }
