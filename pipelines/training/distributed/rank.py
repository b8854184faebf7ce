"""One rank of a distributed training run: `python -m pipelines.training.distributed.rank <job.json>`.

torchrun (or Ray Train) starts one such process per device and sets `RANK`, `WORLD_SIZE`, `LOCAL_RANK`,
`MASTER_ADDR` and `MASTER_PORT`; HF Trainer and accelerate build the process group from them (gloo on
CPU, nccl on GPU), so the trainers here are the same code an in-process run uses. Every rank writes
its output to `<run dir>/distributed/ranks/rank-<k>.log` and, when it ends, an outcome file next to
it (succeeded, cancelled or failed with the error), which the supervisor reads to say which rank
failed and why.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from pipelines.common.store import RunStore, atomic_writer
from pipelines.errors import RunCancelled
from pipelines.training.config import PreferenceConfig, RewardConfig, SFTConfig
from pipelines.training.distributed.events import GroupProgress
from pipelines.training.distributed.job import DistributedJob
from pipelines.training.result import TrainingResult
from pipelines.training.rl.config import RLConfig

CANCELLED_EXIT_CODE = 0
"""A cancelled rank saved its checkpoint and stopped as asked: a clean exit (the outcome file says cancelled)."""
FAILED_EXIT_CODE = 1


def current_rank() -> int:
    return int(os.environ.get("RANK", "0"))


def train_rank(job: DistributedJob) -> TrainingResult:
    """Run the job's trainer in this process as rank `RANK` of `WORLD_SIZE`; rank 0 reports to the events file."""
    rank = current_rank()
    progress = GroupProgress(job.events_path, job.cancel_path, rank)
    try:
        config = _with_threads_for_this_rank(job.training_config(), progress)
        store = RunStore(job.run_dir)
        result = _train(job, config, store, progress)
        progress.result(result.to_dict())
        return result
    finally:
        progress.close()


def _train(
    job: DistributedJob,
    config: SFTConfig | PreferenceConfig | RewardConfig | RLConfig,
    store: RunStore,
    progress: GroupProgress,
) -> TrainingResult:
    model_dir, dataset_path = Path(job.model_dir), Path(job.dataset_path)
    if isinstance(config, SFTConfig):
        from pipelines.training.sft import run_sft

        return run_sft(config, model_dir, dataset_path, store, progress)
    if isinstance(config, PreferenceConfig):
        from pipelines.training.preference import run_preference

        reference_dir = Path(job.reference_model_dir) if job.reference_model_dir else None
        return run_preference(config, model_dir, reference_dir, dataset_path, store, progress)
    if isinstance(config, RLConfig):
        from pipelines.training.rl.run import run_rl

        assert job.reward_model_dir is not None  # DistributedJob checks it
        return run_rl(config, model_dir, Path(job.reward_model_dir), dataset_path, store, progress)
    from pipelines.training.reward import run_reward

    return run_reward(config, model_dir, dataset_path, store, progress)


def _with_threads_for_this_rank(config: Any, progress: GroupProgress) -> Any:
    """On CPU, share the cores among the host's ranks when the config says "every core" (torch_threads 0).

    Each rank would otherwise take every core and the ranks would slow each other down.
    """
    ranks_here = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    training = config.training
    if ranks_here <= 1 or training.torch_threads or training.device == "cuda":
        return config
    threads = max(1, (os.cpu_count() or 1) // ranks_here)
    progress.log(f"{ranks_here} ranks on this host: {threads} torch thread(s) each")
    return dataclasses.replace(config, training=dataclasses.replace(training, torch_threads=threads))


def outcome_path(job: DistributedJob, rank: int) -> Path:
    """The rank's outcome file, beside its log."""
    return job.rank_log_path(rank).with_suffix(".outcome.json")


def read_outcome(job: DistributedJob, rank: int) -> dict[str, Any] | None:
    """`{"status": "succeeded"|"cancelled"|"failed", "message": ...}` of the rank's last attempt, if it got to write one."""
    path = outcome_path(job, rank)
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _write_outcome(job: DistributedJob, rank: int, status: str, message: str) -> None:
    with atomic_writer(outcome_path(job, rank)) as handle:
        handle.write(json.dumps({"status": status, "message": message, "pid": os.getpid()}))


def _send_output_to_log(path: Path) -> None:
    """Point this process's stdout and stderr (file descriptors 1 and 2, so native code's too) at its log."""
    path.parent.mkdir(parents=True, exist_ok=True)
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    sys.stderr.reconfigure(line_buffering=True)  # type: ignore[union-attr]


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) != 1:
        print("usage: python -m pipelines.training.distributed.rank <job.json>", file=sys.stderr)
        return 2
    from pipelines.training.distributed.launch import die_with_parent

    if os.environ.get("TORCHELASTIC_RUN_ID"):  # started by torchrun: end with it
        die_with_parent()
    job = DistributedJob.read(arguments[0])
    rank = current_rank()
    outcome_path(job, rank).unlink(missing_ok=True)
    _send_output_to_log(job.rank_log_path(rank))
    print(
        f"{time.strftime('%H:%M:%S')} [rank {rank}] pid {os.getpid()} starts: rank {rank} of "
        f"{os.environ.get('WORLD_SIZE', '1')}, local rank {os.environ.get('LOCAL_RANK', '0')}",
        flush=True,
    )
    try:
        train_rank(job)
    except RunCancelled as error:
        _write_outcome(job, rank, "cancelled", str(error))
        print(f"[rank {rank}] cancelled: {error}", flush=True)
        return CANCELLED_EXIT_CODE
    except BaseException as error:
        traceback.print_exc()
        _write_outcome(job, rank, "failed", f"{type(error).__name__}: {error}")
        return FAILED_EXIT_CODE
    _write_outcome(job, rank, "succeeded", "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
