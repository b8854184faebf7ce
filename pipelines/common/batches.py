"""Work done batch by batch, one atomic file per finished batch, so a rerun resumes where it stopped.

Generation and judging are long; a worker can die or the user can stop the run at any point. Each
finished batch is written as one file through `RunStore` (a file that exists is complete), so a
rerun lists the files it finds, reports them as done, and does only the batches that are missing.
The caller supplies what one batch produces; this module owns the bookkeeping every method used
to copy: splitting, finding finished batches, the progress stage, the "resuming" log, the
cancellation check between batches, writing, and advancing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pipelines.common.progress import Progress
from pipelines.common.store import RunStore

Item = TypeVar("Item")


def batch_file_name(index: int, folder: str = "batches") -> str:
    """The usual name of batch `index`'s file: `batches/batch-000003.jsonl`."""
    return f"{folder}/batch-{index:06d}.jsonl"


@dataclass(frozen=True)
class BatchedRun:
    """What `run_in_batches` did: every batch's file name in order, and how much this call produced."""

    batch_names: list[str]
    """All batches' files, finished earlier or now, in order (what an export concatenates)."""
    batches_generated: int
    """Batches produced by this call; the others were found finished on disk (resume)."""
    items_generated: int
    """Items in the batches produced by this call."""


def split_in_batches(items: Sequence[Item], batch_size: int) -> list[list[Item]]:
    """Consecutive batches of `batch_size` items, the last one shorter: the split a resume relies on."""
    return [list(items[start : start + batch_size]) for start in range(0, len(items), batch_size)]


def run_in_batches(
    items: Sequence[Item],
    batch_size: int,
    produce: Callable[[int, list[Item]], Iterable[dict[str, Any]]],
    *,
    store: RunStore,
    progress: Progress,
    stage: str,
    batch_name: Callable[[int], str] = batch_file_name,
) -> BatchedRun:
    """Run `produce(index, batch)` for each batch without a file yet and write its rows as that file.

    The progress stage `stage` counts items; finished batches count as done from the start. A
    cancellation is checked before each batch, so a stopped run loses at most the batch in flight.
    `produce` may load its model on first call: a run with every batch on disk then loads none.
    """
    batches = split_in_batches(items, batch_size)
    names = [batch_name(index) for index in range(len(batches))]
    finished = {index for index, name in enumerate(names) if store.exists(name)}
    progress.stage(stage, total=len(items), done=sum(len(batches[index]) for index in finished))
    if finished:
        progress.log(f"resuming: {len(finished)} of {len(batches)} batches already finished")
    batches_generated = items_generated = 0
    for index, batch in enumerate(batches):
        if index in finished:
            continue
        progress.check_cancelled()
        store.write_jsonl(produce(index, batch), names[index])
        batches_generated += 1
        items_generated += len(batch)
        progress.advance(len(batch))
    return BatchedRun(batch_names=names, batches_generated=batches_generated, items_generated=items_generated)


def report_batch_speed(progress: Progress, index: int, tokens: int, started: float) -> None:
    """Report batch `index`'s new tokens per second since `started` (a `time.monotonic()`): the run page's speed chart."""
    elapsed = time.monotonic() - started
    progress.metrics({"batch": index, "tokens_per_second": round(tokens / elapsed, 2) if elapsed else 0.0})
