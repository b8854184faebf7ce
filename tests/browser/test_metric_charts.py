"""Metric charts in Chromium: axes with tick labels, the value under the cursor, the learning rate on a log
axis, smoothing, live growth while the run writes metrics, and two runs overlaid in the compare view."""

from __future__ import annotations

import pytest

from tests.browser.conftest import needs_chromium
from webapp.runs.charts import format_value

pytestmark = [pytest.mark.browser, pytest.mark.slow, needs_chromium, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-chart-reading-password-42"


def _training_rows(
    first_step: int, last_step: int, *, scale: float = 1.0, peak: float = 5e-5
) -> list[dict[str, float]]:
    """A learning rate warming up from 0 at step 1 to `peak` at step 50, and a falling loss."""
    return [
        {"step": step, "loss": scale * 4.0 / step, "learning_rate": 0.0 if step == 1 else peak * min(step, 50) / 50}
        for step in range(first_step, last_step + 1)
    ]


def _log_in(page, live_server, django_user_model):  # type: ignore[no-untyped-def]
    user = django_user_model.objects.create_user(username="rita", password=PASSWORD, role="researcher")
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "rita")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_url(f"{live_server.url}/dashboard/")
    return user


def _hover_value(page, metric: str, step: float, series: int) -> str:  # type: ignore[no-untyped-def]
    """Move the mouse over `step` on the metric's chart; the legend's value of the given series."""
    figure = f'figure[data-metric="{metric}"]'
    x, y = page.eval_on_selector(
        figure,
        """(figure, step) => {
            const plot = figure.plot, over = plot.over.getBoundingClientRect();
            return [over.left + plot.valToPos(step, "x"), over.top + over.height / 2];
        }""",
        step,
    )
    page.mouse.move(x, y)
    return page.locator(f"{figure} .u-legend .u-series").nth(series).locator(".u-value").inner_text()


