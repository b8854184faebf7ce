"""The "new run" page of every method, in two functions: queue the run, or show what it would ask for.

Every method's form page does the same things: bind the form, build the run config through the
app's `*_config_build` service, show a refusal beside the field at fault, create the run, say so,
and go to the run's page; and, while the form is being filled in, show an estimate of what the run
asks of the models. This module is that flow, once; an app's views only say what differs (its form,
its config builder, its estimate). No class hierarchy: two functions and three small records.

How to use it in an app's `views.py`:

    def _build(form: SpinRunForm) -> dict[str, Any]:
        data = form.cleaned_data  # the form is valid when this is called
        return services.spin_config_build(model=data["model"], ...)  # may raise ValidationError / InvalidConfigError

    @require_http_methods(["GET", "POST"])
    @research_required
    def spin_new(request):
        form = SpinRunForm(request.POST or None, initial={...})
        return new_run_response(request, form=form, build=_build, kind="spin", run_label="SPIN",
                                template="spin/new.html", context={"presets": ...})

    def _estimate(form: SpinRunForm, config: dict[str, Any]) -> Estimate:
        figures = services.spin_cost_estimate(...)
        return Estimate(lines=[EstimateLine("Generations", figures["generations"], key="generations"), ...])

    @require_POST
    @research_required
    def spin_estimate(request):
        return estimate_response(request, form=SpinRunForm(request.POST), build=_build, estimate=_estimate)

and in the page's template (the form posts itself to the estimate URL on every change; the
page's CSRF token travels as a form field, and base.html also sends it as a header):

    <form method="post" hx-post="{% url 'spin:estimate' %}" hx-trigger="change delay:300ms"
          hx-target="#spin-estimate" hx-swap="innerHTML">
      {% csrf_token %}{% include "partials/_form_fields.html" %} ... </form>
    <div id="spin-estimate">{% include "core/partials/_estimate.html" with hint="Choose a model ..." only %}</div>

Repeated submissions: every form rendered with `partials/_form_fields.html` carries a hidden
submission key (webapp/core/submissions.py). `new_run_response` creates the run through
`webapp.runs.services.run_create`, which reads that key; a second POST of the same form raises
`DuplicateSubmission`, which `SubmissionKeyMiddleware` turns into a redirect to the first run. A
form shown again with errors keeps its key (nothing was created with it). Nothing to do in the app.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from pipelines.errors import InvalidConfigError
from webapp.core.forms import add_validation_error
from webapp.runs.clone import clone_form, clone_notice, clone_source
from webapp.runs.services import run_create

FormType = TypeVar("FormType", bound=forms.Form)
ConfigBuilder = Callable[[FormType], dict[str, Any]]
"""Turns a valid form into the run config (the app's `*_config_build` service); raises
`ValidationError` or `InvalidConfigError` naming the field at fault."""

ESTIMATE_TEMPLATE = "core/partials/_estimate.html"


def config_from_form(form: FormType, build: ConfigBuilder[FormType]) -> dict[str, Any] | None:
    """The run config the form describes, or None with every problem added to the form.

    `build` is only called on a valid form; its refusals land beside their field
    (`add_validation_error`), so the page and the estimate show the same problems in the same place.
    """
    if not form.is_valid():
        return None
    try:
        return build(form)
    except (ValidationError, InvalidConfigError) as error:
        add_validation_error(form, error)
        return None


def new_run_response(
    request: HttpRequest,
    *,
    form: FormType,
    build: ConfigBuilder[FormType],
    kind: str | Callable[[dict[str, Any]], str],
    run_label: str,
    template: str,
    context: dict[str, Any] | Callable[[FormType], dict[str, Any]] | None = None,
) -> HttpResponse:
    """The response of a "new run" page: on a good POST queue the run and go to it, else show the form.

    - `form`: bound to `request.POST` on a POST, unbound (with its initial values) on a GET.
    - `build`: see `ConfigBuilder`.
    - `kind`: the run kind, or a function of the built config that names it (training's trainer
      picks train_sft / train_preference / train_reward). The queue comes from the kind's
      registration (`webapp.runs.registry`), not from here.
    - `run_label`: how the success message names the run: "SPIN" gives "SPIN run #12 queued."
    - `template`, `context`: the page, rendered with `form` plus `context` (or `context(form)`, for a
      page whose context is drawn from the form, as ALMoST's rubric); status 400 when the form has
      errors, so a refused POST is not mistaken for a success.

    The run's name is the form's `name` field when it has one.

    Clone and edit (`?from_run=<id>`, webapp/runs/clone.py): a GET shows the form bound to that
    run's settings, with what can no longer be used marked; the POST (to the same URL) notes the
    run it was cloned from on the new run.
    """
    source = clone_source(request)
    if request.method == "POST":
        config = config_from_form(form, build)
        if config is not None:
            run_kind = kind(config) if callable(kind) else kind
            run = run_create(
                user=request.user,
                kind=run_kind,
                config=config,
                name=form.cleaned_data.get("name") or "",
                cloned_from=source,
            )
            messages.success(request, f"{run_label} run #{run.pk} queued.")
            return redirect(run)
    elif source is not None:
        form = clone_form(form, source)
        messages.info(request, clone_notice(source))
        return render(request, template, {"form": form, **_page_context(context, form), "cloned_from": source})
    return render(request, template, {"form": form, **_page_context(context, form)}, status=400 if form.errors else 200)


def _page_context(
    context: dict[str, Any] | Callable[[FormType], dict[str, Any]] | None, form: FormType
) -> dict[str, Any]:
    return context(form) if callable(context) else (context or {})


@dataclass(frozen=True)
class EstimateLine:
    """One figure of an estimate: "Generations, at most | 1,200 | 5 per prompt".

    `key` (optional) becomes the row's `data-key`, a stable handle for tests and styling.
    """

    label: str
    value: Any
    note: str = ""
    key: str = ""


@dataclass(frozen=True)
class EstimateWarning:
    """Something the user should know before queueing; `stops_run` when the run will refuse to start."""

    message: str
    stops_run: bool = False


@dataclass(frozen=True)
class Estimate:
    """What a run would ask of the models, shown beside its form before it is queued.

    - `lines`: the figures, in order.
    - `warnings`: what the user should fix or know (shown above the figures).
    - `notes`: how to read the figures ("tokens at 4 characters each"), shown below them.
    - `resolved`: the resolved config as text (JSON), shown folded, so the user sees exactly what
      the preset, the defaults and the form's fields add up to.
    """

    lines: Sequence[EstimateLine]
    warnings: Sequence[EstimateWarning] = field(default_factory=tuple)
    notes: Sequence[str] = field(default_factory=tuple)
    resolved: str = ""


EstimateBuilder = Callable[[FormType, dict[str, Any]], Estimate | None]
"""The estimate of a built config (the form is valid, its cleaned data at hand); None when there is
nothing to estimate yet (the partial then shows its hint). May raise `ValidationError` or
`InvalidConfigError`, shown as form errors."""


def estimate_response(
    request: HttpRequest,
    *,
    form: FormType,
    build: ConfigBuilder[FormType],
    estimate: EstimateBuilder[FormType],
    hint: str = "",
) -> HttpResponse:
    """The estimate partial for the form as posted (htmx `hx-post` of the whole form on change).

    Renders `core/partials/_estimate.html`: the `Estimate` when the config builds, else the form's
    problems (the same ones a submit would show), else `hint`. Always status 200: htmx swaps the
    partial in whatever it says.
    """
    config = config_from_form(form, build)
    result: Estimate | None = None
    if config is not None:
        try:
            result = estimate(form, config)
        except (ValidationError, InvalidConfigError) as error:
            add_validation_error(form, error)
    return render(request, ESTIMATE_TEMPLATE, {"form": form, "estimate": result, "hint": hint})
