"""The numbers the metric charts draw: one chart per numeric series in a useful order, units, the
learning rate on a log axis, lines per run and per training restart, thinning, and printed values."""

from __future__ import annotations

import json

import pytest

from webapp.runs.charts import MAX_POINTS, charts_json, compare_charts, format_value, metric_charts


def test_each_numeric_metric_gets_a_chart_with_loss_first_and_its_unit():
    rows = [
        {"step": 1, "t": 1.0, "grad_norm": 2.0, "loss": 3.0, "learning_rate": 1e-5, "epoch": 0.1},
        {"step": 2, "t": 2.0, "grad_norm": 1.0, "loss": 2.0, "learning_rate": 2e-5, "note": "text"},
        {"step": 3, "eval/accuracy": 0.75},
    ]
    charts = metric_charts(rows)
    assert [chart.name for chart in charts] == ["loss", "learning_rate", "grad_norm", "eval/accuracy"]
    loss = charts[0]
    assert (loss.last, loss.low, loss.high, loss.count, loss.last_step) == (2.0, 2.0, 3.0, 2, 2.0)
    assert [chart.unit for chart in charts] == ["nats", "per step", "L2 norm", "share of pairs"]
    assert {chart.x_label for chart in charts} == {"step"}


@pytest.mark.parametrize(
    ("name", "unit"),
    [
        ("eval/loss", "nats"),
        ("rewards/margins", "reward"),
        ("eval/rewards/accuracies", "share of pairs"),
        ("logps/chosen", "log-probability (nats)"),
        ("eval/logps/rejected", "log-probability (nats)"),
        ("tokens_per_second", "tokens / s"),
        ("something_new", ""),
    ],
)
def test_units_follow_the_last_part_of_the_metric_name(name, unit):
    assert metric_charts([{"step": 1, name: 1.0}])[0].unit == unit


def test_the_learning_rate_starts_on_a_log_axis_and_counts_the_zeros_it_cannot_draw():
    rows = [{"step": step, "learning_rate": rate, "loss": 1.0} for step, rate in [(1, 0.0), (2, 1e-6), (3, 2e-5)]]
    learning_rate = next(chart for chart in metric_charts(rows) if chart.name == "learning_rate")
    assert learning_rate.log_scale and learning_rate.non_positive_count == 1
    assert not metric_charts(rows)[0].log_scale  # the loss stays linear
    only_zeros = metric_charts([{"step": 1, "learning_rate": 0.0}, {"step": 2, "learning_rate": 0.0}])[0]
    assert not only_zeros.log_scale  # nothing a log axis could place


def test_a_step_that_goes_back_starts_a_new_line_on_the_same_x_axis():
    rows = [{"step": step, "loss": 1.0 / step} for step in (1, 2, 3)] + [{"step": step, "loss": 0.5} for step in (1, 2)]
    chart = metric_charts(rows)[0]
    assert [line.label for line in chart.lines] == ["loss · training 1", "loss · training 2"]
    aligned = chart.aligned()
    assert aligned["x"] == [1.0, 2.0, 3.0]
    assert [line["y"] for line in aligned["lines"]] == [[1.0, 0.5, 1 / 3], [0.5, 0.5, None]]


def test_compared_runs_get_a_line_each_aligned_on_the_union_of_their_steps():
    first = [{"step": step, "loss": 4.0 - step} for step in (1, 2, 3)]
    second = [{"step": step, "loss": 5.0 - step, "eval/loss": 2.0} for step in (2, 4)]
    charts = compare_charts([("#1 small", first), ("#2 large", second)])
    assert [chart.name for chart in charts] == ["loss", "eval/loss"]
    loss = charts[0].aligned()
    assert loss["x"] == [1.0, 2.0, 3.0, 4.0]
    assert loss["lines"] == [
        {"label": "#1 small", "y": [3.0, 2.0, 1.0, None]},
        {"label": "#2 large", "y": [None, 3.0, None, 1.0]},
    ]
    assert [line.label for line in charts[1].lines] == ["#2 large"]


def test_rows_without_a_step_are_drawn_against_the_batch_or_their_position():
    by_batch = metric_charts([{"batch": 4, "tokens_per_second": 10.0}, {"batch": 8, "tokens_per_second": 12.0}])[0]
    assert by_batch.x_label == "batch" and by_batch.aligned()["x"] == [4.0, 8.0]
    by_position = metric_charts([{"reward": 1.0}, {"reward": 2.0}])[0]
    assert by_position.x_label == "row" and by_position.aligned()["x"] == [0.0, 1.0]


def test_long_series_are_thinned_but_keep_their_latest_point():
    chart = metric_charts([{"step": step, "loss": 1 / (step + 1)} for step in range(2001)])[0]
    assert chart.count <= MAX_POINTS + 1 and chart.last_step == 2000


def test_non_finite_values_and_missing_metrics_give_no_chart():
    assert metric_charts([]) == []
    assert metric_charts([{"step": 1, "loss": float("nan"), "flag": True}]) == []


def test_the_json_for_the_script_holds_every_line_and_the_axis_settings():
    rows = [{"step": 1, "learning_rate": 1e-5}, {"step": 2, "learning_rate": 2e-5}]
    [payload] = json.loads(charts_json(metric_charts(rows)))
    assert payload == {
        "name": "learning_rate",
        "unit": "per step",
        "x_label": "step",
        "log_scale": True,
        "non_positive": 0,
        "x": [1.0, 2.0],
        "lines": [{"label": "learning_rate", "y": [1e-5, 2e-5]}],
    }


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0"),
        (2e-5, "2e-5"),  # a learning rate: floatformat printed "0.0000"
        (2.5e-5, "2.5e-5"),
        (-3.25e-4, "-3.25e-4"),
        (0.001234, "0.001234"),
        (0.5, "0.5"),
        (2.0, "2"),
        (1.23456, "1.235"),
        (12345.6, "12350"),
        (123456.0, "1.235e5"),
    ],
)
def test_values_print_with_four_significant_digits_and_powers_of_ten_at_the_extremes(value, text):
    assert format_value(value) == text
