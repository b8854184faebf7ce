"""The live progress of `refinery runs create --wait`: a tqdm bar when tqdm is installed, plain lines otherwise."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from .client import Run


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
        progress = run.get("progress") or {"done": 0, "total": 0}
        done, total = int(progress.get("done") or 0), int(progress.get("total") or 0)
        label = f"run {run['id']} {run['status']}" + (f" · {run['stage']}" if run.get("stage") else "")
        if self._has_tqdm:
            self._draw_bar(label, done, total)
        else:
            line = f"{label}: {done}/{total}" if total else label
            if line != self._last_line:
                print(line, file=self.stream, flush=True)
                self._last_line = line

    def _draw_bar(self, label: str, done: int, total: int) -> None:
        from tqdm import tqdm

        if self._bar is None:
            self._bar = tqdm(total=total or None, file=self.stream, unit="item", dynamic_ncols=True, leave=True)
        self._bar.set_description_str(label, refresh=False)
        if total and self._bar.total != total:  # a new stage counts a new total
            self._bar.reset(total=total)
        self._bar.n = done
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
