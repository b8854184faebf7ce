"""Forms of the annotation app: shape only; the services enforce the rules (overlap vs annotators, formats)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model

from webapp.core.choices import DatasetChoiceField
from webapp.library.models import Rubric

from .models import Campaign, Judgment
from .services import WRITE_BACK_RULES

DEFAULT_FLAGS = "factual error, harmful, off-topic"


class CampaignForm(forms.Form):
    name = forms.CharField(max_length=200)
    artifact = DatasetChoiceField(
        shape="pairs",
        help_text="Pairs: prompt/chosen/rejected (ALMoST, SPIN, imported preferences) or prompt/response_a/response_b.",
    )
    rubric = forms.ModelChoiceField(
        queryset=Rubric.objects.order_by("name"), help_text="Its guidelines sit beside every item."
    )
    sample_size = forms.IntegerField(min_value=1, initial=100)
    sampling = forms.ChoiceField(choices=Campaign.Sampling.choices, initial=Campaign.Sampling.RANDOM)
    group_by = forms.CharField(
        max_length=100,
        required=False,
        initial="config_pair",
        help_text="Column to stratify by and to break the statistics down by: config_pair (chosen_config vs "
        "rejected_config, or model_a vs model_b), a filter verdict column, or empty.",
    )
    overlap = forms.IntegerField(min_value=1, max_value=50, initial=2, help_text="Annotators who judge each item.")
    lease_minutes = forms.IntegerField(
        min_value=1, max_value=24 * 60, initial=20, help_text="An item left unjudged this long returns to the pool."
    )
    flags = forms.CharField(
        required=False, initial=DEFAULT_FLAGS, help_text="Comma-separated flags annotators may tick; empty for none."
    )
    ask_comment = forms.BooleanField(required=False, initial=True, label="Offer a comment box")
    assignees = forms.ModelMultipleChoiceField(
        queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
        widget=forms.CheckboxSelectMultiple,
        help_text="Who judges this campaign (any role; annotators see only campaigns assigned to them).",
    )
    seed = forms.IntegerField(required=False, min_value=0, help_text="Empty: a random seed (recorded).")

    def clean_flags(self) -> list[str]:
        return [flag.strip() for flag in self.cleaned_data["flags"].split(",") if flag.strip()]


class JudgmentForm(forms.Form):
    item = forms.IntegerField(min_value=1)
    choice = forms.ChoiceField(choices=Judgment.Choice.choices)
    flags = forms.MultipleChoiceField(required=False)
    comment = forms.CharField(required=False, max_length=5000)
    seconds_spent = forms.FloatField(required=False, min_value=0)
    submission_key = forms.CharField(min_length=8, max_length=64)

    def __init__(self, *args: Any, campaign: Campaign, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["flags"].choices = [(flag, flag) for flag in campaign.flags]


class WriteBackForm(forms.Form):
    rule = forms.ChoiceField(
        choices=list(WRITE_BACK_RULES.items()), widget=forms.RadioSelect, initial="drop_disagreements"
    )
