"""A researcher's training session in Debian's Chromium: queue an SFT run from /training/new/, watch it finish,
read its curves, clone it with another learning rate, and compare the two runs.

Everything is real: pytest-django's `live_server`, Redis, an `rqworker` subprocess, PostgreSQL and the tiny
random model (tests/fixtures/models.py), trained for a few LoRA steps on CPU. This test takes the README's
pictures of a finished run's page and of the compare view (REFINERY_SCREENSHOTS=1).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.browser.conftest import needs_chromium, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow, needs_chromium]

PASSWORD = "a-training-flow-password-42"
RUN_FINISH_TIMEOUT_S = 240
TRAINING_STEPS = 16
FIRST_LEARNING_RATE = "0.002"
SECOND_LEARNING_RATE = "0.01"
QUESTIONS = [
    ("What is 2 + 2?", "2 + 2 is 4."),
    ("What is the capital of France?", "The capital of France is Paris."),
    ("Is ice cold or hot?", "Ice is cold."),
    ("How many legs does a spider have?", "A spider has eight legs."),
    ("What colour is a clear daytime sky?", "A clear daytime sky is blue."),
    ("Which is larger, 7 or 3?", "7 is larger than 3."),
]


def _sft_dataset(directory: Path):  # type: ignore[no-untyped-def]
    from webapp.library.models import Artifact
    from webapp.runs.services import artifact_register

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "short-answers.jsonl"
    path.write_text("".join(json.dumps({"prompt": q, "response": a}) + "\n" for q, a in QUESTIONS))
    return artifact_register(run=None, name="short answers", kind=Artifact.Kind.SFT, jsonl_path=path)


def _watch_until_finished(page, worker) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]
    """Poll the run page (which refreshes itself over htmx) until the run ends; every (status, header %) seen.

    Status and bar are read in one evaluation, from the same swapped-in fragment, so a pair is never torn.
    """
    seen: list[tuple[str, int]] = []
    deadline = time.monotonic() + RUN_FINISH_TIMEOUT_S
    while time.monotonic() < deadline:
        status, percent = page.evaluate(
            """() => [document.querySelector('#run-status').innerText.trim(),
                      Number(document.querySelector('#run-progress').getAttribute('aria-valuenow'))]"""
        )
        if not seen or seen[-1] != (status, percent):
            seen.append((status, percent))
        if status not in ("Queued", "Running"):
            return seen
        page.wait_for_timeout(100)
    raise AssertionError(
        f"the run did not finish in {RUN_FINISH_TIMEOUT_S} s; seen {seen}\n{worker.log_text()[-4000:]}"
    )


def _chart_ticks(figure, axis: str) -> list[str]:  # type: ignore[no-untyped-def]
    return figure.get_attribute(f"data-{axis}-ticks").split("|")


def test_a_researcher_trains_clones_with_another_learning_rate_and_compares_the_runs(
    transactional_db,
    live_server,
    live_settings,
    rq_worker,
    django_user_model,
    browser_page,
    tiny_model_dir,
):
    from playwright.sync_api import expect

    from webapp.registry.models import ModelEntry
    from webapp.runs.models import PipelineRun

    page = browser_page
    base = live_server.url
    model = ModelEntry.objects.create(name="tiny-random", source=ModelEntry.Source.LOCAL, path=str(tiny_model_dir))
    dataset = _sft_dataset(Path(live_settings.ARTIFACT_ROOT) / "inputs")
    django_user_model.objects.create_user(username="rita", password=PASSWORD, role="researcher")
    worker = rq_worker().wait_ready()

    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", "rita")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_url(f"{base}/dashboard/")

    # The form: the SFT trainer on the tiny model and the dataset, the CPU preset, a few steps at a chosen rate.
    page.goto(f"{base}/training/new/")
    form = page.locator("#training-form")
    form.locator("input[name=name]").fill("sft lr 2e-3")
    form.locator("select[name=trainer]").select_option("sft")
    form.locator("select[name=model]").select_option(str(model.pk))
    form.locator("select[name=dataset]").select_option(str(dataset.pk))
    form.locator("select[name=preset]").select_option("tiny-cpu-demo")
    form.locator("details[data-advanced] > summary").click()
    form.locator("input[name=max_steps]").fill(str(TRAINING_STEPS))
    form.locator("input[name=learning_rate]").fill(FIRST_LEARNING_RATE)
    form.locator("input[name=lora_r]").fill("4")
    expect(page.locator("#training-estimate")).to_contain_text("Ready to queue")
    form.get_by_role("button", name="Start training").click()
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    first = PipelineRun.objects.get()
    assert first.kind == "train_sft" and first.config["config"]["training"]["learning_rate"] == 2e-3

    # The header bar is the whole run's progress: below 100% while the run works, 100% once it has succeeded.
    seen = _watch_until_finished(page, worker)
    first.refresh_from_db()
    assert seen[-1] == ("Succeeded", 100), f"{seen}\n{first.error}\n{first.traceback}\n{worker.log_text()[-4000:]}"
    assert all(percent < 100 for status, percent in seen[:-1]), seen
    assert any(status == "Running" for status, _percent in seen), f"the page never showed the run working: {seen}"
    expect(page.locator("#run-counts")).to_contain_text("100% of the run")

    # Its charts: the real losses the trainer logged, with tick labels on both axes, and a log learning rate.
    page.wait_for_selector("#run-charts[data-charts-ready=true]")
    losses = [row["loss"] for row in first.metrics if "loss" in row]
    assert len(losses) >= TRAINING_STEPS // 2
    loss = page.locator('figure[data-metric="loss"]')
    drawn = loss.evaluate("figure => figure.plot.data[1].filter(value => value !== null)")
    assert drawn == pytest.approx(losses)
    assert loss.evaluate("figure => figure.plot.axes.map(axis => axis.label)") == ["step", "loss (nats)"]
    x_ticks = [float(label) for label in _chart_ticks(loss, "x")]
    y_ticks = [float(label) for label in _chart_ticks(loss, "y")]
    assert len(x_ticks) >= 3 and min(x_ticks) >= 1 and max(x_ticks) <= TRAINING_STEPS
    assert len(y_ticks) >= 2 and min(losses) - 1 <= min(y_ticks) and max(y_ticks) <= max(losses) + 1
    learning_rate = page.locator('figure[data-metric="learning_rate"]')
    assert learning_rate.get_attribute("data-log-scale") == "true"
    assert learning_rate.evaluate("figure => figure.plot.scales.y.distr") == 3
    assert any("e-" in label for label in _chart_ticks(learning_rate, "y"))
    page.reload()  # as the researcher comes back to it: without the "queued" notice of the redirect
    page.wait_for_selector("#run-charts[data-charts-ready=true]")
    screenshot(page, "run-metric-charts")

    # Clone and edit: the form holds the run's settings; only the learning rate changes.
    page.get_by_role("link", name="Clone and edit").click()
    page.wait_for_url(re.compile(rf"/training/new/\?from_run={first.pk}$"))
    form = page.locator("#training-form")
    assert form.locator("input[name=max_steps]").input_value() == str(TRAINING_STEPS)
    assert float(form.locator("input[name=learning_rate]").input_value()) == float(FIRST_LEARNING_RATE)
    form.locator("input[name=name]").fill("sft lr 1e-2")
    if not form.locator("input[name=learning_rate]").is_visible():
        form.locator("details[data-advanced] > summary").click()
    form.locator("input[name=learning_rate]").fill(SECOND_LEARNING_RATE)
    form.get_by_role("button", name="Start training").click()
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    second = PipelineRun.objects.exclude(pk=first.pk).get()
    assert second.parent_id == first.pk
    seen = _watch_until_finished(page, worker)
    second.refresh_from_db()
    assert seen[-1] == ("Succeeded", 100), f"{seen}\n{second.error}\n{second.traceback}"

    # Compare: both ticked in the run list; two loss curves overlaid, the learning rate the one differing setting.
    page.goto(f"{base}/runs/")
    for run in (first, second):
        page.check(f"input[name=runs][value='{run.pk}']")
    page.get_by_role("button", name="Compare selected runs").click()
    page.wait_for_selector("#compare-charts[data-charts-ready=true]")
    loss = page.locator('figure[data-metric="loss"]')
    assert loss.evaluate("figure => figure.plot.series.length") == 3  # step, then one curve per run
    legend = loss.locator(".u-legend .u-series .u-label").all_inner_texts()
    assert sorted(legend[1:]) == sorted([f"#{first.pk} sft lr 2e-3", f"#{second.pk} sft lr 1e-2"])
    curves = loss.evaluate("figure => figure.plot.data.slice(1).map(s => s.filter(v => v !== null))")
    second.refresh_from_db()
    expected = {tuple(round(row["loss"], 6) for row in run.metrics if "loss" in row) for run in (first, second)}
    assert {tuple(round(value, 6) for value in curve) for curve in curves} == expected
    differing = [row.get_attribute("data-setting") for row in page.locator("#compare-configs tr.differs").all()]
    assert differing == ["config.training.learning_rate"]  # the clone changed nothing else
    changed = page.locator('#compare-configs tr[data-setting="config.training.learning_rate"] td.config-value')
    assert sorted(float(value) for value in changed.all_inner_texts()) == [
        float(FIRST_LEARNING_RATE),
        float(SECOND_LEARNING_RATE),
    ]
    screenshot(page, "run-compare")
