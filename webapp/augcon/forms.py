"""The AugCon run form: corpus, documents, few-shot set, models, a preset, and every setting of the method.

A blank setting keeps the preset's value (or, without a preset, the paper's default), shown in grey as
the field's placeholder; the services module resolves the layers and checks them. The fields that
decide a run stay open, the method's settings sit under "Advanced" (`GuidedFormMixin`).
"""

from __future__ import annotations

from typing import Any

from django import forms

from pipelines.augcon.config import AUGCON_PRESETS, AugConConfig
from pipelines.common.presets import preset_choices
from pipelines.errors import InvalidConfigError
from webapp.core.choices import CountedChoiceField, ModelEntryChoiceField, generation_models, local_generation_models
from webapp.core.forms import GuidedFormMixin, PresetChoice, help_text_from_config_docs
from webapp.library.models import Corpus, FewShotSet
from webapp.registry.selectors import default_model_pk

from . import services

# AugConConfig fields the form shows one to one (name -> form field class).
INTEGER_SETTINGS = (
    "max_length",
    "min_length",
    "character_per_piece",
    "min_paragraph_length",
    "max_chunks_per_document",
    "max_attempts",
    "min_question_length",
    "max_rounds_per_chunk",
    "question_max_tokens",
    "cst_demonstrations",
    "negatives_per_variant",
    "min_scorer_pairs",
    "scorer_batch_size",
    "answer_max_tokens",
    "judge_max_tokens",
    "max_bootstrapped_demos",
    "max_labeled_demos",
    "batch_size",
    "seed",
)
FLOAT_SETTINGS = (
    "length_scale",
    "over_generation",
    "question_temperature",
    "question_top_p",
    "rouge_threshold",
    "answer_temperature",
    "judge_temperature",
    "min_split_grounding",
)
# Scorer training fields (form name -> TrainingArgs field), with their explanations.
SCORER_SETTINGS: dict[str, tuple[str, type[forms.Field], str]] = {
    "scorer_learning_rate": (
        "learning_rate",
        forms.FloatField,
        "Peak learning rate (paper: transformers' default 5e-5).",
    ),
    "scorer_num_epochs": ("num_epochs", forms.FloatField, "Passes over the scorer pairs (paper: 4)."),
    "scorer_max_steps": ("max_steps", forms.IntegerField, "Optimizer steps; -1 runs the epochs (paper: -1)."),
    "scorer_per_device_batch_size": ("per_device_batch_size", forms.IntegerField, "Pairs per step (paper: 4)."),
    "scorer_weight_decay": ("weight_decay", forms.FloatField, "AdamW weight decay (paper: 0.01)."),
    "scorer_lora_r": ("lora.r", forms.IntegerField, "LoRA rank of the scorer (paper: 32)."),
    "scorer_lora_alpha": ("lora.alpha", forms.IntegerField, "LoRA alpha (paper: 32)."),
    "scorer_device": ("device", forms.ChoiceField, "Where the scorer trains: auto (CUDA when present), cpu or cuda."),
}
SCORER_WARMUP_HELP = "Learning-rate warmup in optimizer steps (paper: 50)."


