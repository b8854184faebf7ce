"""AFT forms: a propose-and-aggregate run (fields or a YAML in the original format), and aggregation data.

Forms check shape only; `webapp.aft.services` builds the pipeline config and enforces the rules.
The bounds shown on the fields are the config's own (`pipelines.aft.config`), which also holds a
pasted YAML to them, and so is the help text of every field named like a config field (its
docstring). Initial values are the paper's defaults except `max_tokens`, which starts small because
the bundled model runs on CPU; the help text gives the paper's value.
"""

from __future__ import annotations

from typing import Any

from django import forms

from pipelines.aft.config import (
    MAX_BATCH_SIZE,
    MAX_HIDDEN_LAYERS,
    MAX_NEW_TOKENS,
    MAX_SAMPLES_PER_LAYER,
    MAX_TEMPERATURE,
    AftConfig,
    AggregationDataConfig,
)
from pipelines.common.config_fields import MAX_SEED
from webapp.core.choices import (
    DatasetChoiceField,
    ModelEntryChoiceField,
    generation_models,
    prompt_set_choice_field,
)
from webapp.core.forms import GuidedFormMixin, help_text_from_config_docs
from webapp.registry.selectors import default_model_pk

from . import services

MODE_CHOICES = [
    ("aggregate", "Propose and aggregate"),
    ("single", "Plain sampling: one sample per prompt (the baseline)"),
]
TARGET_RULE_CHOICES = [
    ("aggregator", "Aggregator model writes the target (the paper's rule)"),
    ("best_response", "Best-ranked response is the target (chosen / highest score)"),
]


class AftInferenceForm(GuidedFormMixin, forms.Form):
    essential_fields = ("name", "model", "prompt_set", "mode", "n", "hidden_layer", "max_tokens")

    name = forms.CharField(max_length=200, required=False, help_text="Optional label for the run list.")
    model = ModelEntryChoiceField(
        initial=default_model_pk, queryset=generation_models(), help_text="Plays both roles: proposer and aggregator."
    )
    prompt_set = prompt_set_choice_field(help_text="Each prompt is answered.")
    mode = forms.ChoiceField(
        choices=MODE_CHOICES,
        initial="aggregate",
        help_text="Run both on the same prompts to compare aggregation with a single sample.",
    )
    n = forms.IntegerField(
        min_value=1,
        max_value=MAX_SAMPLES_PER_LAYER,
        initial=5,
        required=False,
        help_text="Samples per proposal and hidden aggregation layer (paper: 5).",
    )
    hidden_layer = forms.IntegerField(min_value=0, max_value=MAX_HIDDEN_LAYERS, initial=0, required=False)
    final_aggregation = forms.BooleanField(initial=True, required=False)
    proposal_temperature = forms.FloatField(
        min_value=0, max_value=MAX_TEMPERATURE, initial=0.7, required=False, help_text="Paper: 0.7."
    )
    proposal_top_p = forms.FloatField(initial=0.95, required=False, help_text="Paper: 0.95.")
    aggregation_temperature = forms.FloatField(
        min_value=0, max_value=MAX_TEMPERATURE, initial=0.7, required=False, help_text="Paper: 0.7."
    )
    aggregation_top_p = forms.FloatField(initial=0.95, required=False, help_text="Paper: 0.95.")
    final_temperature = forms.FloatField(
        min_value=0,
        max_value=MAX_TEMPERATURE,
        initial=0.0,
        required=False,
        help_text="0 is greedy, as in the first release; the intermediate and current code sample at 0.7 with top_p 1.",
    )
    max_tokens = forms.IntegerField(
        min_value=1,
        max_value=MAX_NEW_TOKENS,
        initial=128,
        required=False,
        help_text="New tokens per sample, every layer (paper: 4096).",
    )
    seed = forms.IntegerField(
        min_value=0, max_value=MAX_SEED, initial=2024, required=False, help_text="Paper: 2024; empty for random."
    )
    batch_size = forms.IntegerField(min_value=1, max_value=MAX_BATCH_SIZE, initial=8, required=False)
    yaml_config = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "placeholder": "proposal_params:\n    temperature: 0.7\n    ..."}),
        label="YAML config",
        help_text="Optional: a config in one of the original repository's three formats (first release: "
        "proposal_params, aggregation_params, hidden_layer, final_aggregation; intermediate: proposal_params, "
        "aggregation_params, num_aggregation; current: generation_params, num_aggregation; each with vllm_seed). "
        "It replaces the fields above; a key of another format, or one the format would ignore, is refused by name.",
    )
    yaml_file = forms.FileField(required=False, label="or upload the YAML file")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        help_text_from_config_docs(self, AftConfig)

    def clean(self):  # type: ignore[no-untyped-def]
        cleaned = super().clean()
        upload = cleaned.get("yaml_file")
        if upload is not None:
            if upload.size > 64 * 1024:
                self.add_error("yaml_file", "A config file is at most 64 KiB.")
            else:
                try:
                    cleaned["yaml_config"] = upload.read().decode("utf-8")
                    cleaned["yaml_source"] = upload.name
                except UnicodeDecodeError:
                    self.add_error("yaml_file", f"{upload.name} is not UTF-8 text.")
        return cleaned

    def sampling_fields(self) -> dict[str, object]:
        data = self.cleaned_data
        names = (
            "mode",
            "n",
            "hidden_layer",
            "final_aggregation",
            "proposal_temperature",
            "proposal_top_p",
            "aggregation_temperature",
            "aggregation_top_p",
            "final_temperature",
            "max_tokens",
            "seed",
            "batch_size",
        )
        return {name: data.get(name) for name in names}


