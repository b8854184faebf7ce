"""What the fault tests share: a tiny-model entry, prompt sets, generate runs and reading their artifacts."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.fixtures.runs import wait_for_run
from tests.fixtures.services import WorkerProcess
from webapp.generate import services as generate_services
from webapp.library.models import SeedPrompt, SeedPromptSet
from webapp.registry.models import ModelEntry
from webapp.runs import services
from webapp.runs.models import PipelineRun


def tiny_model_entry(tiny_model_dir: Path) -> ModelEntry:
    return ModelEntry.objects.create(name="tiny", source=ModelEntry.Source.LOCAL, path=str(tiny_model_dir))


def prompt_set_of(count: int, name: str = "") -> SeedPromptSet:
    prompt_set = SeedPromptSet.objects.create(name=name or f"prompts-{count}", prompt_count=count)
    SeedPrompt.objects.bulk_create(
        SeedPrompt(prompt_set=prompt_set, position=index, text=f"Question {index}: what is {index} + {index}?")
        for index in range(count)
    )
    return prompt_set


def start_generate_run(
    user: Any, model: ModelEntry, prompt_set: SeedPromptSet, *, batch_size: int, max_tokens: int, name: str = "fault"
) -> PipelineRun:
    config = generate_services.generate_config_build(
        model=model,
        prompt_set=prompt_set,
        n=1,
        max_tokens=max_tokens,
        temperature=0.7,
        top_p=0.95,
        seed=1,
        batch_size=batch_size,
    )
    return services.run_create(user=user, kind="generate", config=config, name=name)


def artifact_rows(run: PipelineRun, name: str) -> list[dict[str, Any]]:
    artifact = run.artifacts.get(name=name)
    return [json.loads(line) for line in Path(artifact.jsonl_path).read_text(encoding="utf-8").splitlines() if line]


def prompt_ids_of(rows: list[dict[str, Any]]) -> list[str]:
    return [row["prompt_id"] for row in rows]


def assert_every_prompt_once(rows: list[dict[str, Any]], prompt_count: int) -> None:
    """The artifact answers prompts p000000..p<count-1> exactly once each, in order."""
    ids = prompt_ids_of(rows)
    duplicates = sorted({prompt_id for prompt_id in ids if ids.count(prompt_id) > 1})
    assert not duplicates, f"prompts answered more than once: {duplicates}"
    assert ids == [f"p{index:06d}" for index in range(prompt_count)], f"{len(ids)} rows, ids {ids}"


WORKER_SLICE_SECONDS = 0.02
"""How long the worker runs between two checks while it is stepped: far less than one batch of the tiny model."""


def batch_files(directory: Path) -> list[Path]:
    """Finished batch files under `directory` (any depth); the store's temp files start with a dot."""
    return sorted(directory.rglob("batch-*.jsonl")) if directory.exists() else []


def step_worker_until(
    worker: WorkerProcess,
    run: PipelineRun,
    done: Callable[[], bool],
    *,
    what: str,
    timeout: float = 120.0,
    rest_seconds: float = 0.0,
    slice_seconds: float = WORKER_SLICE_SECONDS,
) -> None:
    """Run a SIGSTOPped worker in short slices (SIGCONT, a slice, SIGSTOP) until `done()`; leave it stopped.

    Why: a fault test must inject its fault while the run still has work left, and the tiny model can
    finish a whole run between two polls of a fast machine (or of a loaded one, where the test
    process waits for the CPU). A stopped worker cannot move on while we look, and between two
    looks it runs one slice, less than the remaining batches take; `rest_seconds` between slices
    slows it further (a time-based thread, the liveness renewal, still runs at its pace). Fails at
    once if the run ends meanwhile.
    """
    deadline = time.monotonic() + timeout
    worker.pause()
    while not done():
        run.refresh_from_db()
        if not run.is_active:
            raise AssertionError(
                f"run {run.pk} ended {run.status} at {run.stage} {run.progress_done}/{run.progress_total} while "
                f"stepping its worker until {what}: {run.error}\n{worker.log_text()[-3000:]}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s stepping the worker until {what}")
        if not worker.running:
            raise AssertionError(f"the worker exited while stepping until {what}:\n{worker.log_text()[-3000:]}")
        worker.resume()
        time.sleep(slice_seconds)
        worker.pause()
        time.sleep(rest_seconds)


def kill_after_batches(
    worker: WorkerProcess, run: PipelineRun, batch_dir: Path, *, total_batches: int
) -> tuple[dict[Path, int], str]:
    """SIGKILL `worker` at a random point part way through `run`: after a few batch files and a few slices more.

    The worker must be paused before the run is queued (so the run cannot get ahead of the stepping).
    Returns the batch files finished before the kill with their modification times (a resumed run
    must not write them again) and the kill point, a sentence every failure prints for a replay.
    """
    chooser = random.Random()
    batches_before_kill = chooser.randint(1, 4)
    slices_into_next_batch = chooser.randint(0, 3)
    kill_point = f"killed after {batches_before_kill} batches + {slices_into_next_batch} worker slices"
    step_worker_until(
        worker,
        run,
        lambda: len(batch_files(batch_dir)) >= batches_before_kill,
        what=f"{batches_before_kill} batches are finished",
    )
    for _ in range(slices_into_next_batch):
        worker.resume()
        time.sleep(WORKER_SLICE_SECONDS)
        worker.pause()
    worker.kill()
    finished_before_kill = {path: path.stat().st_mtime_ns for path in batch_files(batch_dir)}
    assert batches_before_kill <= len(finished_before_kill) < total_batches, kill_point
    return finished_before_kill, kill_point


def resume_once_lost(
    run: PipelineRun,
    start_worker: Callable[[], WorkerProcess],
    kill_point: str,
    *,
    lost_within: float,
    finish_within: float,
) -> tuple[PipelineRun, WorkerProcess]:
    """Wait for the killed run to be declared lost, start a fresh worker, resume the run and wait for its end.

    Returns the finished run and the new worker (whose log a failure shows).
    """
    run = wait_for_run(
        run, lambda r: r.status == PipelineRun.Status.LOST, lost_within, f"the run to be lost ({kill_point})"
    )
    worker = start_worker()
    services.run_resume(run=run)
    run = wait_for_run(run, timeout=finish_within, what=f"the resumed run to finish ({kill_point})")
    return run, worker
