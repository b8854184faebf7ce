"""Progress reporter that writes a run's stage, counts, ETA and heartbeat to the database.

Writes are throttled to one per second (pipelines may call `advance` far more often), and a
background thread beats the heartbeat so a long model call is not mistaken for a dead worker; it
also writes what was reported but held back by the throttle, so the page never lags by more than
a beat.

A long model call reports its tokens as it decodes (`call_progress`, from the backend: see
`pipelines.llm.token_progress`); the count, its budget and an ETA from the rate since the call began
go to the run's `call_progress` field, which is emptied when the call ends or a stage starts.

Fencing: every write is filtered on this attempt being the run's current running one. When a write
finds it is not (the run was resumed or declared lost meanwhile), the reporter is fenced: the next
call from the pipeline (`advance`, `log`, `check_cancelled`, ...) raises AttemptFenced, the heartbeat
stops, and `check_fenced` (the job's file-write fence) refuses every further file.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import close_old_connections

from pipelines.errors import RunCancelled
from webapp.runs import services
from workers.database import retry_through_outage

if TYPE_CHECKING:
    from pipelines.common.result import PipelineResult

WRITE_INTERVAL_SECONDS = 1.0
HEARTBEAT_INTERVAL_SECONDS = 3.0
LOG_TAIL_LINES = 200


@dataclass
class ModelCall:
    """The model call in flight: its tokens so far, its budget, and when and where its count began."""

    tokens_done: int
    tokens_budget: int
    started: float
    tokens_at_start: int

    def detail(self) -> dict[str, Any]:
        """What the run page shows: the counts, and seconds left at the rate since the call began (None: no rate yet)."""
        generated = self.tokens_done - self.tokens_at_start
        elapsed = time.monotonic() - self.started
        eta = None
        if generated > 0 and elapsed > 0:
            eta = round(elapsed / generated * (self.tokens_budget - self.tokens_done), 1)
        return {"tokens_done": self.tokens_done, "tokens_budget": self.tokens_budget, "eta_seconds": eta}


class DbProgress:
    """Implements `pipelines.common.progress.Progress` for one run."""

    def __init__(self, run_id: int, attempt: int) -> None:
        self.run_id = run_id
        self.attempt = attempt
        self._stage = ""
        self._done = 0
        self._total = 0
        self._stage_started = time.monotonic()
        self._stage_done_at_start = 0
        self._last_write = 0.0
        self._dirty = False
        self._log: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        self._pending_metrics: list[dict[str, Any]] = []
        self._call: ModelCall | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._fenced = threading.Event()
        self._heartbeat = threading.Thread(target=self._beat, name=f"heartbeat-run-{run_id}", daemon=True)
        self.publisher: Callable[[PipelineResult], None] | None = None
        """Registers outputs a pipeline publishes before it ends (set by `workers/runner.py`)."""

    # Progress protocol -------------------------------------------------
    def stage(self, name: str, total: int, done: int = 0) -> None:
        self._raise_if_fenced()
        with self._lock:
            self._stage, self._total, self._done = name, total, done
            self._stage_started, self._stage_done_at_start = time.monotonic(), done
            self._call = None
        self.log(f"stage {name}: {done}/{total}")
        self.flush()

    def advance(self, count: int = 1) -> None:
        self._raise_if_fenced()
        with self._lock:
            self._done += count
            self._dirty = True
        self._maybe_write()

    def log(self, message: str) -> None:
        self._raise_if_fenced()
        with self._lock:
            self._log.append(f"{time.strftime('%H:%M:%S')} {message}")
            self._dirty = True
        self._maybe_write()

    def metrics(self, values: dict[str, Any]) -> None:
        self._raise_if_fenced()
        with self._lock:
            self._pending_metrics.append({"t": round(time.time(), 2), **values})
            self._dirty = True
        self._maybe_write()

    def call_progress(self, tokens_done: int, tokens_budget: int) -> None:
        """The model call in flight generated `tokens_done` of `tokens_budget` tokens; at the budget it ended.

        Called by the backend from the job's thread while it decodes, so a fenced attempt stops
        mid-call here. A count lower than the last one, or another budget, is a new call.
        """
        self._raise_if_fenced()
        with self._lock:
            call = self._call
            if tokens_budget <= 0 or tokens_done >= tokens_budget:
                self._call = None
            elif call is None or tokens_budget != call.tokens_budget or tokens_done < call.tokens_done:
                self._call = ModelCall(tokens_done, tokens_budget, time.monotonic(), tokens_done)
            else:
                call.tokens_done = tokens_done
            self._dirty = True
        self._maybe_write()

    def check_cancelled(self) -> None:
        """Between batches: stop if this attempt was fenced, or if the user asked to cancel (one query)."""
        self._raise_if_fenced()
        current, cancel_requested = retry_through_outage(
            lambda: services.run_attempt_state(run_id=self.run_id, attempt=self.attempt)
        )
        if not current:
            self._fence()
        if cancel_requested:
            self.flush()
            raise RunCancelled("cancelled by user")

    def publish(self, result: PipelineResult) -> None:
        """Register finished outputs now: they survive a crash of the rest of the run."""
        self._raise_if_fenced()
        if self.publisher is None:
            raise RuntimeError("DbProgress.publish needs a publisher (workers/runner.py sets one)")
        self.flush()
        self.publisher(result)

    def check_fenced(self) -> None:
        """Raise AttemptFenced unless this attempt is still the run's current running one (asks the database)."""
        self._raise_if_fenced()
        current, _ = retry_through_outage(lambda: services.run_attempt_state(run_id=self.run_id, attempt=self.attempt))
        if not current:
            self._fence()

    @property
    def fenced(self) -> bool:
        return self._fenced.is_set()

    # lifecycle ---------------------------------------------------------
    def start_heartbeat(self) -> None:
        self._heartbeat.start()

    def close(self) -> None:
        """Stop the heartbeat and write what is held back; a fenced attempt writes nothing."""
        self._stop.set()
        if self._heartbeat.is_alive():
            self._heartbeat.join(timeout=5)
        if not self.fenced:
            with contextlib.suppress(services.AttemptFenced):
                self.flush()

    def flush(self) -> None:
        """Write stage, counts, ETA, the model call's tokens, log and metrics now; raises AttemptFenced when the attempt is fenced."""
        self._raise_if_fenced()
        with self._lock:
            fields = {
                "stage": self._stage,
                "progress_done": self._done,
                "progress_total": self._total,
                "eta_seconds": self._eta(),
                "log_tail": "\n".join(self._log),
                "call_progress": self._call.detail() if self._call is not None else {},
            }
            metric_rows, self._pending_metrics = self._pending_metrics, []
            self._dirty = False
            self._last_write = time.monotonic()
        if not retry_through_outage(
            lambda: services.run_write_progress(run_id=self.run_id, attempt=self.attempt, **fields)
        ):
            self._fence()
        if metric_rows:
            try:
                retry_through_outage(
                    lambda: services.run_append_metrics(run_id=self.run_id, rows=metric_rows, attempt=self.attempt)
                )
            except services.AttemptFenced:
                self._fence()

    # internals ---------------------------------------------------------
    def _fence(self) -> None:
        self._fenced.set()
        self._stop.set()
        self._raise_if_fenced()

    def _raise_if_fenced(self) -> None:
        if self._fenced.is_set():
            raise services.AttemptFenced(
                f"run {self.run_id} attempt {self.attempt} is fenced: the run was resumed or declared lost; "
                "this attempt stops and writes nothing more"
            )

    def _maybe_write(self) -> None:
        if self._dirty and time.monotonic() - self._last_write >= WRITE_INTERVAL_SECONDS:
            self.flush()

    def _eta(self) -> float | None:
        finished_in_stage = self._done - self._stage_done_at_start
        remaining = self._total - self._done
        elapsed = time.monotonic() - self._stage_started
        if finished_in_stage <= 0 or remaining <= 0:
            return None if remaining > 0 else 0.0
        return round(elapsed / finished_in_stage * remaining, 1)

    def _beat(self) -> None:
        try:
            while not self._stop.wait(HEARTBEAT_INTERVAL_SECONDS):
                if self._dirty:
                    # A line logged just before a long model call would otherwise wait for the
                    # call to end; the flush carries the heartbeat with it.
                    self.flush()
                elif not retry_through_outage(lambda: services.run_heartbeat(run_id=self.run_id, attempt=self.attempt)):
                    self._fence()
        except services.AttemptFenced:
            pass  # the pipeline's next call raises it in the job's own thread
        finally:
            close_old_connections()
