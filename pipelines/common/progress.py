"""The progress contract between a pipeline and whoever runs it (a worker, a test, a script)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from pipelines.errors import RunCancelled

if TYPE_CHECKING:
    from pipelines.common.result import PipelineResult


class Progress(Protocol):
    """What a pipeline reports while it works.

    Pipelines call `stage` when a stage starts, `advance` after each finished batch, and
    `check_cancelled` between batches so a cancel lands within one batch. Backends call
    `call_progress` during a long model call (`pipelines.llm.token_progress`), not pipelines.
    """

    def stage(self, name: str, total: int, done: int = 0) -> None: ...

    def advance(self, count: int = 1) -> None: ...

    def log(self, message: str) -> None: ...

    def metrics(self, values: dict[str, Any]) -> None: ...

    def check_cancelled(self) -> None: ...

    def publish(self, result: PipelineResult) -> None:
        """Hand over outputs finished before the end (an iteration's model), so a crash cannot lose them."""
        ...

    def call_progress(self, tokens_done: int, tokens_budget: int) -> None:
        """Tokens generated so far by the model call in flight, of its budget; `tokens_done == tokens_budget`: it ended.

        Within a stage and a batch: the stage's counts only move when the call returns. Optional: a
        reporter without it (a test's own) is never called (`report_tokens_to` checks).
        """
        return None


class RecordingProgress:
    """Progress that records into memory; for tests and plain scripts."""

    def __init__(self, cancel_after: int | None = None) -> None:
        self.stages: list[tuple[str, int]] = []
        self.done_by_stage: dict[str, int] = {}
        """Items finished in each stage, kept after the next stage starts (tests read it at the end)."""
        self.done = 0
        self.total = 0
        self.messages: list[str] = []
        self.metric_rows: list[dict[str, Any]] = []
        self.published: list[PipelineResult] = []
        self.call_reports: list[tuple[int, int]] = []
        """Every `call_progress(tokens_done, tokens_budget)`, in order."""
        self._cancel_after = cancel_after

    def stage(self, name: str, total: int, done: int = 0) -> None:
        self.stages.append((name, total))
        self.total, self.done = total, done
        self.done_by_stage[name] = done

    def advance(self, count: int = 1) -> None:
        self.done += count
        if self.stages:
            self.done_by_stage[self.stages[-1][0]] = self.done

    def log(self, message: str) -> None:
        self.messages.append(message)

    def metrics(self, values: dict[str, Any]) -> None:
        self.metric_rows.append(dict(values))

    def publish(self, result: PipelineResult) -> None:
        self.published.append(result)

    def call_progress(self, tokens_done: int, tokens_budget: int) -> None:
        self.call_reports.append((tokens_done, tokens_budget))

    def check_cancelled(self) -> None:
        if self._cancel_after is not None and self.done >= self._cancel_after:
            raise RunCancelled(f"cancelled after {self.done} items")


class StagePrefix:
    """Passes everything through to `inner`, naming each stage with a prefix (e.g. "iter 1 · train").

    Multi-step methods (SPIN's iterations) reuse whole pipelines as steps; the prefix keeps the run
    page's stage telling which step the counts belong to.
    """

    def __init__(self, inner: Progress, prefix: str) -> None:
        self.inner = inner
        self.prefix = prefix

    def stage(self, name: str, total: int, done: int = 0) -> None:
        self.inner.stage(f"{self.prefix}{name}", total, done)

    def advance(self, count: int = 1) -> None:
        self.inner.advance(count)

    def log(self, message: str) -> None:
        self.inner.log(f"{self.prefix}{message}")

    def metrics(self, values: dict[str, Any]) -> None:
        self.inner.metrics(values)

    def check_cancelled(self) -> None:
        self.inner.check_cancelled()

    def publish(self, result: PipelineResult) -> None:
        self.inner.publish(result)

    def call_progress(self, tokens_done: int, tokens_budget: int) -> None:
        call_progress = getattr(self.inner, "call_progress", None)
        if callable(call_progress):
            call_progress(tokens_done, tokens_budget)


class StageAndMetricsPrefix(StagePrefix):
    """A `StagePrefix` that also names each metric after its stage ("rl/objective/kl"), so a run that trains
    several models (ALMoST's reward model, SFT and RL policies) draws each one's curves on their own charts."""

    def __init__(self, inner: Progress, prefix: str, metrics_prefix: str) -> None:
        super().__init__(inner, prefix)
        self.metrics_prefix = metrics_prefix

    def metrics(self, values: dict[str, Any]) -> None:
        self.inner.metrics(
            {name if name == "step" else f"{self.metrics_prefix}{name}": value for name, value in values.items()}
        )
