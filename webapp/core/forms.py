"""Form helpers every app's views share."""
from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError


def add_validation_error(form: forms.Form, error: ValidationError) -> None:
    """Show a service's ValidationError on the form: field errors beside their field, the rest on top.

    Services validate the rules (a dataset's fields, what fits a device) and name the field at fault;
    a field the form does not have (a config detail) goes to the form's non-field errors.
    """
    if hasattr(error, "error_dict"):
        for field, field_messages in error.message_dict.items():
            form.add_error(field if field in form.fields else None, field_messages)
    else:
        form.add_error(None, error.messages)
