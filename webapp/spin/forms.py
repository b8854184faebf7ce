"""The SPIN form: model, SFT dataset, preset, and the knobs worth changing (blank keeps the preset's).

The bounds on the fields are the config's own (`pipelines.spin.config`); the service checks the
whole config again, so the form and any other caller meet the same limits. Fields named like a
`SpinConfig` field take its docstring as help text.
"""

from __future__ import annotations

from typing import Any

from django import forms

from pipelines.common.presets import preset_choices, preset_named
from pipelines.errors import InvalidConfigError
from pipelines.spin.config import (
    MAX_ITERATIONS,
    MAX_NEW_TOKENS,
    MAX_PROMPTS,
    PAPER_EFFECTIVE_BATCH,
    PAPER_SETTINGS,
    SPIN_PRESETS,
    SpinConfig,
)
from webapp.core.choices import DatasetChoiceField, ModelEntryChoiceField, trainable_models
from webapp.core.forms import GuidedFormMixin, PresetChoice, help_text_from_config_docs
from webapp.registry.selectors import default_model_pk
from webapp.training.services import worker_training_devices

from . import services

CONVERSATION_TURN_CHOICES = [
    ("first", "First user turn and its reply (SPIN's: their code keeps messages[0] and messages[1])"),
    ("last", "Last reply, with the whole conversation before it as the prompt (ours)"),
    ("every", "Every reply, each with the whole conversation before it as the prompt (ours)"),
]


class SpinRunForm(GuidedFormMixin, forms.Form):
    essential_fields = ("name", "model", "dataset", "preset", "iterations", "devices")
    preset_inputs = ("preset",)

    name = forms.CharField(max_length=200, required=False)
    model = ModelEntryChoiceField(
        initial=default_model_pk,
        queryset=trainable_models(),
        help_text="p_0: the SFT model SPIN starts from (local transformers weights).",
    )
    dataset = DatasetChoiceField(
        shape="sft",
        help_text="An SFT dataset (prompt/response, question/answer or messages): its answers are the 'real' ones.",
    )
    preset = forms.ChoiceField(
        choices=[("", PAPER_SETTINGS), *preset_choices(SPIN_PRESETS)],
        required=False,
        initial="tiny-cpu-demo",
        help_text="The paper's settings train every weight; a LoRA preset is ours and says so.",
    )
    conversation_turn = forms.ChoiceField(choices=CONVERSATION_TURN_CHOICES, initial="first")
    iterations = forms.IntegerField(min_value=1, max_value=MAX_ITERATIONS, initial=2)
    max_prompts = forms.IntegerField(min_value=0, max_value=MAX_PROMPTS, required=False)
    max_new_tokens = forms.IntegerField(
        min_value=1, max_value=MAX_NEW_TOKENS, required=False, help_text="Length of p_t's answers (paper: 256)."
    )
    learning_rate = forms.FloatField(
        min_value=0,
        required=False,
        help_text="Iteration 0's; later iterations scale it by the schedule (x0.2 from iteration 2). "
        "Paper: 5e-7 with full fine-tuning; the LoRA preset uses 5e-6, the tiny CPU demo 5e-5 (ours).",
    )
    beta = forms.FloatField(
        min_value=0, required=False, help_text="Paper: 0.1; the paper's schedule sets 5.0 from iteration 3."
    )
    max_steps = forms.IntegerField(required=False, help_text="Optimizer steps per iteration; -1 runs the epochs.")
    mix_previous = forms.BooleanField(required=False, initial=True)
    devices = forms.IntegerField(
        min_value=1,
        max_value=PAPER_EFFECTIVE_BATCH,
        initial=1,
        help_text=f"GPUs the run trains on: the paper's effective batch of {PAPER_EFFECTIVE_BATCH} is split as "
        "per-device batch x accumulation x devices (also the memory check).",
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["devices"].initial = min(worker_training_devices(), PAPER_EFFECTIVE_BATCH)
        help_text_from_config_docs(self, SpinConfig)
        self.show_preset_values()

    def preset_values(self, choice: PresetChoice) -> dict[str, object]:
        """What each blank knob resolves to under the preset (the paper's settings without one)."""
        try:
            config = preset_named(SPIN_PRESETS, choice[0]).apply(SpinConfig()) if choice[0] else SpinConfig()
        except InvalidConfigError:
            return {}
        training = config.training
        return {
            "max_prompts": config.max_prompts,
            "max_new_tokens": config.generation.max_tokens,
            "learning_rate": training.training.learning_rate,
            "beta": training.beta,
            "max_steps": training.training.max_steps,
        }

    def training_overrides(self) -> dict[str, object]:
        data = self.cleaned_data
        return {name: data[name] for name in ("learning_rate", "max_steps") if data.get(name) is not None}


def spin_run_config(form: SpinRunForm) -> dict[str, Any]:
    """The validated run config of a valid form; refusals name the field at fault.

    The "new run" page and the JSON API both build runs here.
    """
    data = form.cleaned_data
    return services.spin_config_build(
        model=data["model"],
        dataset=data["dataset"],
        preset=data["preset"],
        iterations=data["iterations"],
        max_prompts=data["max_prompts"],
        max_new_tokens=data["max_new_tokens"],
        training_overrides=form.training_overrides(),
        beta=data["beta"],
        mix_previous=data["mix_previous"],
        devices=data["devices"],
        conversation_turn=data["conversation_turn"],
    )
