"""The SPIN form: model, SFT dataset, preset, and the knobs worth changing (blank keeps the preset's)."""
from __future__ import annotations

from django import forms

from pipelines.spin import SPIN_PRESETS
from webapp.registry.models import ModelEntry
from webapp.registry.selectors import default_model_pk
from webapp.runs.models import Artifact


class SpinRunForm(forms.Form):
    name = forms.CharField(max_length=200, required=False)
    model = forms.ModelChoiceField(
        initial=default_model_pk,
        queryset=ModelEntry.objects.filter(backend=ModelEntry.Backend.TRANSFORMERS, task=ModelEntry.Task.GENERATION),
        help_text="p_0: the SFT model SPIN starts from (local transformers weights).",
    )
    dataset = forms.ModelChoiceField(
        queryset=Artifact.objects.order_by("-created_at"),
        help_text="An SFT dataset (prompt/response, question/answer or messages): its answers are the 'real' ones.",
    )
    preset = forms.ChoiceField(
        choices=[(name, name) for name in SPIN_PRESETS] + [("", "none: the paper's settings (zephyr-7b)")],
        required=False,
        initial="tiny-cpu-demo",
    )
    iterations = forms.IntegerField(min_value=1, max_value=20, initial=2, help_text="Paper: iterations 0 to 3.")
    max_prompts = forms.IntegerField(min_value=0, required=False, help_text="0 uses every prompt; blank keeps the preset's.")
    max_new_tokens = forms.IntegerField(min_value=1, max_value=8192, required=False,
                                        help_text="Length of p_t's answers (paper: 256).")
    learning_rate = forms.FloatField(min_value=0, required=False, help_text="Iteration 0's (paper: 5e-7; 1e-7 from iteration 2).")
    beta = forms.FloatField(min_value=0, required=False, help_text="Paper: 0.1 (5.0 at iteration 3).")
    max_steps = forms.IntegerField(required=False, help_text="Optimizer steps per iteration; -1 runs the epochs.")
    mix_previous = forms.BooleanField(required=False, initial=True,
                                      help_text="From iteration 1, train on this and the previous iteration's pairs.")
    devices = forms.IntegerField(min_value=1, max_value=1024, initial=1, help_text="GPUs per iteration (memory check).")

    def training_overrides(self) -> dict[str, object]:
        data = self.cleaned_data
        return {name: data[name] for name in ("learning_rate", "max_steps") if data.get(name) is not None}
