"""What the API does beyond the apps' own services: create a run of any kind through its page's form.

The kind's registration names its form and config builder (`RunKind.form`, `config_build`,
`webapp/runs/registry.py`); the JSON `fields` bind that form exactly as the page's POST does, the
builder validates through the pipeline's config, and `run_create` queues it. So a run created here
passes the same checks, with the same messages on the same fields, as one created on the page.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.module_loading import import_string

from webapp.core.run_forms import config_from_form
from webapp.core.submissions import DuplicateSubmission, submission_key_is_valid
from webapp.runs.models import PipelineRun
from webapp.runs.registry import UnknownRunKind, run_kind
from webapp.runs.services import run_create

from .errors import ApiProblem, form_problem


def _field_problem(field: str | None, message: str, status: int = 422) -> ApiProblem:
    return ApiProblem(status, message, [{"field": field, "message": message}])


def run_form_presets(kind: str) -> list[dict[str, str]]:
    """The presets the kind's form offers (its `preset` field's named choices), `[]` without one."""
    declaration = run_kind(kind)
    if not declaration.form:
        return []
    field = import_string(declaration.form).base_fields.get("preset")
    if field is None:
        return []
    return [
        {"name": str(value), "description": "" if str(label) == str(value) else str(label)}
        for value, label in field.choices
        if value
    ]


def form_initial_values(form_class: type[forms.Form]) -> dict[str, Any]:
    """What the page's form holds before anyone types: a field the caller leaves out posts this, as
    an untouched field of the page does (a callable initial, such as the bundled model, is called)."""
    values = {}
    for name, field in form_class.base_fields.items():
        initial = field.initial() if callable(field.initial) else field.initial
        if initial is not None:
            values[name] = initial
    return values


def run_create_from_fields(
    *,
    user: Any,
    kind: str,
    fields: dict[str, Any],
    name: str = "",
    preset: str | None = None,
    idempotency_key: str = "",
) -> PipelineRun:
    """Validate `fields` with the kind's form and builder, then queue the run.

    Raises ApiProblem: 422 naming the form field at fault (or `kind` / `preset`), 409 when
    `idempotency_key` already queued a run (its id is in the message).
    """
    try:
        declaration = run_kind(kind)
    except UnknownRunKind as error:
        raise _field_problem("kind", str(error)) from None
    if not declaration.form or not declaration.config_build:
        raise _field_problem(
            "kind", f"Runs of kind {kind!r} are not created from a run form here; see the kind's own endpoint."
        )
    if idempotency_key and not submission_key_is_valid(idempotency_key):
        raise _field_problem("Idempotency-Key", "The Idempotency-Key must be 8 to 64 letters or digits.")
    form_class = import_string(declaration.form)
    data = {**form_initial_values(form_class), **{key: value for key, value in fields.items() if value is not None}}
    if name:
        data["name"] = name
    if preset is not None:
        if "preset" not in form_class.base_fields:
            raise _field_problem("preset", f"Runs of kind {kind!r} take no preset.")
        data["preset"] = preset
    form = form_class(data)
    unknown = sorted(set(fields) - set(form.fields))
    if unknown:
        known = ", ".join(form.fields)
        raise ApiProblem(
            422,
            f"{kind} runs have no field {', '.join(unknown)}.",
            errors=[{"field": key, "message": f"{kind} runs have no field {key}; fields: {known}"} for key in unknown],
        )
    config = config_from_form(form, import_string(declaration.config_build))
    if config is None:
        raise form_problem(form)
    created_kind = import_string(declaration.kind_from_config)(config) if declaration.kind_from_config else kind
    if created_kind != kind:
        raise _field_problem(None, f"These fields make a {created_kind!r} run, not a {kind!r} run.")
    try:
        return run_create(
            user=user,
            kind=kind,
            config=config,
            name=form.cleaned_data.get("name") or "",
            submission_key=idempotency_key,
        )
    except DuplicateSubmission as duplicate:
        raise ApiProblem(409, f"This Idempotency-Key already queued run {duplicate.existing.pk}.") from None
