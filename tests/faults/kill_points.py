"""Killing a worker at a chosen finished file: the kill point is drawn from a printed seed, the worker frozen at once.

Shared by the SPIN and AugCon killed-worker tests. Waiting for the k-th finished file and then
SIGSTOPping the worker's process group means the kill lands with work left on any machine speed:
a fast machine cannot finish the run between "the file is there" and the SIGKILL.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

from tests.fixtures.services import WorkerProcess
from webapp.runs.models import PipelineRun


def fault_seed() -> int:
    """The seed that picks the kill point: $REFINERY_FAULT_SEED to replay a failure, else a fresh one."""
    given = os.environ.get("REFINERY_FAULT_SEED", "")
    return int(given) if given else random.SystemRandom().randrange(1_000_000)


def pause_when_file_appears(
    run: PipelineRun, worker: WorkerProcess, path: Path, timeout: float, what: str
) -> PipelineRun:
    """SIGSTOP the worker the moment `path` exists; fail at once if the run ends first (waiting cannot help)."""
    deadline = time.monotonic() + timeout
    next_database_check = 0.0
    while time.monotonic() < deadline:
        if path.exists():
            worker.pause()
            run.refresh_from_db()
            return run
        if time.monotonic() >= next_database_check:
            run.refresh_from_db()
            if not run.is_active:
                raise AssertionError(
                    f"run {run.pk} ended {run.status} before {what}: {run.error}\n{worker.log_text()[-3000:]}"
                )
            next_database_check = time.monotonic() + 0.25
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; run {run.pk} is {run.status}")


def file_times(directory: Path, names: list[str]) -> dict[str, int]:
    """The modification time of each of `names` that exists: a finished file rewritten on resume changes it."""
    return {name: (directory / name).stat().st_mtime_ns for name in names if (directory / name).exists()}
