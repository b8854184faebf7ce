"""The new-evaluation form: candidates, baseline, prompts, judge, rubric and decoding; services check the rest."""

from __future__ import annotations

from django import forms

from pipelines.evaluation.config import EvaluationConfig
from webapp.core.choices import (
    DatasetChoiceField,
    DatasetMultipleChoiceField,
    ModelEntryChoiceField,
    ModelEntryMultipleChoiceField,
    generation_models,
    prompt_set_choice_field,
)
from webapp.core.forms import GuidedFormMixin, help_text_from_config_docs
from webapp.library.models import Rubric


class EvaluationForm(GuidedFormMixin, forms.Form):
    essential_fields = (
        "name",
        "candidate_models",
        "candidate_artifacts",
        "baseline_model",
        "baseline_artifact",
        "prompt_set",
        "prompts_file",
        "judge",
        "rubric",
    )

    name = forms.CharField(max_length=200, required=False, help_text="Optional label for the list and the leaderboard.")
    candidate_models = ModelEntryMultipleChoiceField(
        queryset=generation_models(),
        required=False,
        help_text="Registered models (checkpoints, endpoints) that answer with the candidate decoding below.",
    )
    candidate_artifacts = DatasetMultipleChoiceField(
        shape="answers",
        required=False,
        help_text="Existing answers (e.g. AFT propose-and-aggregate output): rows with a prompt and an answer field.",
    )
    baseline_model = ModelEntryChoiceField(
        queryset=generation_models(), required=False, help_text="The reference model ..."
    )
    baseline_artifact = DatasetChoiceField(
        shape="answers",
        required=False,
        help_text="... or reference answers (one of the two).",
    )
    prompt_set = prompt_set_choice_field(required=False)
    prompts_file = forms.FileField(
        required=False,
        help_text='Or import prompts: JSONL, one {"prompt": ...} (or AlpacaEval\'s {"instruction": ...}) per line.',
    )
    judge = ModelEntryChoiceField(
        queryset=generation_models(),
        help_text="Any registered model; an OpenAI-compatible endpoint entry judges remotely.",
    )
    rubric = forms.ModelChoiceField(
        queryset=Rubric.objects.all(),
        required=False,
        help_text="Its criteria and guidelines go into the judge's prompt.",
    )
    max_tokens = forms.IntegerField(min_value=1, max_value=32768, initial=256, help_text="New tokens per answer.")
    candidate_temperature = forms.FloatField(min_value=0, max_value=5, initial=0.7)
    baseline_temperature = forms.FloatField(min_value=0, max_value=5, initial=0.7)
    seed = forms.IntegerField(required=False, initial=0, help_text="Seeds answering, judging and the bootstrap.")
    judge_method = forms.ChoiceField(
        choices=[
            (
                "logprob",
                "Log-probabilities: the probability the judge gives A, B and tie (AlpacaEval 2's weighted judge)",
            ),
            ("text", "Parsed text: the judge writes its verdict and we read it"),
        ],
        initial="logprob",
        help_text="Log-probabilities make every verdict readable and graded (a small judge's too): the judgment is the "
        "share of the next-token probability on the verdict tokens. Every backend gives them; an OpenAI-compatible "
        "server that does not (e.g. transformers serve) stops the run with a message, then choose parsed text. "
        "The two settings below apply to parsed text only.",
    )
    judge_max_tokens = forms.IntegerField(
        min_value=1, max_value=4096, initial=16, help_text="Parsed text: new tokens for the verdict (one word)."
    )
    judge_retries = forms.IntegerField(
        min_value=0, max_value=10, initial=2, help_text="Parsed text: re-asks for an unreadable verdict."
    )
    judge_constrained_output = forms.BooleanField(
        initial=True,
        required=False,
        label="Constrained verdict (ours; AlpacaEval's judges write freely)",
        help_text="Parsed text: the judge's reply is decoded under a grammar of exactly A, B or tie, so every verdict "
        "parses. Unticked: the unconstrained reply and the tolerant parser, with retries.",
    )
    bootstrap_rounds = forms.IntegerField(min_value=100, max_value=100_000, initial=2000)

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        help_text_from_config_docs(self, EvaluationConfig, ["bootstrap_rounds"])