class AggregationDataForm(GuidedFormMixin, forms.Form):
    essential_fields = ("name", "source", "target_rule", "model", "max_proposals")

    name = forms.CharField(max_length=200, required=False, help_text="Optional label for the run list.")
    source = DatasetChoiceField(
        shape="response_groups",
        help_text="Several responses per prompt: a generate run (n > 1), an AFT run's proposals, preference pairs, "
        "or UltraFeedback-style completions.",
    )
    target_rule = forms.ChoiceField(choices=TARGET_RULE_CHOICES, initial="aggregator")
    model = ModelEntryChoiceField(
        queryset=generation_models(),
        required=False,
        help_text="Aggregator rule only: the model that writes the targets, ideally stronger than the one you train.",
    )
    max_proposals = forms.IntegerField(min_value=1, max_value=32, initial=5)
    min_proposals = forms.IntegerField(min_value=1, max_value=32, initial=1)
    include_target_in_proposals = forms.BooleanField(required=False)
    plain_rows = forms.BooleanField(required=False)
    aggregator_temperature = forms.FloatField(
        min_value=0, max_value=MAX_TEMPERATURE, initial=0.0, required=False, help_text="0 is greedy."
    )
    max_tokens = forms.IntegerField(
        min_value=1,
        max_value=MAX_NEW_TOKENS,
        initial=256,
        required=False,
        help_text="Aggregator rule: new tokens per target (paper: 4096).",
    )
    seed = forms.IntegerField(
        min_value=0,
        max_value=MAX_SEED,
        initial=2024,
        help_text="Shuffles the proposals' order and seeds the aggregator.",
    )
    max_examples = forms.IntegerField(min_value=0, initial=0)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        help_text_from_config_docs(self, AggregationDataConfig)

    def options(self) -> dict[str, object]:
        data = self.cleaned_data
        aggregator = {
            key: value
            for key, value in (
                ("temperature", data.get("aggregator_temperature")),
                ("max_tokens", data.get("max_tokens")),
            )
            if value is not None
        }
        return {
            "target_rule": data["target_rule"],
            "aggregator": {**aggregator, "n": 1},
            "max_proposals": data["max_proposals"],
            "min_proposals": data["min_proposals"],
            "include_target_in_proposals": data["include_target_in_proposals"],
            "plain_rows": data["plain_rows"],
            "seed": data["seed"],
            "max_examples": data["max_examples"],
        }


def aft_inference_run_config(form: AftInferenceForm) -> dict[str, Any]:
    """The run config of a valid form: the YAML when one was given, else the fields.

    The "new run" page and the JSON API both build runs here.
    """
    data = form.cleaned_data
    if data.get("yaml_config", "").strip():
        aft = services.inference_config_from_yaml(
            data["yaml_config"], source=data.get("yaml_source") or "the YAML config", mode=data["mode"]
        )
    else:
        aft = services.inference_config_from_fields(**form.sampling_fields())  # type: ignore[arg-type]
    return services.inference_config_build(model=data["model"], prompt_set=data["prompt_set"], aft=aft)


def aft_data_run_config(form: AggregationDataForm) -> dict[str, Any]:
    """The run config of a valid form (the "new run" page and the JSON API both build runs here)."""
    data = form.cleaned_data
    return services.data_config_build(source=data["source"], model=data.get("model"), options=form.options())
