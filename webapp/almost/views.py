"""ALMoST pages: the run form with the rubric editor (reorder, default ordering) and its cost estimate."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from webapp.accounts.permissions import research_required
from webapp.core.forms import add_validation_error
from webapp.library.models import FewShotSet, SeedPromptSet
from webapp.registry.models import ModelEntry
from webapp.runs import services as run_services

from . import services
from .forms import RUBRIC_PREFIX, AlmostRunForm, ConfigurationFormSet, rubric_rows


def _build(form: AlmostRunForm, rubric: Any) -> dict[str, Any] | None:
    """The validated run config, or None with the problems added to the form."""
    form_ok, rubric_ok = form.is_valid(), rubric.is_valid()
    if not (form_ok and rubric_ok):
        return None
    data = form.cleaned_data
    try:
        return services.almost_config_build(
            seed_prompt_set=data["seed_prompt_set"],
            configurations=[entry.choice() for entry in rubric.forms if entry.cleaned_data],
            reward_model=data["reward_model"],
            num_generation=data["num_generation"],
            in_context=data["in_context"],
            rmsp_n=data["rmsp_n"],
            rmsp_enabled=data["rmsp_enabled"],
            filters=form.filters(),
            preset=data["preset"],
            reward_max_steps=data.get("reward_max_steps"),
            reward_eval_fraction=data.get("reward_eval_fraction"),
            response_max_tokens=data.get("response_max_tokens"),
            prompt_max_tokens=data.get("prompt_max_tokens"),
            reward_prompt_format=data.get("reward_prompt_format") or "",
        )
    except ValidationError as error:
        add_validation_error(form, error)
        return None


def _default_rubric() -> list[dict[str, Any]]:
    """A first rubric: the first generation model with the HHH-style set at 3 and 1 shots (if the library has them)."""
    model = ModelEntry.objects.filter(task=ModelEntry.Task.GENERATION).order_by("pk").first()
    demonstrations = FewShotSet.objects.filter(kind=FewShotSet.Kind.DEMONSTRATION).order_by("pk").first()
    if model is None:
        return [{}, {}]
    if demonstrations is None:
        return [{"model": model.pk, "shots": 0}, {"model": model.pk, "shots": 0}]
    most = min(3, demonstrations.example_count or 3)
    return [
        {"model": model.pk, "shots": most, "demonstration_set": demonstrations.pk},
        {"model": model.pk, "shots": 1, "demonstration_set": demonstrations.pk},
    ]


def _resolve(row: dict[str, str]) -> services.ConfigurationChoice | None:
    try:
        model = ModelEntry.objects.get(pk=int(row["model"]))
        shots = int(row["shots"])
        demonstrations = FewShotSet.objects.get(pk=int(row["demonstration_set"])) if row["demonstration_set"] else None
    except (ValueError, TypeError, KeyError, ModelEntry.DoesNotExist, FewShotSet.DoesNotExist):
        return None
    return services.ConfigurationChoice(model=model, shots=shots, demonstration_set=demonstrations)


def _edit_rubric(action: str, rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Apply one editor button: add, sort (rules of thumb), up-i, down-i, remove-i."""
    if action == "add":
        return [*rows, dict(rows[-1]) if rows else {}]
    if action == "sort":
        resolved = [(row, _resolve(row)) for row in rows]
        ordered = services.rubric_default_order([choice for _, choice in resolved if choice is not None])
        order = {id(choice): position for position, choice in enumerate(ordered)}
        complete = sorted(
            ((row, choice) for row, choice in resolved if choice is not None), key=lambda pair: order[id(pair[1])]
        )
        return [row for row, _ in complete] + [row for row, choice in resolved if choice is None]
    verb, _, position = action.partition("-")
    if not position.isdigit() or int(position) >= len(rows):
        return rows
    index = int(position)
    if verb == "remove":
        return rows[:index] + rows[index + 1 :]
    target = index - 1 if verb == "up" else index + 1 if verb == "down" else index
    if 0 <= target < len(rows):
        rows[index], rows[target] = rows[target], rows[index]
    return rows


@require_http_methods(["GET", "POST"])
@research_required
def almost_new(request: HttpRequest) -> HttpResponse:
    estimate = None
    show_errors = False
    if request.method == "GET":
        seed_set = SeedPromptSet.objects.order_by("pk").first()
        reward_model = (
            ModelEntry.objects.filter(backend=ModelEntry.Backend.TRANSFORMERS, task=ModelEntry.Task.GENERATION)
            .order_by("pk")
            .first()
        )
        form = AlmostRunForm(initial={"seed_prompt_set": seed_set, "reward_model": reward_model})
        rubric = ConfigurationFormSet(prefix=RUBRIC_PREFIX, initial=_default_rubric())
    else:
        action = request.POST.get("action", "start")
        form = AlmostRunForm(request.POST)
        if action in ("start", "estimate"):
            rubric = ConfigurationFormSet(request.POST, prefix=RUBRIC_PREFIX)
            config = _build(form, rubric)
            show_errors = config is None
            if config is not None and action == "start":
                run = run_services.run_create(kind="almost", user=request.user, config=config, name=form.cleaned_data["name"])
                messages.success(request, f"ALMoST run #{run.pk} queued.")
                return redirect(run)
            if config is not None:
                estimate = services.almost_cost_estimate(config)
        else:
            rubric = ConfigurationFormSet(prefix=RUBRIC_PREFIX, initial=_edit_rubric(action, rubric_rows(request.POST)))
    context = {"form": form, "rubric": rubric, "estimate": estimate, "show_errors": show_errors}
    return render(request, "almost/new.html", context, status=400 if show_errors else 200)


@require_POST
@research_required
def almost_estimate(request: HttpRequest) -> HttpResponse:
    """What the form would ask of the models, or why it would be refused; refreshed as the form changes."""
    form = AlmostRunForm(request.POST)
    rubric = ConfigurationFormSet(request.POST, prefix=RUBRIC_PREFIX)
    config = _build(form, rubric)
    estimate = services.almost_cost_estimate(config) if config else None
    problems = [] if config else _problems(form, rubric)
    return render(request, "almost/partials/_estimate.html", {"estimate": estimate, "problems": problems})


def _problems(form: AlmostRunForm, rubric: Any) -> list[str]:
    problems = [
        f"{form.fields[field].label or field}: {' '.join(errors)}" if field in form.fields else " ".join(errors)
        for field, errors in form.errors.items()
    ]
    for position, errors in enumerate(rubric.errors, start=1):
        problems += [f"configuration {position} {field}: {' '.join(messages_)}" for field, messages_ in errors.items()]
    problems += list(rubric.non_form_errors())
    return problems
