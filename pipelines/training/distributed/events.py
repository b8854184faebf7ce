"""How a process group reports to the worker that launched it: rank 0's `Progress` as JSON lines in a file,
replayed into the worker's real `Progress`; cancel as a file every rank agrees on.

Each line is one call: `{"type": "stage", "name", "total", "done"}`, `{"type": "advance", "count"}`,
`{"type": "log", "message"}`, `{"type": "metrics", "values"}`, and at the end `{"type": "result", "result"}`
(the `TrainingResult`). A line is written with one `write` and flushed, so a reader that takes only
lines ending in a newline never sees half of one. Only this module's `GroupProgress.check_cancelled`
imports torch (to agree across ranks), and only once the process group exists.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import RunCancelled

if TYPE_CHECKING:
    from pipelines.common.progress import Progress
    from pipelines.common.result import PipelineResult

EVENT_TYPES = ("stage", "advance", "log", "metrics", "result")


class GroupProgress:
    """`Progress` for one rank of a group: rank 0 writes the events, every rank logs to its own output.

    `check_cancelled` answers the same on every rank: once the process group exists, the ranks take
    the maximum of what each read from the cancel file (one tiny all-reduce per step), so they all stop
    at the same step end and save one checkpoint together instead of one rank waiting forever in a
    collective the others left.
    """

    def __init__(self, events_path: Path, cancel_path: Path, rank: int) -> None:
        self.events_path = Path(events_path)
        self.cancel_path = Path(cancel_path)
        self.rank = rank
        self._events = None
        if rank == 0:
            self.events_path.parent.mkdir(parents=True, exist_ok=True)
            self._events = self.events_path.open("a", encoding="utf-8")

    def stage(self, name: str, total: int, done: int = 0) -> None:
        self._print(f"stage {name}: {done}/{total}")
        self._write({"type": "stage", "name": name, "total": total, "done": done})

    def advance(self, count: int = 1) -> None:
        self._write({"type": "advance", "count": count})

    def log(self, message: str) -> None:
        self._print(message)
        self._write({"type": "log", "message": message})

    def metrics(self, values: dict[str, Any]) -> None:
        self._print(f"metrics {json.dumps(values, default=str)}")
        self._write({"type": "metrics", "values": values})

    def result(self, values: dict[str, Any]) -> None:
        """Rank 0's last event: the `TrainingResult` as a dict (the supervisor also finds it in final/)."""
        self._write({"type": "result", "result": values})

    def check_cancelled(self) -> None:
        requested = self.cancel_path.exists()
        if _agreed_across_ranks(requested) if _group_ready() else requested:
            raise RunCancelled("cancelled by user")

    def publish(self, result: PipelineResult) -> None:
        raise RuntimeError(
            "a rank of a distributed training cannot publish outputs early; the supervising worker "
            "registers the trained model when the group has finished"
        )

    def close(self) -> None:
        if self._events is not None:
            self._events.close()
            self._events = None

    def _write(self, event: dict[str, Any]) -> None:
        if self._events is not None:
            self._events.write(json.dumps(event, default=str) + "\n")
            self._events.flush()

    def _print(self, message: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} [rank {self.rank}] {message}", file=sys.stdout, flush=True)


def _group_ready() -> bool:
    if "torch" not in sys.modules:
        return False
    import torch.distributed as distributed

    return distributed.is_available() and distributed.is_initialized() and distributed.get_world_size() > 1


def _agreed_across_ranks(requested: bool) -> bool:
    """True on every rank when any rank read the cancel file (all-reduce MAX on the group's backend)."""
    import torch
    import torch.distributed as distributed

    device = torch.device("cpu")
    if distributed.get_backend() == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    flag = torch.tensor([1 if requested else 0], dtype=torch.int32, device=device)
    distributed.all_reduce(flag, op=distributed.ReduceOp.MAX)
    return bool(flag.item())


def follow_events(path: Path, progress: Progress, offset: int = 0) -> int:
    """Replay the complete lines after byte `offset` of rank 0's events into `progress`; the new offset.

    A line still being written (no newline yet) waits for the next call. The "result" event is not
    replayed (the supervisor reads the result from the run store); an unknown type is logged, not dropped.
    """
    path = Path(path)
    if not path.exists():
        return offset
    with path.open("rb") as handle:
        handle.seek(offset)
        data = handle.read()
    end = data.rfind(b"\n")
    if end < 0:
        return offset
    for line in data[: end + 1].decode("utf-8").splitlines():
        if line.strip():
            replay_event(json.loads(line), progress)
    return offset + end + 1


def replay_event(event: dict[str, Any], progress: Progress) -> None:
    """One event into `progress`, as if rank 0 had called it in this process."""
    kind = event.get("type")
    if kind == "stage":
        progress.stage(event["name"], total=event["total"], done=event.get("done", 0))
    elif kind == "advance":
        progress.advance(event.get("count", 1))
    elif kind == "log":
        progress.log(event["message"])
    elif kind == "metrics":
        progress.metrics(event["values"])
    elif kind != "result":
        progress.log(f"unknown event from rank 0 ignored: {json.dumps(event)[:200]}")
