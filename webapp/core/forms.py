"""Form helpers every app's views share: where a service's refusal shows, and help text from config docs."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from typing import Any, ClassVar, cast

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


PresetChoice = tuple[str, ...]
"""The values of a form's `preset_inputs` fields, in order: ("tiny-cpu-demo",), ("sft", "lora-1gpu")."""


def _shown(value: Any) -> str:
    """A setting as a field shows it: 5e-05, 0.1, 2048 (booleans and structures are not shown)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


class GuidedFormMixin:
    """A run form that shows the values a run will use and keeps the few fields that matter in sight.

    Why: the method forms hold dozens of settings, and a blank one means "the preset's value"; a user
    must see that value (not the paper's default) and find the handful of choices that decide a run.

    - `essential_fields`: the fields shown open; every other field goes under "Advanced"
      (`templates/partials/_form_fields.html`), which opens itself when one of its fields has an
      error or holds a value other than the preset's.
    - `preset_inputs` and `preset_values`: which fields choose the preset layer, and what each blank
      field resolves to under a choice of them. The current choice's values become the fields'
      placeholders (and the "(preset)" option's label); the page's script swaps them when the choice
      changes, from `preset_value_json`.

    Mix it into a `forms.Form` and call `show_preset_values()` at the end of `__init__`.
    """

    essential_fields: ClassVar[tuple[str, ...]] = ()
    preset_inputs: ClassVar[tuple[str, ...]] = ()

    def preset_values(self, choice: PresetChoice) -> dict[str, Any]:
        """Form field name -> the value a blank field takes under `choice`; override in the form."""
        return {}

    def _form(self) -> forms.Form:
        return cast(forms.Form, self)

    def preset_choice(self) -> PresetChoice:
        """The preset inputs as posted (a bound form) or as first shown (an unbound one)."""
        form = self._form()
        values = []
        for name in self.preset_inputs:
            if form.is_bound:
                value = form.data.get(form.add_prefix(name), "")
            else:
                value = form.initial.get(name, form.fields[name].initial)
                value = value() if callable(value) else value
            values.append("" if value is None else str(value))
        return tuple(values)

    def _all_preset_choices(self) -> list[PresetChoice]:
        form = self._form()
        options = [[str(value) for value, _label in form.fields[name].choices] for name in self.preset_inputs]
        return list(itertools.product(*options))

    def _shown_values(self, choice: PresetChoice) -> dict[str, str]:
        return {
            name: _shown(value)
            for name, value in self.preset_values(choice).items()
            if name in self._form().fields and value is not None and not isinstance(value, bool | dict | list)
        }

    def preset_value_table(self) -> dict[str, dict[str, str]]:
        """Every choice of the preset inputs ("|"-joined) -> field -> the value it shows; read by the page's script."""
        return {"|".join(choice): self._shown_values(choice) for choice in self._all_preset_choices()}

    def preset_value_json(self) -> str:
        """`preset_value_table` as JSON, for the page's `data-preset-values` attribute (escaped there).

        An attribute rather than a `<script type="application/json">`: the Content-Security-Policy
        tests allow no script element without a source or a nonce.
        """
        return json.dumps(self.preset_value_table(), sort_keys=True)

    def show_preset_values(self) -> None:
        """Write the current choice's values into the fields' placeholders (text) or "(preset)" options (choices).

        Every field some choice gives a value is marked `data-preset-field`, so the page's script can
        fill it in (or empty it) when the choice changes (training's beta exists for preference only).
        """
        form = self._form()
        current = self._shown_values(self.preset_choice())
        marked = {name for values in self.preset_value_table().values() for name in values}
        for name in sorted(marked):
            field = form.fields[name]
            text = current.get(name)
            if isinstance(field, forms.ChoiceField):
                field.choices = [
                    (value, (f"(preset: {text})" if text is not None else "(preset)") if value == "" else label)
                    for value, label in field.choices
                ]
            elif text is not None:
                field.widget.attrs["placeholder"] = text
            field.widget.attrs["data-preset-field"] = name

    def essential(self) -> list[forms.BoundField]:
        """The fields shown open, in the form's order (every field when the form names none)."""
        form = self._form()
        return [field for field in form if not self.essential_fields or field.name in self.essential_fields]

    def advanced(self) -> list[forms.BoundField]:
        """The fields under "Advanced", in the form's order."""
        form = self._form()
        return [field for field in form if self.essential_fields and field.name not in self.essential_fields]

    def advanced_differences(self) -> list[str]:
        """The advanced fields whose value is not the one the run would take without them (the preset's or the form's)."""
        form = self._form()
        preset_values = self.preset_values(self.preset_choice())
        differing = []
        for bound in self.advanced():
            field = bound.field
            if form.is_bound:
                value = field.widget.value_from_datadict(form.data, form.files, bound.html_name)
            elif bound.name in form.initial:
                value = form.initial[bound.name]
            else:
                continue
            if value in (None, "") and not isinstance(field, forms.BooleanField):
                continue  # blank keeps the preset's value (or the form's initial)
            reference = preset_values.get(bound.name, field.initial)
            reference = reference() if callable(reference) else reference
            if isinstance(field, forms.FileField):
                differing.extend([bound.name] if value else [])
                continue
            try:
                changed = field.has_changed(reference, value)
            except (TypeError, ValueError, ValidationError):
                changed = True
            if changed:
                differing.append(bound.name)
        return differing

    def advanced_open(self) -> bool:
        """Whether "Advanced" starts open: one of its fields has an error or differs from the preset."""
        form = self._form()
        if form.is_bound and any(form.errors.get(bound.name) for bound in self.advanced()):
            return True
        return bool(self.advanced_differences())
