"""The shared "new run" flow and estimate panel (webapp/core/run_forms.py), on a small form of their own."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from django import forms
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages import get_messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.sessions.backends.db import SessionStore
from django.core.exceptions import ValidationError
from django.test import RequestFactory

from pipelines.errors import InvalidConfigError
from webapp.core import run_forms
from webapp.core.run_forms import Estimate, EstimateLine, EstimateWarning, estimate_response, new_run_response

pytestmark = pytest.mark.django_db
TEMPLATE = "core/partials/_estimate.html"  # any template that renders `form` will do


class SizeForm(forms.Form):
    name = forms.CharField(required=False)
    size = forms.IntegerField()


def _request(data: dict[str, str] | None = None) -> Any:
    factory = RequestFactory()
    request = factory.post("/new/", data) if data is not None else factory.get("/new/")
    request.user = AnonymousUser()
    request.session = SessionStore()
    request._messages = FallbackStorage(request)
    return request


def _build(form: SizeForm) -> dict[str, Any]:
    size = form.cleaned_data["size"]
    if size > 10:
        raise InvalidConfigError(f"size must be at most 10, got {size}", field="size")
    if size < 0:
        raise ValidationError("negative sizes make no sense")
    return {"size": size}


@pytest.fixture
def created(monkeypatch) -> list[dict[str, Any]]:
    """What `new_run_response` asked `run_create` for; the run it gets back has a page at /runs/7/."""
    calls: list[dict[str, Any]] = []

    def run_create(**arguments: Any) -> Any:
        calls.append(arguments)
        return SimpleNamespace(pk=7, get_absolute_url=lambda: "/runs/7/")

    monkeypatch.setattr(run_forms, "run_create", run_create)
    return calls


def _new(request: Any, **overrides: Any) -> Any:
    arguments = {
        "form": SizeForm(request.POST or None),
        "build": _build,
        "kind": "sample",
        "run_label": "Sample",
        "template": TEMPLATE,
        "context": {"hint": "fill in the size"},
    }
    return new_run_response(request, **{**arguments, **overrides})


def test_a_valid_post_queues_the_run_says_so_and_goes_to_its_page(created):
    request = _request({"size": "3", "name": "mine"})
    response = _new(request)
    assert response.status_code == 302 and response["Location"] == "/runs/7/"
    assert created == [
        {"user": request.user, "kind": "sample", "config": {"size": 3}, "name": "mine", "cloned_from": None}
    ]
    assert [str(message) for message in get_messages(request)] == ["Sample run #7 queued."]


def test_the_kind_can_be_named_by_the_built_config(created):
    _new(_request({"size": "4"}), kind=lambda config: f"sample_{config['size']}")
    assert created[0]["kind"] == "sample_4" and created[0]["name"] == ""


def test_a_get_shows_the_form_with_the_pages_context(created):
    response = _new(_request())
    assert response.status_code == 200 and "fill in the size" in response.content.decode()
    assert created == []


@pytest.mark.parametrize(
    ("size", "message"),
    [
        ("", "This field is required."),
        ("11", "size must be at most 10, got 11"),
        ("-1", "negative sizes make no sense"),
    ],
)
def test_a_refused_post_shows_the_problem_with_status_400_and_queues_nothing(created, size, message):
    response = _new(_request({"size": size}))
    assert response.status_code == 400 and message in response.content.decode()
    assert created == []


def test_a_config_error_lands_beside_its_field():
    form = SizeForm({"size": "11"})
    assert run_forms.config_from_form(form, _build) is None
    assert form.errors["size"] == ["size must be at most 10, got 11"]


def _estimate(form: SizeForm, config: dict[str, Any]) -> Estimate | None:
    size = config["size"]
    if size == 0:
        return None
    if size == 9:
        raise ValidationError({"size": "nine is unlucky"})
    return Estimate(
        lines=[EstimateLine("Generations", size * 5, note="5 per item", key="generations")],
        warnings=[EstimateWarning("Big runs take long.")]
        + ([EstimateWarning("Too big.", stops_run=True)] * (size > 5)),
        notes=["Figures at most."],
        resolved=json.dumps({"size": size}),
    )


def _estimate_page(data: dict[str, str]) -> str:
    request = _request(data)
    response = estimate_response(request, form=SizeForm(request.POST), build=_build, estimate=_estimate, hint="Pick")
    assert response.status_code == 200  # htmx swaps in whatever the partial says
    return response.content.decode()


def test_the_estimate_shows_its_lines_warnings_notes_and_the_resolved_config():
    page = _estimate_page({"size": "3"})
    assert "Ready to queue, but read the warning above first." in page  # a warning is pointed at, not buried
    assert (
        '<tr data-key="generations"><th>Generations</th><td class="num">15</td><td class="muted">5 per item</td></tr>'
        in page
    )
    assert '<p class="warning" role="alert">Big runs take long.</p>' in page and "Too big." not in page
    assert "Figures at most." in page and "{&quot;size&quot;: 3}" in page
    assert '<p class="error" role="alert">Too big.</p>' in _estimate_page({"size": "6"})


@pytest.mark.parametrize(
    ("data", "shown"),
    [
        ({"size": "11"}, "<strong>Size</strong>: size must be at most 10, got 11"),
        ({"size": "-1"}, "negative sizes make no sense"),
        ({"size": "9"}, "<strong>Size</strong>: nine is unlucky"),
        ({"size": "x"}, "Enter a whole number."),
    ],
)
def test_the_estimate_shows_what_stops_the_run(data, shown):
    page = _estimate_page(data)
    assert shown in page and "Ready to queue" not in page


def test_the_estimate_shows_the_hint_when_there_is_nothing_to_estimate():
    page = _estimate_page({"size": "0"})
    assert '<p class="muted">Pick</p>' in page and "Ready to queue" not in page
