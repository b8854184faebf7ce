"""Forms that guide: every method form keeps its essential fields open and the rest under "Advanced",
and shows the chosen preset's values in its blank fields (webapp/core/forms.py GuidedFormMixin)."""

from __future__ import annotations

import pytest

from pipelines.common.presets import preset_named
from pipelines.spin.config import SPIN_PRESETS, SpinConfig
from pipelines.training.config import PreferenceConfig, SFTConfig
from pipelines.training.presets import training_preset
from webapp.aft.forms import AftInferenceForm, AggregationDataForm
from webapp.almost.forms import AlmostRunForm
from webapp.augcon.forms import AugConRunForm
from webapp.evaluation.forms import EvaluationForm
from webapp.generate.forms import GenerateRunForm
from webapp.spin.forms import SpinRunForm
from webapp.training.forms import TrainingRunForm

pytestmark = pytest.mark.django_db

GUIDED_FORMS = [
    (AugConRunForm, "/augcon/new/"),
    (AftInferenceForm, "/aft/new/"),
    (AggregationDataForm, "/aft/data/new/"),
    (AlmostRunForm, "/almost/new/"),
    (SpinRunForm, "/spin/new/"),
    (GenerateRunForm, "/generate/new/"),
    (TrainingRunForm, "/training/new/"),
    (EvaluationForm, "/evaluations/new/"),
]


@pytest.mark.parametrize(("form_class", "url"), GUIDED_FORMS, ids=[form.__name__ for form, _ in GUIDED_FORMS])
def test_the_essential_fields_are_open_and_every_other_setting_is_under_advanced(researcher_client, form_class, url):
    form = form_class()
    assert set(form_class.essential_fields) <= set(form.fields), "an essential field the form does not have"
    essential = {field.name for field in form.essential()}
    advanced = {field.name for field in form.advanced()}
    assert essential == set(form_class.essential_fields) and advanced and not essential & advanced
    assert essential | advanced == set(form.fields) - {name for name in form.fields if name.startswith("filter_")}
    page = researcher_client.get(url).content.decode()
    start = page.index('<details class="advanced" data-advanced')
    section = page[start : page.index("</details>", start)]
    assert all(f'name="{name}"' in section for name in advanced)
    assert not any(f'name="{name}"' in section for name in essential)
    assert page[start:].startswith('<details class="advanced" data-advanced>')  # closed: nothing differs


def test_spins_blank_knobs_show_the_chosen_presets_values():
    for preset in ("tiny-cpu-demo", "lora"):
        form = SpinRunForm(initial={"preset": preset})
        config = preset_named(SPIN_PRESETS, preset).apply(SpinConfig())
        assert form.fields["learning_rate"].widget.attrs["placeholder"] == f"{config.training.training.learning_rate:g}"
        assert form.fields["max_new_tokens"].widget.attrs["placeholder"] == str(config.generation.max_tokens)
    paper = SpinRunForm(initial={"preset": ""})
    assert SpinConfig().training.training.learning_rate == 5e-07
    assert paper.fields["learning_rate"].widget.attrs["placeholder"] == "5e-07"  # the paper's


def test_trainings_blank_fields_follow_the_trainer_and_the_preset():
    form = TrainingRunForm(initial={"trainer": "preference", "preset": "tiny-cpu-demo"})
    expected = training_preset("tiny-cpu-demo").apply(PreferenceConfig())
    assert form.fields["learning_rate"].widget.attrs["placeholder"] == f"{expected.training.learning_rate:g}"
    assert form.fields["beta"].widget.attrs["placeholder"] == f"{expected.beta:g}"
    adapter_blank = dict(form.fields["adapter"].choices)[""]
    assert adapter_blank == f"(preset: {expected.training.adapter})"
    table = form.preset_value_table()
    sft = SFTConfig()
    assert table["sft|"]["learning_rate"] == f"{sft.training.learning_rate:g}"  # no preset: the trainer's defaults
    assert table["reward|"]["gradient_accumulation_steps"].startswith("for ")  # sized from the effective batch
    bound = TrainingRunForm({"trainer": "sft", "preset": "", "learning_rate": f"{sft.training.learning_rate:g}"})
    assert not bound.advanced_differences()  # typing the preset's own value changes nothing
    changed = TrainingRunForm({"trainer": "sft", "preset": "", "learning_rate": "0.123"})
    assert changed.advanced_differences() == ["learning_rate"] and changed.advanced_open()


def test_a_form_opened_with_a_runs_values_opens_advanced_only_where_they_differ_from_the_preset():
    """Clone and edit fills the form's initial values from a run: its own changes must be in sight."""
    tiny = preset_named(SPIN_PRESETS, "tiny-cpu-demo").apply(SpinConfig())
    same = SpinRunForm(initial={"preset": "tiny-cpu-demo", "beta": tiny.training.beta})
    assert not same.advanced_open()
    changed = SpinRunForm(initial={"preset": "tiny-cpu-demo", "beta": tiny.training.beta * 2})
    assert changed.advanced_differences() == ["beta"] and changed.advanced_open()
