"""The live progress of `refinery runs create --wait`: a tqdm bar when tqdm is installed, plain lines otherwise.

The bar is the whole run's fraction (the run page's figure, across the kind's stages); the label
says the status, which stage of how many, and the current stage's counts.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from .client import Run

BAR_FORMAT = "{desc} |{bar}| {percentage:3.0f}% [{elapsed}]"


def progress_label(run: Run) -> str:
    """`run 12 running · stage 2/3 generate 40/100`."""
    progress: dict[str, Any] = dict(run.get("progress") or {})
    parts = [f"run {run['id']} {run['status']}"]
    if progress.get("stage_number") and progress.get("stage_count"):
        parts.append(f"· stage {progress['stage_number']}/{progress['stage_count']}")
    elif run.get("stage"):
        parts.append("·")
    if run.get("stage"):
        parts.append(str(run["stage"]))
    if progress.get("total"):
        parts.append(f"{progress.get('done', 0)}/{progress['total']}")
    return " ".join(parts)


def progress_percent(run: Run) -> float | None:
    fraction = (run.get("progress") or {}).get("fraction")
    return None if fraction is None else round(100 * max(0.0, min(1.0, float(fraction))), 1)


class RunProgress:
    """Call with each state of the run read while waiting; `close()` when it is final."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self._bar: Any = None
        self._last_line = ""
        try:
            import tqdm  # noqa: F401

            self._has_tqdm = True
        except ImportError:
            self._has_tqdm = False

    def __call__(self, run: Run) -> None:
        label, percent = progress_label(run), progress_percent(run)
        if self._has_tqdm:
            from tqdm import tqdm

            if self._bar is None:
                self._bar = tqdm(total=100, file=self.stream, bar_format=BAR_FORMAT, dynamic_ncols=True, leave=True)
            self._bar.set_description_str(label, refresh=False)
            self._bar.n = percent or 0
            self._bar.refresh()
            return
        line = label if percent is None else f"{label} ({percent:.0f}%)"
        if line != self._last_line:
            print(line, file=self.stream, flush=True)
            self._last_line = line

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
