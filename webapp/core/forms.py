"""Form helpers every app's views share: where a service's refusal shows, and help text from config docs."""

from __future__ import annotations

from collections.abc import Iterable

from django import forms
from django.core.exceptions import ValidationError

from pipelines.common.config_docs import config_field_docs
from pipelines.errors import InvalidConfigError


def add_validation_error(form: forms.Form, error: ValidationError | InvalidConfigError) -> None:
    """Show a service's refusal on the form: field errors beside their field, the rest on top.

    Services validate the rules (a dataset's fields, what fits a device) and name the field at fault,
    either as a `ValidationError({"field": message})` or as a pipeline's
    `InvalidConfigError(message, field="field")`. A field the form does not have (a config detail)
    goes to the form's non-field errors, so nothing is ever dropped.
    """
    if isinstance(error, InvalidConfigError):
        field = error.field if error.field in form.fields else None
        form.add_error(field, str(error))
    elif hasattr(error, "error_dict"):
        for field_name, field_messages in error.message_dict.items():
            form.add_error(field_name if field_name in form.fields else None, field_messages)
    else:
        form.add_error(None, error.messages)


def config_refusal(
    error: InvalidConfigError, form_field_for_config_field: dict[str, str], message: str = ""
) -> ValidationError:
    """A pipeline config's refusal on the form field that holds its config field, or on top of the form.

    Why: a service builds the config from form fields named otherwise ("rmsp_n" sets "rmsp.n"), so
    `InvalidConfigError.field` alone cannot find the field; the service's map can. `message`
    replaces the error's own text when the service words it for the page.
    """
    text = message or str(error)
    form_field = form_field_for_config_field.get(error.field or "")
    return ValidationError({form_field: text}) if form_field else ValidationError(text)


def help_text_from_config_docs(form: forms.Form, config_class: type, field_names: Iterable[str] | None = None) -> None:
    """Give the form's fields the docstrings of the config fields of the same name as help text.

    Why: the config's field docstrings already say what each setting does and where its default
    comes from (the paper, or ours); reading them keeps the form and the pipeline from telling two
    stories. Call it at the end of the form's `__init__`:

        help_text_from_config_docs(self, SpinConfig)                # every form field named like a config field
        help_text_from_config_docs(self, TrainingArgs, ["max_length"])  # only these

    A help text the form sets itself wins; fields without a docstring are left as they are.
    """
    docs = config_field_docs(config_class)
    names = form.fields if field_names is None else field_names
    for name in names:
        field = form.fields.get(name)
        if field is not None and not field.help_text and docs.get(name):
            field.help_text = docs[name]
