"""The compare view: runs of one kind side by side, bad choices refused with a message naming the field."""

from __future__ import annotations

import json
import re

import pytest

from webapp.runs.compare import config_rows
from webapp.runs.models import PipelineRun
from webapp.runs.services import run_append_metrics

pytestmark = pytest.mark.django_db


def _run(user, *, kind: str = "training", name: str, learning_rate: float, losses: list[float]) -> PipelineRun:
    config = {"training": {"learning_rate": learning_rate, "epochs": 1}, "dataset": "demo"}
    run = PipelineRun.objects.create(kind=kind, name=name, created_by=user, config=config)
    run_append_metrics(run_id=run.pk, rows=[{"step": step, "loss": loss} for step, loss in enumerate(losses, 1)])
    return run


def _charts(html: str) -> list[dict]:
    attribute = re.search(r'data-charts="([^"]*)"', html).group(1)
    return json.loads(attribute.replace("&quot;", '"').replace("&amp;", "&"))


def test_two_runs_are_overlaid_per_metric_and_their_differing_settings_marked(client, researcher):
    first = _run(researcher, name="small lr", learning_rate=1e-5, losses=[3.0, 2.0])
    second = _run(researcher, name="large lr", learning_rate=1e-4, losses=[3.5, 1.5, 1.0])
    client.force_login(researcher)
    response = client.get(f"/runs/compare/?runs={first.pk},{second.pk}")
    assert response.status_code == 200
    html = response.content.decode()
    [loss] = _charts(html)
    assert loss["name"] == "loss" and loss["x"] == [1.0, 2.0, 3.0]
    assert loss["lines"] == [
        {"label": f"#{first.pk} small lr", "y": [3.0, 2.0, None]},
        {"label": f"#{second.pk} large lr", "y": [3.5, 1.5, 1.0]},
    ]
    assert '<tr data-setting="training.learning_rate" class="differs">' in html
    assert '<tr data-setting="training.epochs">' in html
    assert "1 of 3 settings differ" in html


def test_the_run_lists_checkboxes_form_is_read_too(client, researcher):
    runs = [_run(researcher, name=f"run {index}", learning_rate=1e-5, losses=[1.0]) for index in range(2)]
    client.force_login(researcher)
    response = client.get("/runs/compare/", {"runs": [str(run.pk) for run in runs]})
    assert response.status_code == 200 and 'id="compare-charts"' in response.content.decode()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("runs=1x,2", "runs: “1x” is not a run number"),
        ("runs={a}", "runs: choose two or more runs"),
        ("runs={a},999999", "runs: no run #999999."),
        ("runs={a},{other}", "runs: only runs of one kind can be compared"),
    ],
)
def test_runs_that_cannot_be_compared_are_refused_with_the_reason(client, researcher, query, message):
    run = _run(researcher, name="a", learning_rate=1e-5, losses=[1.0])
    other = _run(researcher, kind="generate", name="b", learning_rate=1e-5, losses=[1.0])
    client.force_login(researcher)
    response = client.get("/runs/compare/?" + query.format(a=run.pk, other=other.pk))
    assert response.status_code == 400
    assert message in response.content.decode()


def test_the_page_without_a_choice_says_how_to_choose(client, researcher):
    client.force_login(researcher)
    response = client.get("/runs/compare/")
    assert response.status_code == 200
    assert "choose two or more runs to compare (tick them in the run list)" in response.content.decode()


def test_annotators_and_anonymous_users_cannot_compare(client, annotator, researcher):
    runs = [_run(researcher, name=f"run {index}", learning_rate=1e-5, losses=[1.0]) for index in range(2)]
    url = f"/runs/compare/?runs={runs[0].pk},{runs[1].pk}"
    assert client.get(url).status_code == 302
    client.force_login(annotator)
    assert client.get(url).status_code == 403


def test_config_rows_flatten_nesting_and_mark_absent_settings():
    rows = config_rows([{"a": {"b": 1}, "c": [1, 2]}, {"a": {"b": 1, "d": "x"}}])
    assert [(row.key, row.values, row.differs) for row in rows] == [
        ("a.b", ["1", "1"], False),
        ("c", ["[1, 2]", "—"], True),
        ("a.d", ["—", "x"], True),
    ]
