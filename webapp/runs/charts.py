"""Line charts of runs' metric time series (loss, learning rate, rewards ...): the numbers a chart draws.

The server decides what is drawn (which series, in which order, their units, which axis is
logarithmic, the thinned points, each run's and each training restart's line); the browser draws it
with uPlot (`static/vendor/uplot/`, driven by `static/js/charts.js`), which gives axes with tick
labels, the values under the cursor, a log scale and smoothing. The run page's live partial
re-renders the numbers every second and the script updates the drawn charts in place.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
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
    "held_out/reward_mean",
    "held_out/kl",
    "held_out/length_mean",
    "objective/scores",
    "objective/kl",
    "reward",
    "kl",
    "completions/mean_length",
)
NOT_SERIES = {"step", "t", "epoch", "batch", "total_flos"}
MAX_POINTS = 400
"""Points kept per line: enough for the eye at a chart's width, small enough for a 1 s refresh."""

# The y axis's unit by metric name (the part after the last "/", so "eval/loss" reads as "loss");
# a name under "logps/" (TRL's log-probabilities of the chosen and rejected answers) is in nats.
UNITS = {
    "loss": "nats",
    "learning_rate": "per step",
    "grad_norm": "L2 norm",
    "margins": "reward",
    "chosen": "reward",
    "rejected": "reward",
    "accuracies": "share of pairs",
    "accuracy": "share of pairs",
    "kl": "nats",
    "entropy": "nats",
    "reward": "reward",
    "reward_mean": "reward",
    "reward_std": "reward",
    "scores": "reward",
    "rlhf_reward": "reward",
    "non_score_reward": "reward",
    "length_mean": "tokens",
    "mean_length": "tokens",
    "tokens_per_second": "tokens / s",
    "runtime": "s",
    "samples_per_second": "samples / s",
    "steps_per_second": "steps / s",
}
# Metrics read on a log axis by default: a learning rate spans orders of magnitude (warm-up, decay),
# and on a linear axis printed to four decimals it read "0.0000".
LOG_SCALE_METRICS = {"learning_rate"}


@dataclass(frozen=True)
class Line:
    """One drawn line: one run's values of one metric, or one training restart of it."""

    label: str
    points: list[tuple[float, float]]


@dataclass(frozen=True)
class Chart:
    """One metric against the step, as one or more lines on a shared x axis."""

    name: str
    unit: str
    x_label: str
    log_scale: bool
    """Drawn on a log axis at first (the reader can switch); only offered when some value is > 0."""
    lines: list[Line] = field(default_factory=list)

    @property
    def last(self) -> float:
        return self.lines[-1].points[-1][1]

    @property
    def last_step(self) -> float:
        return self.lines[-1].points[-1][0]

    @property
    def low(self) -> float:
        return min(y for line in self.lines for _, y in line.points)

    @property
    def high(self) -> float:
        return max(y for line in self.lines for _, y in line.points)

    @property
    def count(self) -> int:
        return sum(len(line.points) for line in self.lines)

    @property
    def non_positive_count(self) -> int:
        """Values a log axis cannot place (zero at the start of a warm-up): the page says how many."""
        return sum(1 for line in self.lines for _, y in line.points if y <= 0)

    def aligned(self) -> dict[str, Any]:
        """uPlot's data shape: one sorted x array and, per line, its y at each x (None where it has none)."""
        xs = sorted({x for line in self.lines for x, _ in line.points})
        column = {x: index for index, x in enumerate(xs)}
        columns: list[list[float | None]] = []
        for line in self.lines:
            values: list[float | None] = [None] * len(xs)
            for x, y in line.points:
                values[column[x]] = y
            columns.append(values)
        return {"x": xs, "lines": [{"label": line.label, "y": y} for line, y in zip(self.lines, columns, strict=True)]}

    def payload(self) -> dict[str, Any]:
        """What `static/js/charts.js` draws, as one JSON object."""
        return {
            "name": self.name,
            "unit": self.unit,
            "x_label": self.x_label,
            "log_scale": self.log_scale,
            "non_positive": self.non_positive_count,
            **self.aligned(),
        }


def metric_charts(rows: list[dict[str, Any]]) -> list[Chart]:
    """A chart per numeric metric of one run; a step that goes back (SPIN's next iteration) starts a new line."""
    return compare_charts([("", rows)])


def compare_charts(runs: list[tuple[str, list[dict[str, Any]]]]) -> list[Chart]:
    """A chart per metric that any run logged, with a line per run (labelled) and per training restart."""
    lines_by_metric: dict[str, list[Line]] = {}
    x_labels: dict[str, str] = {}
    for run_label, rows in runs:
        for name, (x_label, segments) in _series(rows).items():
            x_labels.setdefault(name, x_label)
            for number, points in enumerate(segments, start=1):
                label = run_label or name
                if len(segments) > 1:
                    label = f"{label} · training {number}"
                lines_by_metric.setdefault(name, []).append(Line(label=label, points=_thinned(points)))
    names = sorted(lines_by_metric, key=_order)
    return [_chart(name, x_labels[name], lines_by_metric[name]) for name in names]


def charts_json(charts: list[Chart]) -> str:
    """The charts' payloads for a `data-charts` attribute (the template escapes it)."""
    return json.dumps([chart.payload() for chart in charts], separators=(",", ":"), allow_nan=False)


def format_value(value: float) -> str:
    """A number as the chart's captions print it: 4 significant digits, powers of ten when very small or large.

    `static/js/charts.js` formats tick labels and hover values by the same rule (`formatValue`).
    """
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude < 1e-3 or magnitude >= 1e5:
        mantissa, exponent = f"{value:.3e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{int(exponent)}"
    return f"{float(f'{value:.4g}'):f}".rstrip("0").rstrip(".")


def _series(rows: list[dict[str, Any]]) -> dict[str, tuple[str, list[list[tuple[float, float]]]]]:
    """Per metric: the x axis's name and its points, split where the step goes back."""
    series: dict[str, tuple[str, list[list[tuple[float, float]]]]] = {}
    for index, row in enumerate(rows):
        x_label = "step" if "step" in row else "batch" if "batch" in row else "row"
        x = row.get("step", row.get("batch", index))
        if not _is_number(x):
            continue
        for name, value in row.items():
            if name in NOT_SERIES or not _is_number(value):
                continue
            _, segments = series.setdefault(name, (x_label, [[]]))
            if segments[-1] and float(x) < segments[-1][-1][0]:
                segments.append([])
            segments[-1].append((float(x), float(value)))
    return series


def _chart(name: str, x_label: str, lines: list[Line]) -> Chart:
    short_name = name.rsplit("/", 1)[-1]
    has_positive = any(y > 0 for line in lines for _, y in line.points)
    return Chart(
        name=name,
        unit="log-probability (nats)" if "logps" in name.split("/")[:-1] else UNITS.get(short_name, ""),
        x_label=x_label,
        log_scale=short_name in LOG_SCALE_METRICS and has_positive,
        lines=lines,
    )


def _thinned(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Every k-th point so at most about MAX_POINTS remain, always keeping the latest one."""
    if len(points) <= MAX_POINTS:
        return points
    stride = math.ceil(len(points) / MAX_POINTS)
    return points[::stride] + ([points[-1]] if (len(points) - 1) % stride else [])


def _order(name: str) -> tuple[int, str]:
    return (PREFERRED_ORDER.index(name) if name in PREFERRED_ORDER else len(PREFERRED_ORDER), name)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