class AugConRunForm(GuidedFormMixin, forms.Form):
    essential_fields = (
        "name",
        "corpus",
        "documents",
        "max_documents",
        "few_shot_set",
        "model",
        "scorer_model",
        "preset",
    )
    preset_inputs = ("preset",)

    name = forms.CharField(max_length=200, required=False, help_text="Optional label for the run list.")
    corpus = CountedChoiceField(
        queryset=Corpus.objects.all(),
        count="document_count",
        unit="document",
        empty_text="No corpus yet: upload one.",
        empty_url_name="library:corpus-upload",
        help_text="The documents to turn into SFT data.",
    )
    documents = forms.CharField(
        required=False,
        help_text="Document positions to use, e.g. 0-9, 12 (blank: every document, in order).",
    )
    max_documents = forms.IntegerField(
        required=False, min_value=1, initial=10, help_text="Use at most this many of them (blank: no limit)."
    )
    few_shot_set = CountedChoiceField(
        queryset=FewShotSet.objects.filter(kind=FewShotSet.Kind.QA),
        count="example_count",
        unit="example",
        empty_text="No QA few-shot set yet (context, question, answer): upload one.",
        empty_url_name="library:fewshot-upload",
        help_text="QA examples (context, question, answer): the question-and-split prompt shows 3 of them as splits, "
        "and answers bootstrap their demonstrations from all of them.",
    )
    model = ModelEntryChoiceField(
        initial=default_model_pk,
        queryset=generation_models(),
        help_text="Writes the questions, splits and answers (any backend).",
    )
    scorer_model = forms.ModelChoiceField(
        queryset=local_generation_models(),
        required=False,
        help_text="The scorer's base (local weights). Blank: the model above, as in the paper.",
    )
    preset = forms.ChoiceField(
        choices=[("", "none: the paper's defaults")] + [(name, name) for name, _ in preset_choices(AUGCON_PRESETS)],
        required=False,
        initial="tiny-cpu-demo",
        help_text="Starting values; any setting filled in below wins over it.",
    )
    scorer_qlora = forms.BooleanField(
        required=False,
        label="QLoRA backbone (the paper's; needs a CUDA GPU and bitsandbytes)",
        help_text="The scorer's base loaded in 4-bit NF4 under its LoRA, as the paper. Refused unless the deployment "
        "declares gpu workers with CUDA and bitsandbytes (REFINERY_GPU_WORKERS=1): the web server cannot see the "
        "workers' hardware. Unticked: LoRA over a full-precision base, stated in the run summary.",
    )
    scorer_warmup_steps = forms.IntegerField(required=False, min_value=0, help_text=SCORER_WARMUP_HELP)
    constrained_output = forms.BooleanField(
        initial=True, required=False, label="Constrained output (ours; the paper's replies are unconstrained)"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        defaults = AugConConfig()
        for name in INTEGER_SETTINGS + FLOAT_SETTINGS:
            field_class = forms.IntegerField if name in INTEGER_SETTINGS else forms.FloatField
            self.fields[name] = field_class(
                required=False,
                widget=forms.NumberInput(attrs={"step": "any"}),
            )
        for form_name, (_target, field_class, help_text) in SCORER_SETTINGS.items():
            if field_class is forms.ChoiceField:
                self.fields[form_name] = forms.ChoiceField(
                    choices=[("", "(preset)"), ("auto", "auto"), ("cpu", "cpu"), ("cuda", "cuda")],
                    required=False,
                    help_text=help_text,
                )
                continue
            self.fields[form_name] = field_class(
                required=False, help_text=help_text, widget=forms.NumberInput(attrs={"step": "any"})
            )
        self.fields["rouge_tokenizer"] = forms.ChoiceField(
            choices=[
                ("", "(preset) words"),
                ("words", "words: lower-cased words, CJK characters one by one (ours)"),
                ("jieba", "jieba: the paper's jieba words and rouge_chinese F (needs the jieba package)"),
            ],
            required=False,
        )
        self.order_fields(
            [
                "name",
                "corpus",
                "documents",
                "max_documents",
                "few_shot_set",
                "model",
                "scorer_model",
                "preset",
                *INTEGER_SETTINGS[:5],
                *FLOAT_SETTINGS[:1],
            ]
        )
        help_text_from_config_docs(self, AugConConfig)
        for name in INTEGER_SETTINGS + FLOAT_SETTINGS:
            self.fields[name].help_text = f"{self.fields[name].help_text} Paper default: {getattr(defaults, name)}."
        # Not the paper's: it keeps every split.
        self.fields["min_split_grounding"].help_text = (
            "A sub-context fewer of whose words appear in order in its parent (ROUGE-L recall) is kept in the tree "
            "but not split: the model invented it. Ours: 0.5; 0 keeps every split, as the paper does."
        )
        self.show_preset_values()

    def preset_values(self, choice: PresetChoice) -> dict[str, Any]:
        """What each blank setting resolves to under the preset (the paper's defaults without one)."""
        try:
            config = services.augcon_settings(preset=choice[0])
        except InvalidConfigError:
            return {}  # an unknown preset: the form's own error says so
        values: dict[str, Any] = {name: getattr(config, name) for name in INTEGER_SETTINGS + FLOAT_SETTINGS}
        values["rouge_tokenizer"] = config.rouge_tokenizer
        for form_name, (target, _field, _help) in SCORER_SETTINGS.items():
            value: Any = config.scorer
            for part in target.split("."):
                value = getattr(value, part)
            values[form_name] = value
        values["scorer_warmup_steps"] = config.scorer.trainer_overrides.get("warmup_steps")
        return values

    def overrides(self) -> dict[str, Any]:
        """The settings the user filled in, as AugConConfig fields (scorer fields nested)."""
        data = self.cleaned_data
        values: dict[str, Any] = {
            name: data[name] for name in INTEGER_SETTINGS + FLOAT_SETTINGS if data.get(name) is not None
        }
        if data.get("rouge_tokenizer"):
            values["rouge_tokenizer"] = data["rouge_tokenizer"]
        values["constrained_output"] = bool(data.get("constrained_output"))
        scorer: dict[str, Any] = {}
        for form_name, (target, _field, _help) in SCORER_SETTINGS.items():
            value = data.get(form_name)
            if value in (None, ""):
                continue
            if target.startswith("lora."):
                scorer.setdefault("lora", {})[target.split(".", 1)[1]] = value
            else:
                scorer[target] = value
        if data.get("scorer_qlora"):
            scorer["qlora"] = True
        if data.get("scorer_warmup_steps") is not None:
            scorer["trainer_overrides"] = {"warmup_steps": data["scorer_warmup_steps"]}
        if scorer:
            values["scorer"] = scorer
        return values


def augcon_run_config(form: AugConRunForm) -> dict[str, Any]:
    """The validated run config of a valid form; raises ValidationError / InvalidConfigError naming the field.

    The "new run" page and the JSON API both build runs here.
    """
    data = form.cleaned_data
    return services.augcon_config_build(
        model=data["model"],
        corpus=data["corpus"],
        few_shot_set=data["few_shot_set"],
        scorer_model=data.get("scorer_model"),
        documents=data.get("documents") or "",
        max_documents=data.get("max_documents"),
        preset=data.get("preset") or "",
        overrides=form.overrides(),
    )
