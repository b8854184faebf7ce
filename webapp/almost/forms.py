"""The ALMoST run form: seeds and step settings, and the rubric as an ordered formset of configurations.

Forms check shapes only; `services.almost_config_build` enforces the rules (enough dialogues for the
shots, distinct configurations, a trainable reward model).
"""

from __future__ import annotations

from typing import Any

from django import forms

from pipelines.almost.config import (
    DEFAULT_RESPONSE_MAX_TOKENS,
    FILTER_DESCRIPTIONS,
    FILTERS,
    IN_CONTEXT_RANGE,
    LONG_DEMONSTRATION_MAX_TOKENS,
    MAX_CONFIGURATIONS,
    NUM_GENERATION_RANGE,
    PROMPT_MAX_TOKENS_RANGE,
    RESPONSE_MAX_TOKENS_RANGE,
    RMSP_N_RANGE,
    SHOTS_RANGE,
    PromptGenerationConfig,
)
from pipelines.errors import InvalidConfigError
from pipelines.training.arguments import effective_batch_text
from pipelines.training.config import RewardConfig
from pipelines.training.presets import TRAINING_PRESETS, training_preset
from pipelines.training.rl.presets import rl_preset_choices
from webapp.core.choices import CountedChoiceField, ModelEntryChoiceField, generation_models, trainable_models
from webapp.core.forms import GuidedFormMixin, PresetChoice, help_text_from_config_docs
from webapp.library.models import FewShotSet, SeedPromptSet

from . import services
from .services import ConfigurationChoice

RUBRIC_PREFIX = "rubric"
_PAPER_REWARD = RewardConfig().training
PAPER_REWARD_DESCRIPTION = (
    f"{effective_batch_text(_PAPER_REWARD)} pairs a step, "
    f"{'full fine-tuning' if _PAPER_REWARD.adapter == 'full' else _PAPER_REWARD.adapter}, "
    f"{_PAPER_REWARD.num_epochs:g} epoch, lr {_PAPER_REWARD.learning_rate:g}, {_PAPER_REWARD.lr_scheduler}, "
    f"{_PAPER_REWARD.warmup_ratio:.0%} warmup, weight decay {_PAPER_REWARD.weight_decay:g}"
)
"""What the blank preset trains the reward model with, read from RewardConfig's defaults (ALMoST's)."""


def _filter_field_name(name: str) -> str:
    return f"filter_{name}"


