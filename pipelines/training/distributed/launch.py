"""Launch a training job as a torchrun process group on this host and supervise it from the worker.

The worker's job calls `launch_local`; it starts `torchrun --standalone` in a session of its own, replays
rank 0's events into the run's `Progress`, turns a cancel into the cancel file (every rank saves a
checkpoint at the same step end and stops), and when the group ends reads the result from the run
store. When a rank fails, torchrun stops the others; whatever is still running of the group is then
killed (`os.killpg` and every descendant found by psutil), so nothing is left behind, and the error
names the rank that failed first with its last log lines.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from pipelines.common.store import RunStore
from pipelines.errors import PipelineError, RunCancelled
from pipelines.training.distributed.events import follow_events
from pipelines.training.distributed.job import DistributedJob
from pipelines.training.distributed.rank import read_outcome

if TYPE_CHECKING:
    from pipelines.common.progress import Progress
    from pipelines.training.result import TrainingResult

REPOSITORY_ROOT = Path(__file__).resolve().parents[3]
LAUNCHER_LOG = "launcher.log"
LAST_LOG_LINES = 20
STOP_GRACE_SECONDS = 10.0
"""How long the group has to end after SIGTERM before it is killed."""
_ROOT_CAUSE = re.compile(r"Root Cause.*?rank\s*:\s*(\d+).*?exitcode\s*:\s*(-?\d+)", re.DOTALL)


class DistributedTrainingFailed(PipelineError):
    """A rank of the group failed; the message names it, its exit and its last log lines."""

    def __init__(self, rank: int | None, message: str, last_lines: list[str]) -> None:
        self.rank = rank
        self.last_lines = last_lines
        tail = "\n".join(last_lines)
        super().__init__(f"{message}; its last log lines:\n{tail}" if last_lines else message)


def torchrun_command(job_path: Path, processes: int) -> list[str]:
    """torchrun (as `python -m torch.distributed.run`, this interpreter's) on one host, no restarts."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(processes),
        "--max_restarts",
        "0",
        "-m",
        "pipelines.training.distributed.rank",
        str(job_path),
    ]


