"""Clone and edit: a finished run's settings, back in its kind's form, to queue a new run from.

A kind says how (`RunKind.clone`: its form page and `form_data(config)`); `webapp.core.run_forms`
reads `?from_run=<id>` on the form page, binds the form to that data (so a value that can no longer
be used, a deleted corpus or model, shows as an error beside its field) and notes the lineage on
the run it queues (`cloned_from`). Most kinds' forms name their fields after the config's own keys,
so `config_form_data` finds each field's value by name; a kind passes the few that differ.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.urls import reverse
from django.utils.datastructures import MultiValueDict

from .models import PipelineRun
from .registry import UnknownRunKind, run_kind

FROM_RUN_PARAMETER = "from_run"
CLONABLE_STATUSES = PipelineRun.TERMINAL_STATUSES


class Missing:
    """No such key in the config (a field the config does not hold keeps the form's initial value)."""


MISSING = Missing()

SKIPPED_FIELDS = ("name",)
"""Not settings: a clone gets its own name (an empty one names it after its kind and number)."""


def config_value(config: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted `path` ("spin.training.beta") of `config`, or MISSING."""
    value: Any = config
    for key in path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return MISSING
        value = value[key]
    return value


def _paths_named(config: Mapping[str, Any], name: str, prefix: str = "") -> Iterator[str]:
    for key, value in config.items():
        path = f"{prefix}{key}"
        if key == name:
            yield path
        if isinstance(value, Mapping):
            yield from _paths_named(value, name, f"{path}.")


def config_form_data(
    config: Mapping[str, Any], fields: Iterable[str], *, paths: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The form data of `fields` taken from `config`.

    A field's value is at `paths[field]` (a dotted path) when given; else at the one key of the
    field's name anywhere in the config, or `<field>_id` (a model choice stored by its id). A name
    found at two places is an error (say which in `paths`): guessing could clone the wrong value.
    Fields found nowhere are left out (they keep the form's initial value).
    """
    paths = paths or {}
    data: dict[str, Any] = {}
    for field in fields:
        if field in paths:
            value = config_value(config, paths[field])
        else:
            found = list(_paths_named(config, field)) or list(_paths_named(config, f"{field}_id"))
            if len(found) > 1:
                raise ValueError(f"form field {field!r} matches {found} in the config; name its path in `paths`")
            value = config_value(config, found[0]) if found else MISSING
        if value is not MISSING:
            data[field] = value
    return data


def clone_form_data(kind: str, config: Mapping[str, Any], *, fields: Iterable[str]) -> dict[str, Any]:
    """The data of the form `fields` that makes `config` again, as `kind` declares it (`RunKind.clone`)."""
    clone = run_kind(kind).clone
    if clone is None:
        raise ValueError(f"runs of kind {kind!r} cannot be cloned (its RunKind declares no clone)")
    declared = clone.form_data(dict(config)) if clone.form_data is not None else {}
    named = [name for name in fields if name not in SKIPPED_FIELDS and name not in declared]
    return {**config_form_data(config, named, paths=clone.paths), **declared}


def clone_source(request: HttpRequest) -> PipelineRun | None:
    """The run named by `?from_run=<id>` on a kind's form page, or None when there is none.

    Only a finished run (succeeded, failed, cancelled, lost) of a kind whose form is this page; the
    view's own role check already said the user may create runs and see them.
    """
    raw = request.GET.get(FROM_RUN_PARAMETER, "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise Http404(f"?{FROM_RUN_PARAMETER}= must be a run number, not {raw!r}.")
    run = PipelineRun.objects.filter(pk=int(raw)).first()
    if run is None:
        raise Http404(f"Run #{raw} does not exist (deleted?): there is nothing to clone.")
    if run.status not in CLONABLE_STATUSES:
        raise PermissionDenied(f"Run #{run.pk} is {run.get_status_display().lower()}: only finished runs are cloned.")
    if clone_url(run) != request.path:
        raise Http404(f"Run #{run.pk} is a {run.kind_label} run; this form does not make those.")
    return run


def clone_url(run: PipelineRun) -> str | None:
    """The form page that clones `run`, or None when its kind cannot be cloned (or is not installed)."""
    try:
        clone = run_kind(run.kind).clone
    except UnknownRunKind:
        return None
    return reverse(clone.form_url) if clone is not None else None


def clone_link(run: PipelineRun) -> str | None:
    """The "Clone and edit" link of a finished run, or None when it has none."""
    url = clone_url(run)
    if url is None or run.status not in CLONABLE_STATUSES:
        return None
    return f"{url}?{FROM_RUN_PARAMETER}={run.pk}"


def clone_form(form: forms.Form, source: PipelineRun) -> forms.Form:
    """A new form of `form`'s class bound to `source`'s settings, validated, with every problem shown.

    A model choice whose object is gone (a deleted corpus, model or dataset) or can no longer be
    used here says so in words beside its field, instead of "Select a valid choice".
    """
    data = {**_initial_data(form), **clone_form_data(source.kind, source.config, fields=form.fields)}
    bound = type(form)(_as_post_data(data), initial=form.initial, prefix=form.prefix)
    bound.is_valid()
    for name, field in bound.fields.items():
        value = data.get(name)
        if isinstance(field, forms.ModelChoiceField) and name in bound.errors and value not in (None, "", []):
            used = ", ".join(f"#{item}" for item in value) if isinstance(value, list | tuple) else f"#{value}"
            bound.errors[name] = bound.error_class(
                [
                    f"Run #{source.pk} used {field.label or name} {used}, which no longer exists or can no "
                    "longer be used here: choose another."
                ]
            )
    return bound


def clone_notice(source: PipelineRun) -> str:
    """What the form page says above a clone's form."""
    return f"The form holds the settings of run #{source.pk} ({source}): edit them and queue a new run."


def _initial_data(form: forms.Form) -> dict[str, Any]:
    """The unbound form's initial values (callables called), for the fields a config does not hold."""
    values: dict[str, Any] = {}
    for name in form.fields:
        initial = form[name].initial
        values[name] = getattr(initial, "pk", initial)
    return values


def _as_post_data(data: Mapping[str, Any]) -> MultiValueDict:
    """Form data as a POST carries it: lists as repeated keys, None as an empty field."""
    post = MultiValueDict()
    for key, value in data.items():
        if isinstance(value, list | tuple):
            post.setlist(key, ["" if item is None else item for item in value])
        elif value is None:
            post[key] = ""
        else:
            post[key] = value
    return post
