"""The login form, throttled per username and client address (webapp/accounts/throttle.py)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from .throttle import client_address, login_failure_record, login_failures_clear, login_is_throttled


class ThrottledAuthenticationForm(AuthenticationForm):
    """Django's login form that refuses, with a message saying why and for how long, after repeated failures.

    A throttled attempt is refused before the password is checked, so even the right password does
    not get in until the window has passed (otherwise guessing would simply continue).
    """

    error_messages = {
        **AuthenticationForm.error_messages,
        "throttled": "Too many failed logins for this username from your address. Wait %(minutes)s minutes "
        "and try again, or ask an admin to reset your password.",
    }

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        address = client_address(self.request)
        if username and login_is_throttled(username=username, address=address):
            minutes = max(1, round(settings.LOGIN_THROTTLE_WINDOW_SECONDS / 60))
            raise ValidationError(self.error_messages["throttled"], code="throttled", params={"minutes": minutes})
        try:
            cleaned = super().clean()
        except ValidationError:
            if username:
                login_failure_record(username=username, address=address)
            raise
        login_failures_clear(username=username, address=address)
        return cleaned
