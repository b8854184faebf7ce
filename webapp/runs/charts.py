"""Small server-rendered line charts of a run's metric time series (loss, learning rate, rewards ...).

The run page polls its live partial every second; drawing the charts as inline SVG on the server
keeps that one request the whole update, with no chart library to ship and no CDN.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

# Shown first, in this order; any other numeric series follows alphabetically.
PREFERRED_ORDER = (
    "loss",
    "eval/loss",
    "learning_rate",
    "grad_norm",
    "rewards/margins",
    "rewards/accuracies",
    "eval/rewards/margins",
    "eval/rewards/accuracies",
    "accuracy",
    "eval/accuracy",
    "tokens_per_second",
)
NOT_SERIES = {"step", "t", "epoch", "batch", "total_flos"}
WIDTH, HEIGHT, PAD = 300, 110, 6
MAX_POINTS = 400


@dataclass(frozen=True)
class Chart:
    """One metric drawn against the step: SVG polyline points plus the numbers worth printing."""

    name: str
    segments: list[str]
    """SVG polyline points, one string per segment: a new segment starts where the step goes back
    (a method that trains several times in one run, such as SPIN's iterations, restarts at step 1)."""
    last: float
    low: float
    high: float
    first_step: float
    last_step: float
    count: int
    width: int = WIDTH
    height: int = HEIGHT


def metric_charts(rows: list[dict[str, Any]]) -> list[Chart]:
    """A chart per numeric metric with at least one value; x is `step` (or the row index)."""
    series: dict[str, list[tuple[float, float]]] = {}
    for index, row in enumerate(rows):
        x = row.get("step", row.get("batch", index))
        if not _is_number(x):
            continue
        for name, value in row.items():
            if name in NOT_SERIES or not _is_number(value):
                continue
            series.setdefault(name, []).append((float(x), float(value)))
    names = sorted(series, key=lambda name: (PREFERRED_ORDER.index(name) if name in PREFERRED_ORDER else 99, name))
    return [_chart(name, series[name]) for name in names]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _chart(name: str, values: list[tuple[float, float]]) -> Chart:
    if len(values) > MAX_POINTS:  # thin evenly, always keeping the latest point
        stride = math.ceil(len(values) / MAX_POINTS)
        values = values[::stride] + ([values[-1]] if (len(values) - 1) % stride else [])
    xs = [x for x, _ in values]
    ys = [y for _, y in values]
    x_low, x_high = min(xs), max(xs)
    y_low, y_high = min(ys), max(ys)
    x_span = (x_high - x_low) or 1.0
    y_span = (y_high - y_low) or 1.0
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    segments: list[list[str]] = []
    previous_x: float | None = None
    for x, y in values:
        if previous_x is None or x < previous_x:
            segments.append([])
        segments[-1].append(f"{PAD + (x - x_low) / x_span * inner_w:.1f},{PAD + inner_h - (y - y_low) / y_span * inner_h:.1f}")
        previous_x = x
    return Chart(
        name=name,
        segments=[" ".join(points) for points in segments],
        last=ys[-1],
        low=y_low,
        high=y_high,
        first_step=x_low,
        last_step=x_high,
        count=len(values),
    )