def test_a_running_runs_charts_have_axes_hover_values_a_log_learning_rate_and_grow_live(
    browser_page, live_server, django_user_model
):
    from webapp.runs.models import PipelineRun
    from webapp.runs.services import run_append_metrics

    page = browser_page
    policy_violations: list[str] = []
    page.on(
        "console",
        lambda message: policy_violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    user = _log_in(page, live_server, django_user_model)
    run = PipelineRun.objects.create(
        kind="training", name="sft demo", created_by=user, status=PipelineRun.Status.RUNNING
    )
    run_append_metrics(run_id=run.pk, rows=_training_rows(1, 20))

    page.goto(f"{live_server.url}/runs/{run.pk}/")
    page.wait_for_selector("#run-charts[data-charts-ready=true]")
    loss = page.locator('figure[data-metric="loss"]')
    # Axes: tick labels on both axes, within the data's range, with the axis names the canvas draws.
    x_ticks = [float(label) for label in loss.get_attribute("data-x-ticks").split("|")]
    y_ticks = [float(label) for label in loss.get_attribute("data-y-ticks").split("|")]
    assert len(x_ticks) >= 3 and min(x_ticks) >= 1 and max(x_ticks) <= 20
    assert len(y_ticks) >= 3 and 0 <= min(y_ticks) < 1 and 3 < max(y_ticks) <= 5  # the loss runs 4 ... 0.2
    assert loss.evaluate("figure => figure.plot.axes.map(axis => axis.label)") == ["step", "loss (nats)"]

    # Hover: the legend shows the step and the loss under the cursor.
    assert _hover_value(page, "loss", 8, series=0) == "8"
    assert _hover_value(page, "loss", 8, series=1) == format_value(4.0 / 8)

    # The learning rate reads in powers of ten on a log axis, not "0.0000"; its zero is said, not hidden.
    learning_rate = page.locator('figure[data-metric="learning_rate"]')
    assert learning_rate.get_attribute("data-log-scale") == "true"
    assert learning_rate.evaluate("figure => figure.plot.scales.y.distr") == 3
    assert "1e-5" in learning_rate.get_attribute("data-y-ticks").split("|")
    assert "1 value ≤ 0 not drawn on the log scale" in learning_rate.inner_text()
    assert _hover_value(page, "learning_rate", 10, series=1) == "1e-5"
    learning_rate.locator("[data-chart-log]").uncheck()
    assert learning_rate.evaluate("figure => figure.plot.scales.y.distr") == 1
    learning_rate.locator("[data-chart-log]").check()

    # Live: new metrics arrive through the 1 s refresh and the same drawn chart takes them (no redraw).
    loss.evaluate("figure => { figure.plot.keptAcrossRefresh = true; }")
    run_append_metrics(run_id=run.pk, rows=[*_training_rows(21, 30), {"step": 30, "eval/loss": 1.5}])
    page.wait_for_function("""() => document.querySelector('figure[data-metric="loss"]').plot.data[0].length === 30""")
    assert loss.evaluate("figure => figure.plot.keptAcrossRefresh") is True
    assert "at step 30" in loss.locator("[data-chart-summary]").inner_text()
    # A metric first logged mid-run gets its chart in the kept panel, with its name and value.
    evaluation_loss = page.locator('figure[data-metric="eval/loss"]')
    evaluation_loss.locator(".u-legend").wait_for()
    assert evaluation_loss.locator("[data-chart-summary]").inner_text() == "1.5 at step 30 · range 1.5 – 1.5"
    assert evaluation_loss.locator("figcaption").inner_text().startswith("eval/loss (nats) 1.5 at step 30")

    # Smoothing: a raw line joins each smoothed one, and the smoothed value lags the falling raw loss.
    page.locator("[data-chart-smoothing]").fill("0.9")
    assert page.locator("[data-chart-smoothing-value]").inner_text() == "0.90"
    labels = loss.evaluate("figure => figure.plot.series.map(series => series.label)")
    assert labels == ["step", "loss (raw)", "loss"]
    raw, smoothed = loss.evaluate("figure => [figure.plot.data[1][29], figure.plot.data[2][29]]")
    assert raw == pytest.approx(4.0 / 30) and smoothed > raw
    assert policy_violations == []


def test_the_chart_script_smooths_and_prints_values_as_the_server_does(browser_page, live_server, django_user_model):
    page = browser_page
    _log_in(page, live_server, django_user_model)
    page.wait_for_function("() => window.RefineryCharts !== undefined")
    # Debiased EMA with weight 0.5 over 1, 2, 3: 1, (0.25 + 1) / 0.75, (0.625 + 1.5) / 0.875; a gap stays a gap.
    smoothed = page.evaluate("() => RefineryCharts.smooth([1, 2, null, 3], 0.5)")
    assert smoothed == pytest.approx([1.0, 1.25 / 0.75, None, 2.125 / 0.875])
    assert page.evaluate("() => RefineryCharts.smooth([4, 5], 0)") == [4, 5]
    values = [0.0, 2e-5, 2.5e-5, -3.25e-4, 0.001234, 0.5, 2.0, 1.23456, 12345.6, 123456.0]
    assert page.evaluate("values => values.map(RefineryCharts.formatValue)", values) == [
        format_value(v) for v in values
    ]


def test_two_runs_ticked_in_the_run_list_are_overlaid_in_the_compare_view(browser_page, live_server, django_user_model):
    from webapp.runs.models import PipelineRun
    from webapp.runs.services import run_append_metrics

    page = browser_page
    policy_violations: list[str] = []
    page.on(
        "console",
        lambda message: policy_violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    user = _log_in(page, live_server, django_user_model)
    runs = []
    for name, learning_rate, scale in (("lr 1e-5", 1e-5, 1.0), ("lr 5e-5", 5e-5, 0.5)):
        run = PipelineRun.objects.create(
            kind="training",
            name=name,
            created_by=user,
            status=PipelineRun.Status.SUCCEEDED,
            config={"training": {"learning_rate": learning_rate, "epochs": 1}},
        )
        run_append_metrics(run_id=run.pk, rows=_training_rows(1, 12, scale=scale, peak=learning_rate))
        runs.append(run)

    page.goto(f"{live_server.url}/runs/")
    for run in runs:
        page.check(f"input[name=runs][value='{run.pk}']")
    page.get_by_role("button", name="Compare selected runs").click()
    page.wait_for_selector("#compare-charts[data-charts-ready=true]")
    assert f"runs={runs[0].pk}" in page.url and f"runs={runs[1].pk}" in page.url

    loss = page.locator('figure[data-metric="loss"]')
    # The run list sends its ticked runs newest first; the legend follows the page's order of runs.
    order = [
        int(run_id)
        for run_id in page.locator("#compared-runs li").evaluate_all("items => items.map(i => i.dataset.run)")
    ]
    assert sorted(order) == [run.pk for run in runs]
    names = {run.pk: run.name for run in runs}
    legend = loss.locator(".u-legend .u-series .u-label").all_inner_texts()
    assert legend == ["step"] + [f"#{run_id} {names[run_id]}" for run_id in order]
    loss_at_step_4 = {runs[0].pk: "1", runs[1].pk: "0.5"}
    assert _hover_value(page, "loss", 4, series=1) == loss_at_step_4[order[0]]
    assert _hover_value(page, "loss", 4, series=2) == loss_at_step_4[order[1]]
    colours = loss.evaluate("figure => figure.plot.series.slice(1).map(series => series._stroke)")
    assert len(set(colours)) == 2

    differing = page.locator("#compare-configs tr.differs").all()
    assert [row.get_attribute("data-setting") for row in differing] == ["training.learning_rate"]
    assert page.locator('#compare-configs tr[data-setting="training.epochs"]').get_attribute("class") is None
    page.locator("[data-chart-smoothing]").fill("0.6")
    assert loss.evaluate("figure => figure.plot.series.length") == 5  # step, then raw and smoothed per run
    assert policy_violations == []
