"""The training form: which trainer, model and dataset, a preset, and the settings worth changing.

Blank fields keep the preset's value (or, without a preset, the trainer's paper defaults); the
services module resolves the layers and checks the result.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.forms.fields import InvalidJSONInput

from pipelines.errors import InvalidConfigError
from pipelines.training.arguments import ADAPTERS, DEVICES, DTYPES, TrainingArgs
from pipelines.training.config import PREFERENCE_LOSSES, REWARD_EFFECTIVE_BATCH
from pipelines.training.presets import TRAINING_PRESETS, training_preset
from webapp.core.choices import DatasetChoiceField, ModelEntryChoiceField, trainable_models
from webapp.core.forms import GuidedFormMixin, PresetChoice, help_text_from_config_docs
from webapp.registry.selectors import default_model_pk

from . import services

TRAINER_CHOICES = [
    ("sft", "SFT: prompt → response"),
    ("preference", "Preference: DPO family and SPIN (prompt, chosen, rejected)"),
    ("reward", "Reward model: Bradley-Terry on comparisons"),
]
# Form fields that map one to one onto TrainingArgs fields.
TRAINING_FIELDS = (
    "learning_rate",
    "num_epochs",
    "max_steps",
    "per_device_batch_size",
    "gradient_accumulation_steps",
    "max_length",
    "max_prompt_length",
    "over_length",
    "prompt_format",
    "save_steps",
    "adapter",
    "device",
    "dtype",
)
EXTRA_SETTINGS_MAX_DEPTH = 4
"""Training settings nest one level (lora, trainer_overrides); deeper JSON is refused as a form error."""
OVER_LENGTH_CHOICES = [
    ("", "(preset: cut, counted)"),
    ("cut", "cut: aggregation prompts lose the ends of their drafts, other prompts their start, replies their end"),
    ("refuse", "refuse: stop before training, naming the rows and lengths that fit"),
    ("drop", "drop: leave those rows out (counted)"),
]
PROMPT_FORMAT_CHOICES = [
    ("", "(from the model: its chat template if its tokenizer has one, else raw)"),
    ("chat_template", "the model's chat template"),
    ("raw_assistant", "raw: prompt\\n\\nAssistant: reply<eos> (ALMoST, base models without a chat template)"),
]


class BoundedJSONField(forms.JSONField):
    """A JSON field that refuses very deep nesting as a form error instead of a RecursionError (a 500)."""

    def __init__(self, *args: Any, max_depth: int, **kwargs: Any) -> None:
        self.max_depth = max_depth
        super().__init__(*args, **kwargs)

    def to_python(self, value: Any) -> Any:
        try:
            converted = super().to_python(value)
        except RecursionError as error:
            raise forms.ValidationError(f"Nested too deeply: at most {self.max_depth} levels.") from error
        if _depth(converted, self.max_depth + 1) > self.max_depth:
            raise forms.ValidationError(f"Nested too deeply: at most {self.max_depth} levels.")
        return converted

    def bound_data(self, data: Any, initial: Any) -> Any:
        try:
            return super().bound_data(data, initial)
        except RecursionError:
            return InvalidJSONInput(data)  # re-rendered as typed, not dumped again


def _depth(value: Any, limit: int) -> int:
    """How deeply `value` nests lists and objects, counting no further than `limit` (no recursion)."""
    deepest = 0
    pending = [(value, 1)]
    while pending:
        current, level = pending.pop()
        if not isinstance(current, dict | list):
            continue
        deepest = max(deepest, level)
        if deepest >= limit:
            return deepest
        children = current.values() if isinstance(current, dict) else current
        pending.extend((child, level + 1) for child in children)
    return deepest


def _blank_first(values: tuple[str, ...]) -> list[tuple[str, str]]:
    return [("", "(preset)")] + [(value, value) for value in values]


class TrainingRunForm(GuidedFormMixin, forms.Form):
    essential_fields = ("name", "trainer", "model", "reference_model", "dataset", "preset", "devices")
    preset_inputs = ("trainer", "preset")

    name = forms.CharField(max_length=200, required=False, help_text="Optional label for the run list.")
    trainer = forms.ChoiceField(choices=TRAINER_CHOICES, initial="sft")
    model = ModelEntryChoiceField(
        initial=default_model_pk,
        queryset=trainable_models(),
        help_text="The model to fine-tune (local transformers weights).",
    )
    reference_model = forms.ModelChoiceField(
        queryset=trainable_models(),
        required=False,
        help_text="Preference only: the frozen reference. Empty means the model itself (DPO's SFT model; SPIN's p_t).",
    )
    dataset = DatasetChoiceField(
        shape="training",
        follows=("trainer", [value for value, _label in TRAINER_CHOICES]),
        help_text="An imported or produced dataset shaped for training: SFT (prompt/response, messages, "
        "question/answer) or preference (prompt/chosen/rejected); the trainer chosen above checks which.",
    )
    preset = forms.ChoiceField(
        choices=[("", "none: the trainer's paper defaults")]
        + [(preset.name, preset.name) for preset in TRAINING_PRESETS],
        required=False,
        initial="tiny-cpu-demo",
    )
    learning_rate = forms.FloatField(required=False, min_value=0)
    num_epochs = forms.FloatField(required=False, min_value=0)
    max_steps = forms.IntegerField(required=False, help_text="-1 runs num_epochs epochs.")
    per_device_batch_size = forms.IntegerField(required=False, min_value=1)
    gradient_accumulation_steps = forms.IntegerField(required=False, min_value=1)
    max_length = forms.IntegerField(
        required=False, min_value=8, help_text="Longest example in tokens; the preview measures the dataset against it."
    )
    max_prompt_length = forms.IntegerField(required=False, min_value=1, help_text="Longest prompt in tokens.")
    over_length = forms.ChoiceField(
        choices=OVER_LENGTH_CHOICES,
        required=False,
        label="Rows over the lengths",
        help_text="Whatever is chosen, the run summary counts the rows over the limits and what was done to them.",
    )
    prompt_format = forms.ChoiceField(
        choices=PROMPT_FORMAT_CHOICES,
        required=False,
        label="Prompt format",
        help_text="Blank reads the model's tokenizer: an instruct model trains on its chat template, a base model "
        "without one on ALMoST's raw format. The chat template on a model without one is refused.",
    )
    save_steps = forms.IntegerField(required=False, min_value=1, help_text="A checkpoint every this many steps.")
    adapter = forms.ChoiceField(choices=_blank_first(ADAPTERS), required=False)
    lora_r = forms.IntegerField(required=False, min_value=1, max_value=1024, label="LoRA rank")
    device = forms.ChoiceField(choices=_blank_first(DEVICES), required=False)
    dtype = forms.ChoiceField(choices=_blank_first(DTYPES), required=False)
    devices = forms.IntegerField(
        min_value=1,
        max_value=1024,
        initial=1,
        help_text="Processes the run trains on, one per GPU: the effective batch is per-device batch x accumulation "
        "x devices, and ZeRO-3 splits the memory across them. Starts at the training worker's own count.",
    )
    loss = forms.ChoiceField(
        choices=[("", "(default: sigmoid)")] + [(v, v) for v in PREFERENCE_LOSSES],
        required=False,
        help_text="Preference only: spin is SPIN's objective (real = chosen, generated = rejected).",
    )
    beta = forms.FloatField(required=False, min_value=0, help_text="Preference only (default 0.1).")
    eval_fraction = forms.FloatField(
        required=False,
        min_value=0,
        max_value=0.99,
        help_text="Preference and reward: share of pairs held out for accuracy. Ours: the papers train on every "
        "pair (0 does the same); blank keeps the reward model's 0.1.",
    )
    packing = forms.BooleanField(required=False, help_text="SFT only: pack examples into max_length rows.")
    loss_on = forms.ChoiceField(
        choices=[
            ("", "(preset: the reply's tokens, or all for augcon-sft)"),
            ("reply", "the reply's tokens only"),
            ("all", "every token, prompt included (AugCon's finetune.py)"),
        ],
        required=False,
        label="SFT loss on",
    )
    extra_settings = BoundedJSONField(
        max_depth=EXTRA_SETTINGS_MAX_DEPTH,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text='Any other training field as JSON, e.g. {"warmup_ratio": 0.1, "optimizer": "rmsprop"}.',
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["devices"].initial = services.worker_training_devices()
        help_text_from_config_docs(self, TrainingArgs, TRAINING_FIELDS)  # what each training setting does
        self.show_preset_values()

    def preset_values(self, choice: PresetChoice) -> dict[str, Any]:
        """What each blank setting resolves to for this trainer under the preset (the trainer's paper defaults
        without one); what the run measures from the dataset or the model says so instead of a number."""
        trainer, preset = choice
        if trainer not in services.TRAINERS:
            return {}
        try:
            config = services.TRAINERS[trainer][1]()
            chosen = training_preset(preset) if preset else None
            config = chosen.apply(config) if chosen is not None else config
        except InvalidConfigError:
            return {}  # the preset is not for this trainer: the service says so on submit
        training = config.training
        values: dict[str, Any] = {name: getattr(training, name) for name in TRAINING_FIELDS if name != "prompt_format"}
        values["lora_r"] = training.lora.r
        if chosen is not None and chosen.sized_from_data:
            values.update(dict.fromkeys(services.LENGTH_FIELDS, "measured from the dataset"))
        if trainer == "reward" and "gradient_accumulation_steps" not in (chosen.training if chosen else {}):
            values["gradient_accumulation_steps"] = f"for {REWARD_EFFECTIVE_BATCH} pairs a step"
        for option in ("loss", "beta", "eval_fraction"):
            if hasattr(config, option):
                values[option] = getattr(config, option)
        return values

    def clean_extra_settings(self) -> dict[str, Any]:
        value = self.cleaned_data.get("extra_settings") or {}
        if not isinstance(value, dict):
            raise forms.ValidationError('Give a JSON object of training fields, e.g. {"warmup_ratio": 0.1}.')
        return value

    def training_overrides(self) -> dict[str, Any]:
        data = self.cleaned_data
        overrides = {name: data[name] for name in TRAINING_FIELDS if data.get(name) not in (None, "")}
        if data.get("lora_r"):
            overrides["lora"] = {"r": data["lora_r"], "alpha": 2 * data["lora_r"]}
        return {**overrides, **data.get("extra_settings", {})}

    def method_options(self) -> dict[str, Any]:
        data = self.cleaned_data
        trainer = data["trainer"]
        options: dict[str, Any] = {}
        if trainer == "preference":
            options.update({"loss": data.get("loss") or None, "beta": data.get("beta")})
        if trainer in ("preference", "reward"):
            options["eval_fraction"] = data.get("eval_fraction")
        if trainer == "sft" and data.get("packing"):
            options["packing"] = True
        if trainer == "sft" and data.get("loss_on"):
            options["completion_only_loss"] = data["loss_on"] == "reply"
        return options


def training_run_config(form: TrainingRunForm) -> dict[str, Any]:
    """The validated run config of a valid form; raises ValidationError naming the field at fault.

    The "new run" page and the JSON API both build runs here.
    """
    data = form.cleaned_data
    return services.training_config_build(
        trainer=data["trainer"],
        model=data["model"],
        dataset=data["dataset"],
        preset=data["preset"],
        training_overrides=form.training_overrides(),
        method_options=form.method_options(),
        devices=data["devices"],
        reference_model=data.get("reference_model"),
    )