def launch_local(
    job: DistributedJob,
    processes: int,
    devices: list[str] | None,
    progress: Progress,
    poll_seconds: float = 1.0,
) -> TrainingResult:
    """Train `job` on `processes` ranks of this host (on `devices`, CUDA ids, when given); the result.

    Raises RunCancelled when a cancel stopped it (after the ranks saved their checkpoint) and
    DistributedTrainingFailed when a rank failed; in every case no process of the group is left.
    """
    from pipelines.training.saving import finished_result

    if processes < 1:
        raise PipelineError(f"a process group needs at least 1 process, got {processes}")
    if devices is not None and len(devices) != processes:
        raise PipelineError(f"{processes} processes need {processes} devices, got {len(devices)}: {devices}")
    job.group_dir.mkdir(parents=True, exist_ok=True)
    for stale in (job.events_path, job.cancel_path):
        stale.unlink(missing_ok=True)
    for rank in range(processes):
        job.rank_log_path(rank).with_suffix(".outcome.json").unlink(missing_ok=True)
    job_path = job.write()
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPOSITORY_ROOT), environment.get("PYTHONPATH")]))
    if devices is not None:
        environment["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
    where = f"CUDA devices {','.join(devices)}" if devices else "CPU"
    progress.log(f"launching {processes} training processes with torchrun on {where}; rank logs in {job.group_dir}")
    launcher_log_path = job.group_dir / LAUNCHER_LOG
    with launcher_log_path.open("ab") as launcher_log:
        group = subprocess.Popen(
            torchrun_command(job_path, processes),
            cwd=REPOSITORY_ROOT,
            env=environment,
            stdout=launcher_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    members: dict[int, psutil.Process] = {}
    cancel: RunCancelled | None = None
    offset = 0
    try:
        while group.poll() is None:
            _remember_members(group.pid, members)
            offset = follow_events(job.events_path, progress, offset)
            if cancel is None:
                try:
                    progress.check_cancelled()
                except RunCancelled as error:
                    cancel = error
                    job.cancel_path.touch()
                    progress.log("cancel asked: every rank saves a checkpoint at its next step end, then stops")
            time.sleep(poll_seconds)
        follow_events(job.events_path, progress, offset)
    finally:
        stop_group(group, members)
    return _outcome(job, processes, group.returncode, cancel, finished_result(RunStore(job.run_dir)))


def die_with_parent() -> None:
    """Linux: have the kernel SIGKILL this process when the process that started it dies.

    The group runs in a session of its own (so stopping it cannot hit the worker), which also means a
    worker killed outright would not take it along: torchrun gets this from the launcher, and every
    rank from torchrun (`rank.main`), so a killed worker leaves no rank training on. Elsewhere a no-op.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    set_parent_death_signal = 1  # PR_SET_PDEATHSIG
    ctypes.CDLL(None, use_errno=True).prctl(set_parent_death_signal, signal.SIGKILL, 0, 0, 0)


def _remember_members(launcher_pid: int, members: dict[int, psutil.Process]) -> None:
    """Note every process of the group now, so one that outlives the launcher can still be stopped."""
    with contextlib.suppress(psutil.Error):
        launcher = psutil.Process(launcher_pid)
        members.setdefault(launcher.pid, launcher)
        for child in launcher.children(recursive=True):
            members.setdefault(child.pid, child)


def stop_group(group: subprocess.Popen[bytes], members: dict[int, psutil.Process]) -> None:
    """End the launcher's session (SIGTERM, then SIGKILL after a grace) and every member still alive; wait for them."""
    _remember_members(group.pid, members)
    alive = [member for member in members.values() if _running(member)]
    if group.poll() is None or alive:
        _signal_session(group.pid, signal.SIGTERM)
        for member in alive:
            with contextlib.suppress(psutil.Error):
                member.terminate()
        _, alive = psutil.wait_procs(alive, timeout=STOP_GRACE_SECONDS)
        _signal_session(group.pid, signal.SIGKILL)
        for member in alive:
            with contextlib.suppress(psutil.Error):
                member.kill()
        psutil.wait_procs(alive, timeout=STOP_GRACE_SECONDS)
    with contextlib.suppress(subprocess.TimeoutExpired):
        group.wait(timeout=STOP_GRACE_SECONDS)


def _running(member: psutil.Process) -> bool:
    try:
        return member.is_running() and member.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _signal_session(leader_pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(leader_pid, signum)


def _outcome(
    job: DistributedJob,
    processes: int,
    return_code: int | None,
    cancel: RunCancelled | None,
    result: TrainingResult | None,
) -> TrainingResult:
    first = read_outcome(job, 0) or {}
    if return_code == 0 and first.get("status") == "cancelled":
        raise RunCancelled(first.get("message") or str(cancel or "cancelled"))
    if return_code == 0 and result is not None:
        return result
    rank, message = failed_rank(job, processes, return_code)
    last_lines = last_log_lines(job.rank_log_path(rank)) if rank is not None else []
    raise DistributedTrainingFailed(rank, message, last_lines)


def failed_rank(job: DistributedJob, processes: int, return_code: int | None) -> tuple[int | None, str]:
    """The rank that failed first and what it died of: torchrun's root cause, else a rank's own failure note.

    torchrun's root cause comes first: when one rank is killed, the others fail too (their peer is
    gone), and their notes would blame the wrong rank.
    """
    launcher_text = _tail_text(job.group_dir / LAUNCHER_LOG)
    found = _ROOT_CAUSE.search(launcher_text)
    if found:
        rank, exit_code = int(found.group(1)), int(found.group(2))
        note = (read_outcome(job, rank) or {}).get("message")
        how = note or (f"killed by {signal.Signals(-exit_code).name}" if exit_code < 0 else f"exit code {exit_code}")
        return rank, f"rank {rank} of {processes} failed: {how}"
    for rank in range(processes):
        outcome = read_outcome(job, rank) or {}
        if outcome.get("status") == "failed":
            return rank, f"rank {rank} of {processes} failed: {outcome.get('message')}"
    return None, (
        f"the training group ended with exit code {return_code} and no rank reported why; "
        f"see {job.group_dir / LAUNCHER_LOG}"
    )


def last_log_lines(path: Path, count: int = LAST_LOG_LINES) -> list[str]:
    """The last `count` non-empty lines of a rank's log (progress bars' carriage returns split too)."""
    lines: deque[str] = deque(maxlen=count)
    for line in re.split(r"[\r\n]+", _tail_text(path)):
        if line.strip():
            lines.append(line.rstrip())
    return list(lines)


def _tail_text(path: Path, size: int = 64_000) -> str:
    if not path.exists():
        return ""
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - size))
        return handle.read().decode("utf-8", errors="replace")
