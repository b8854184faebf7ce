"""The generate form; it checks shape, `webapp.generate.services` checks the rules."""

from __future__ import annotations

from typing import Any

from django import forms

from webapp.core.choices import ModelEntryChoiceField, generation_models, prompt_set_choice_field
from webapp.core.forms import GuidedFormMixin
from webapp.registry.selectors import default_model_pk

from . import services


class GenerateRunForm(GuidedFormMixin, forms.Form):
    essential_fields = ("name", "model", "prompt_set", "n", "max_tokens")

    name = forms.CharField(max_length=200, required=False, help_text="Optional label for the run list.")
    model = ModelEntryChoiceField(
        initial=default_model_pk,
        queryset=generation_models(),
        help_text="Any registered text-generation model.",
    )
    prompt_set = prompt_set_choice_field(help_text="Each prompt is answered.")
    n = forms.IntegerField(
        min_value=1, max_value=64, initial=1, help_text="Answers per prompt (share one prompt encoding)."
    )
    max_tokens = forms.IntegerField(
        min_value=1, max_value=8192, initial=128, help_text="New tokens per answer, at most."
    )
    temperature = forms.FloatField(min_value=0.0, max_value=2.0, initial=0.7, help_text="0 is greedy decoding.")
    top_p = forms.FloatField(min_value=0.01, max_value=1.0, initial=0.95)
    seed = forms.IntegerField(required=False, initial=0, help_text="Fixes sampling; leave empty for random.")
    batch_size = forms.IntegerField(
        min_value=1, max_value=256, initial=8, help_text="Prompts per model call; the unit of resume."
    )
    system_prompt = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


def generate_run_config(form: GenerateRunForm) -> dict[str, Any]:
    """The run config of a valid form (the "new run" page and the JSON API both build runs here)."""
    data = form.cleaned_data
    return services.generate_config_build(
        model=data["model"],
        prompt_set=data["prompt_set"],
        n=data["n"],
        max_tokens=data["max_tokens"],
        temperature=data["temperature"],
        top_p=data["top_p"],
        seed=data["seed"],
        batch_size=data["batch_size"],
        system_prompt=data["system_prompt"],
    )
