"""The run page's metric charts: one per numeric series, in a useful order, scaled into the box."""
from __future__ import annotations

from webapp.runs.charts import HEIGHT, PAD, WIDTH, metric_charts


def _points(chart):
    return [tuple(float(v) for v in pair.split(",")) for segment in chart.segments for pair in segment.split()]


def test_each_numeric_metric_gets_a_chart_with_loss_first():
    rows = [
        {"step": 1, "t": 1.0, "grad_norm": 2.0, "loss": 3.0, "learning_rate": 1e-5, "epoch": 0.1},
        {"step": 2, "t": 2.0, "grad_norm": 1.0, "loss": 2.0, "learning_rate": 2e-5, "note": "text"},
        {"step": 3, "eval/accuracy": 0.75},
    ]
    charts = metric_charts(rows)
    assert [chart.name for chart in charts] == ["loss", "learning_rate", "grad_norm", "eval/accuracy"]
    loss = charts[0]
    assert (loss.last, loss.low, loss.high, loss.count) == (2.0, 2.0, 3.0, 2)


def test_points_span_the_box_with_higher_values_drawn_higher():
    charts = metric_charts([{"step": step, "loss": loss} for step, loss in [(0, 4.0), (5, 1.0), (10, 2.5)]])
    points = _points(charts[0])
    assert points[0][0] == PAD and points[-1][0] == WIDTH - PAD
    assert points[0][1] == PAD and points[1][1] == HEIGHT - PAD  # the highest loss at the top, lowest at the bottom


def test_long_series_are_thinned_but_keep_their_latest_point():
    charts = metric_charts([{"step": step, "loss": 1 / (step + 1)} for step in range(2001)])
    assert charts[0].count <= 401 and charts[0].last_step == 2000


def test_non_finite_values_and_missing_metrics_give_no_chart():
    assert metric_charts([]) == []
    assert metric_charts([{"step": 1, "loss": float("nan")}]) == []


def test_a_step_that_goes_back_starts_a_new_segment():
    rows = [{"step": step, "loss": 1.0 / step} for step in (1, 2, 3)] + [{"step": step, "loss": 0.5} for step in (1, 2)]
    chart = metric_charts(rows)[0]
    assert [len(segment.split()) for segment in chart.segments] == [3, 2]
