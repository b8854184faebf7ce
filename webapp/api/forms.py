"""The form that creates a personal API token: only its name (the secret is made, never chosen)."""

from __future__ import annotations

from django import forms


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. 'sweep script on gpu-2'.")
