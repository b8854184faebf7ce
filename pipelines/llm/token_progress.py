"""Tokens generated during one long backend call, reported while it runs so the run page moves before it returns.

A batched call can decode for minutes; the stage's count only moves when the call returns. A
backend that can see its decoding (the transformers backend, step by step; the OpenAI-compatible
one, request by request) counts generated tokens against the call's budget, sequences x
`max_tokens`, and hands both to a `TokenProgress` callback a few times a second. A sequence that
ends early counts its unused budget as done, so the count reaches the budget when the call ends.

The callback is the backend's `token_progress` attribute (None: nothing is counted), set by whoever
hands the backend to a pipeline (`report_tokens_to`; the worker's loader does it on every load), so
every method's calls report without a change in the method. The worker's `DbProgress.call_progress`
puts the count and an ETA on the run page and clears them when the count reaches the budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable

TokenProgress = Callable[[int, int], None]
"""`(tokens generated so far, token budget of the call)`: called with 0 when a call starts and with the
budget when it ends. It may raise (a fenced worker attempt does): the call then stops."""

REPORT_INTERVAL_SECONDS = 0.25
"""At most four reports a second: a callback may write to a database (throttled again there)."""


class CallTokens:
    """One call's token count against its budget, passed to `report` when the call starts, at most every
    `interval` seconds while it runs, and when it ends."""

    def __init__(self, report: TokenProgress, budget: int, interval: float | None = None) -> None:
        self.report = report
        self.budget = max(0, budget)
        self.interval = REPORT_INTERVAL_SECONDS if interval is None else interval
        self.finished = 0
        """Tokens of the parts of the call that ended (a batch, a request), counted at their whole budget."""
        self._last_report = time.monotonic()
        report(0, self.budget)

    def due(self) -> bool:
        """Whether a report now would be past the throttle; cheap, so a decoding step may ask every time."""
        return time.monotonic() - self._last_report >= self.interval

    def running(self, in_flight: int) -> None:
        """`in_flight` tokens were generated in the part now running; reported when due."""
        if self.due():
            self._send(self.finished + in_flight)

    def part_finished(self, part_budget: int) -> None:
        """A part of the call (a batch, a request) ended: its whole budget counts as done; reported when due."""
        self.finished += part_budget
        if self.due():
            self._send(self.finished)

    def end(self) -> None:
        """The call returned: report the budget, which tells the receiver the call is over."""
        self._send(self.budget)

    def _send(self, tokens: int) -> None:
        self._last_report = time.monotonic()
        self.report(min(tokens, self.budget), self.budget)


def count_tokens(report: TokenProgress | None, budget: int) -> CallTokens | None:
    """A `CallTokens` for one call of `budget` tokens, or None when nobody listens (then nothing is counted)."""
    return CallTokens(report, budget) if report is not None else None


def report_tokens_to(backend: object, progress: object) -> None:
    """Have `backend`'s calls report their tokens to `progress.call_progress`.

    Backends without the hook (vLLM's offline engine returns a batch at once) and progress objects
    without the method (a test's own) are left alone: the call then shows only when it returns.
    """
    call_progress = getattr(progress, "call_progress", None)
    if hasattr(backend, "token_progress") and callable(call_progress):
        backend.token_progress = call_progress  # type: ignore[attr-defined]