class AlmostRunForm(GuidedFormMixin, forms.Form):
    essential_fields = (
        "name",
        "seed_prompt_set",
        "num_generation",
        "in_context",
        "reward_model",
        "preset",
        "rmsp_enabled",
        "policy_sft",
        "policy_rl",
        "rl_preset",
    )
    preset_inputs = ("preset",)

    name = forms.CharField(max_length=200, required=False, help_text="Optional label for the run list.")
    seed_prompt_set = CountedChoiceField(
        queryset=SeedPromptSet.objects.all(),
        count="prompt_count",
        unit="prompt",
        empty_text="No seed prompt set yet: upload one.",
        empty_url_name="library:seedset-upload",
        help_text="Seed prompts shown as in-context examples; its instruction line, if any, heads every prompt.",
    )
    num_generation = forms.IntegerField(
        min_value=NUM_GENERATION_RANGE[0],
        max_value=NUM_GENERATION_RANGE[1],
        initial=100,
    )
    in_context = forms.IntegerField(
        min_value=IN_CONTEXT_RANGE[0],
        max_value=IN_CONTEXT_RANGE[1],
        initial=10,
    )
    prompt_max_tokens = forms.IntegerField(
        min_value=PROMPT_MAX_TOKENS_RANGE[0],
        max_value=PROMPT_MAX_TOKENS_RANGE[1],
        required=False,
        help_text="New tokens per generated prompt (default 64).",
    )
    response_max_tokens = forms.IntegerField(
        min_value=RESPONSE_MAX_TOKENS_RANGE[0],
        max_value=RESPONSE_MAX_TOKENS_RANGE[1],
        required=False,
        help_text="New tokens per response; blank: 384, or 768 with a Faithful set (as the original).",
    )
    reward_model = ModelEntryChoiceField(
        queryset=trainable_models(),
        help_text="Base of the reward model (a score head is added and trained on the comparisons).",
    )
    preset = forms.ChoiceField(
        choices=[("", f"none: the paper's reward-model settings ({PAPER_REWARD_DESCRIPTION})")]
        + [(preset.name, preset.name) for preset in TRAINING_PRESETS],
        required=False,
        initial="tiny-cpu-demo",
        help_text="Reward-model training. The estimate shows the batch as per-device x accumulation x devices.",
    )
    reward_max_steps = forms.IntegerField(
        min_value=1, required=False, help_text="Reward-model optimizer steps; blank: the preset's (or 1 epoch)."
    )
    reward_eval_fraction = forms.FloatField(
        min_value=0.0,
        max_value=0.9,
        required=False,
        label="Reward-model held-out fraction (ours)",
        widget=forms.NumberInput(attrs={"step": "any"}),
        help_text="Ours, not the paper's (it trains on every comparison): comparisons kept aside to measure the "
        "reward model's accuracy (blank: 0.1; at least one pair when above 0; 0 trains on all, as the paper). "
        "Small runs need a larger share for the accuracy to mean anything.",
    )
    reward_prompt_format = forms.ChoiceField(
        choices=[
            ("", "(from the model: its chat template if its tokenizer has one, else raw)"),
            ("chat_template", "the model's chat template"),
            ("raw_assistant", "raw: prompt\\n\\nAssistant: reply<eos> (the paper's, for a base model)"),
        ],
        required=False,
        label="Reward-model text format",
        help_text="How the reward model reads a comparison. The paper trains a base LLaMA on "
        "prompt\\n\\nAssistant: reply<eos>; blank picks that for a base model without a chat template and the "
        "template for an instruct model. The chat template on a model without one is refused.",
    )
    rmsp_enabled = forms.BooleanField(
        required=False,
        initial=True,
        label="Run RMSP",
        help_text="Sample n responses per prompt with the best configuration; keep the RM's favourite.",
    )
    constrained_output = forms.BooleanField(
        required=False,
        initial=True,
        label="Constrained query lines (ours; the paper samples freely and filters)",
        help_text="Decode each new query under a grammar of one line of at most max_chars characters, so none comes "
        "back empty or too long. Unticked: the paper's unconstrained generation.",
    )
    rmsp_n = forms.IntegerField(
        min_value=RMSP_N_RANGE[0], max_value=RMSP_N_RANGE[1], initial=4, label="RMSP samples per prompt"
    )
    policy_sft = forms.BooleanField(
        required=False,
        initial=False,
        label="Train the SFT policy (ALMoST-SFT)",
        help_text="Fine-tune the policy base on the RMSP demonstrations (the paper: lr 2e-5, 3 epochs, max length "
        "512; the training preset above applies to it too). Needs RMSP.",
    )
    policy_rl = forms.BooleanField(
        required=False,
        initial=False,
        label="Then RL from synthetic feedback (RLSF)",
        help_text="Train the SFT policy against this run's reward model, with the SFT policy as the KL reference, "
        "and measure base, SFT and RL policies on held-out generated prompts. Needs the SFT policy.",
    )
    rl_algorithm = forms.ChoiceField(
        choices=[
            ("ppo", "PPO: the paper's (value model, per-token KL penalty; TRL's former PPOTrainer settings)"),
            ("rloo", "RLOO: critic-free, TRL's RLOOTrainer"),
            ("grpo", "GRPO: critic-free, TRL's GRPOTrainer"),
        ],
        initial="ppo",
        required=False,
        label="RL algorithm",
        help_text="Blank: PPO, the paper's.",
    )
    rl_preset = forms.ChoiceField(
        choices=[("", "none: TRL's PPO settings, one pass over the prompts")] + rl_preset_choices(),
        required=False,
        initial="cpu-demo",
        label="RL preset",
        help_text="RL steps, batch, response length, adapter and device. cpu-demo shows the mechanics on the bundled model "
        "in minutes; it is not for results.",
    )
    rl_max_steps = forms.IntegerField(
        min_value=1, required=False, label="RL steps", help_text="Blank: the RL preset's (or one pass over the prompts)."
    )
    rl_held_out_prompts = forms.IntegerField(
        min_value=1,
        max_value=1000,
        required=False,
        label="Held-out prompts",
        help_text="Generated prompts kept out of RMSP, SFT and RL to measure the three policies (blank: the RL "
        "preset's). Must be fewer than the prompts generated.",
    )
    policy_model = ModelEntryChoiceField(
        queryset=trainable_models(),
        required=False,
        label="Policy base",
        help_text="The model the SFT policy starts from. Blank: the reward model's base, as the paper trains both "
        "from LLaMA-7B.",
    )

    def __init__(
        self, data: Any = None, *args: Any, rubric_rows: list[dict[str, Any]] | None = None, **kwargs: Any
    ) -> None:
        """`rubric_rows`: show the rubric as these rows, unbound (a new form, or the editor's result);
        otherwise the rubric is bound to `data` with the rest of the form."""
        super().__init__(data, *args, **kwargs)
        if rubric_rows is None and data is not None:
            self.rubric = ConfigurationFormSet(data, prefix=RUBRIC_PREFIX)
        else:
            self.rubric = ConfigurationFormSet(prefix=RUBRIC_PREFIX, initial=rubric_rows or [])
        for name in FILTERS:
            self.fields[_filter_field_name(name)] = forms.BooleanField(
                required=False,
                initial=True,
                label=f"Filter: {name}",
                help_text=f"Remove a pair when {FILTER_DESCRIPTIONS[name]}.",
            )
        help_text_from_config_docs(self, PromptGenerationConfig, ["num_generation", "in_context"])
        self.show_preset_values()

    def preset_values(self, choice: PresetChoice) -> dict[str, Any]:
        """What the blank settings resolve to under the reward-model preset (ALMoST's settings without one)."""
        try:
            reward = training_preset(choice[0]).apply(RewardConfig()) if choice[0] else RewardConfig()
        except InvalidConfigError:
            return {}
        max_steps = reward.training.max_steps
        return {
            "prompt_max_tokens": PromptGenerationConfig().max_tokens,
            "response_max_tokens": f"{DEFAULT_RESPONSE_MAX_TOKENS} ({LONG_DEMONSTRATION_MAX_TOKENS} with a Faithful set)",
            "reward_max_steps": max_steps if max_steps > 0 else f"{reward.training.num_epochs:g} epoch(s)",
            "reward_eval_fraction": reward.eval_fraction,
        }

    def filter_fields(self) -> list[forms.BoundField]:
        return [self[_filter_field_name(name)] for name in FILTERS]

    def main_fields(self) -> list[forms.BoundField]:
        return [field for field in self if not field.name.startswith("filter_")]

    def advanced(self) -> list[forms.BoundField]:
        """The settings under "Advanced"; the filters have their own section beside the rubric."""
        return [field for field in self.main_fields() if field.name not in self.essential_fields]

    def filters(self) -> dict[str, bool]:
        return {name: bool(self.cleaned_data.get(_filter_field_name(name))) for name in FILTERS}

    def clean(self) -> dict[str, Any]:
        """The rubric is part of the form: its problems are the form's (the page and the estimate show them)."""
        cleaned = super().clean()
        if not self.rubric.is_valid():
            for position, errors in enumerate(self.rubric.errors, start=1):
                for field, messages in errors.items():
                    self.add_error(None, f"configuration {position} {field}: {' '.join(messages)}")
            for message in self.rubric.non_form_errors():
                self.add_error(None, message)
        return cleaned

    def configurations(self) -> list[ConfigurationChoice]:
        """The rubric's entries in rank order (best first); call on a valid form."""
        return [entry.choice() for entry in self.rubric.forms if entry.cleaned_data]


