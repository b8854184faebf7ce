"""The form to register a webhook; the URL policy and the event rules are the service's."""

from __future__ import annotations

from django import forms

from .models import Event, Webhook


class WebhookForm(forms.Form):
    url = forms.URLField(
        label="URL",
        max_length=500,
        assume_scheme="https",
        help_text="Receives a signed JSON POST per event. Public addresses only, unless the operator allows "
        "private ones (REFINERY_WEBHOOK_ALLOW_PRIVATE); redirects are not followed.",
    )
    events = forms.MultipleChoiceField(choices=Event.choices, widget=forms.CheckboxSelectMultiple)
    scope = forms.ChoiceField(
        choices=Webhook.Scope.choices,
        initial=Webhook.Scope.MINE,
        help_text="Every user's runs and campaigns is for admins only.",
    )
