"""Where a refusal shows on a form, and help text read from a config's field docstrings (webapp/core/forms.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django import forms
from django.core.exceptions import ValidationError

from pipelines.common.config_docs import config_field_docs
from pipelines.errors import InvalidConfigError
from webapp.core.forms import add_validation_error, help_text_from_config_docs


@dataclass(frozen=True)
class BaseSettings:
    seed: int = 0
    """Base seed of every sample;
    the same seed draws the same text."""
    batch_size: int = 8
    """Prompts per call."""


@dataclass(frozen=True)
class SampleSettings(BaseSettings):
    batch_size: int = 4
    """Prompts per call (ours: 4)."""
    temperature: float = 0.7
    """Sampling temperature (the paper's)."""
    undocumented: int = 1


class SampleForm(forms.Form):
    seed = forms.IntegerField(required=False)
    batch_size = forms.IntegerField(required=False, help_text="The form's own words.")
    temperature = forms.FloatField(required=False)
    undocumented = forms.IntegerField(required=False)


def _bound() -> SampleForm:
    form = SampleForm({})
    assert form.is_valid()
    return form


@pytest.mark.parametrize(
    ("error", "field", "message"),
    [
        (
            InvalidConfigError("temperature must be at most 2", field="temperature"),
            "temperature",
            "temperature must be at most 2",
        ),
        (InvalidConfigError("lora.r must be positive", field="lora.r"), None, "lora.r must be positive"),
        (InvalidConfigError("give seed or vllm_seed, not both"), None, "give seed or vllm_seed, not both"),
        (ValidationError({"seed": "seed must be positive"}), "seed", "seed must be positive"),
        (ValidationError({"backbone": "no such backbone"}), None, "no such backbone"),
        (ValidationError("nothing fits"), None, "nothing fits"),
    ],
)
def test_a_refusal_lands_beside_its_field_or_on_top_when_the_form_lacks_it(error, field, message):
    form = _bound()
    add_validation_error(form, error)
    shown = form.errors[field] if field else form.non_field_errors()
    assert list(shown) == [message]
    assert len(form.errors) == 1


def test_field_docs_are_read_from_the_source_with_the_subclass_winning():
    assert config_field_docs(SampleSettings) == {
        "seed": "Base seed of every sample; the same seed draws the same text.",
        "batch_size": "Prompts per call (ours: 4).",
        "temperature": "Sampling temperature (the paper's).",
    }


def test_help_text_comes_from_the_config_unless_the_form_wrote_its_own():
    form = SampleForm()
    help_text_from_config_docs(form, SampleSettings)
    assert form.fields["seed"].help_text == "Base seed of every sample; the same seed draws the same text."
    assert form.fields["temperature"].help_text == "Sampling temperature (the paper's)."
    assert form.fields["batch_size"].help_text == "The form's own words."
    assert form.fields["undocumented"].help_text == ""
    only = SampleForm()
    help_text_from_config_docs(only, SampleSettings, ["temperature", "not_a_field"])
    assert only.fields["seed"].help_text == "" and only.fields["temperature"].help_text


def test_the_training_form_explains_its_settings_from_the_training_config():
    from pipelines.training.arguments import TrainingArgs
    from webapp.training.forms import TrainingRunForm

    docs = config_field_docs(TrainingArgs)
    form = TrainingRunForm()
    assert form.fields["learning_rate"].help_text == docs["learning_rate"]
    assert form.fields["max_steps"].help_text == "-1 runs num_epochs epochs."  # the form's own stays