class ConfigurationForm(forms.Form):
    """One rubric entry; its position in the formset is its rank (first = best)."""

    model = forms.ModelChoiceField(queryset=generation_models())
    shots = forms.IntegerField(min_value=SHOTS_RANGE[0], max_value=SHOTS_RANGE[1], initial=3)
    demonstration_set = forms.ModelChoiceField(
        queryset=FewShotSet.objects.filter(kind=FewShotSet.Kind.DEMONSTRATION),
        required=False,
        help_text="Blank: no preamble and no dialogues (needs 0 shots).",
    )

    def choice(self) -> ConfigurationChoice:
        data = self.cleaned_data
        return ConfigurationChoice(
            model=data["model"], shots=data["shots"], demonstration_set=data.get("demonstration_set")
        )


ConfigurationFormSet = forms.formset_factory(
    ConfigurationForm, extra=0, max_num=MAX_CONFIGURATIONS, absolute_max=MAX_CONFIGURATIONS
)


def rubric_rows(data: Any) -> list[dict[str, str]]:
    """The posted rubric as raw rows (no validation), so reordering works on half-filled rows too."""
    try:
        total = int(data.get(f"{RUBRIC_PREFIX}-TOTAL_FORMS", 0))
    except (TypeError, ValueError):
        total = 0
    return [
        {field: data.get(f"{RUBRIC_PREFIX}-{index}-{field}", "") for field in ("model", "shots", "demonstration_set")}
        for index in range(min(total, MAX_CONFIGURATIONS))
    ]


def almost_run_config(form: AlmostRunForm) -> dict[str, Any]:
    """The run config of a valid form; raises ValidationError naming the field at fault.

    The "new run" page and the JSON API both build runs here.
    """
    data = form.cleaned_data
    return services.almost_config_build(
        seed_prompt_set=data["seed_prompt_set"],
        configurations=form.configurations(),
        reward_model=data["reward_model"],
        num_generation=data["num_generation"],
        in_context=data["in_context"],
        rmsp_n=data["rmsp_n"],
        rmsp_enabled=data["rmsp_enabled"],
        constrained_output=data["constrained_output"],
        filters=form.filters(),
        preset=data["preset"],
        reward_max_steps=data.get("reward_max_steps"),
        reward_eval_fraction=data.get("reward_eval_fraction"),
        response_max_tokens=data.get("response_max_tokens"),
        prompt_max_tokens=data.get("prompt_max_tokens"),
        reward_prompt_format=data.get("reward_prompt_format") or "",
        policy=services.PolicyChoice(
            sft=bool(data.get("policy_sft")),
            rl=bool(data.get("policy_rl")),
            algorithm=data.get("rl_algorithm") or "ppo",
            rl_preset=data.get("rl_preset") or "",
            rl_max_steps=data.get("rl_max_steps"),
            held_out_prompts=data.get("rl_held_out_prompts"),
            model=data.get("policy_model"),
        ),
    )
