"""Training as a torchrun process group on CPU (gloo, DDP) with the tiny random model.

Two processes x accumulation 1 step on exactly the batches one process x accumulation 2 steps on
(accelerate shards the same seeded batch order across the ranks batch by batch), so their loss curves
must agree; the checkpoints one writes, the other resumes (the step count goes on); a cancel stops
every rank at one step with a checkpoint; a killed rank fails the run by name with nothing left running.
Run with -s to see the measured curves and times per step.
"""

from __future__ import annotations

import math
import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from pipelines.common.progress import RecordingProgress
from pipelines.common.store import RunStore
from pipelines.errors import RunCancelled
from pipelines.training.config import SFTConfig
from pipelines.training.distributed.job import DistributedJob
from pipelines.training.distributed.launch import DistributedTrainingFailed, launch_local
from pipelines.training.sft import run_sft
from pipelines.training.trainer import CHECKPOINTS_DIR, latest_checkpoint
from tests.pipelines.training.conftest import QUESTIONS, tiny_training, write_jsonl

pytestmark = pytest.mark.slow

LOSS_TOLERANCE = 1e-3
"""Relative: the same examples per step, summed in another order (gloo's all-reduce vs accumulation) in float32."""


@pytest.fixture
def eight_rows(tmp_path: Path) -> Path:
    rows = [{"prompt": question, "response": right} for question, right, _wrong in QUESTIONS[:4]] * 2
    return write_jsonl(tmp_path / "sft8.jsonl", rows)


def _config(accumulation: int, **overrides) -> SFTConfig:
    # LoRA dropout 0: each rank draws its own dropout masks, which would make the curves differ by noise.
    values = {
        "max_steps": 4,
        "save_steps": 2,
        "gradient_accumulation_steps": accumulation,
        "lora": {"r": 4, "dropout": 0.0},
    }
    values.update(overrides)
    return SFTConfig(training=tiny_training(**values), merge_adapter=False)


def _job(config: SFTConfig, model_dir: Path, dataset: Path, run_dir: Path) -> DistributedJob:
    return DistributedJob.for_config(config, model_dir=model_dir, dataset_path=dataset, run_dir=run_dir)


def _losses(progress: RecordingProgress) -> dict[int, float]:
    return {row["step"]: row["loss"] for row in progress.metric_rows if "loss" in row and "step" in row}


class CancelAtStep(RecordingProgress):
    """The user cancels once the train stage has reached `step` (as the worker's progress would)."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.step = step

    def check_cancelled(self) -> None:
        if self.stages and self.stages[-1][0] == "train" and self.done >= self.step:
            raise RunCancelled("cancelled by user")


def test_two_processes_follow_one_process_loss_curve_with_the_same_effective_batch(
    tiny_model_dir, eight_rows, tmp_path
):
    single = RecordingProgress()
    started = time.monotonic()
    single_result = run_sft(_config(2), tiny_model_dir, eight_rows, RunStore(tmp_path / "one"), single)
    single_seconds = time.monotonic() - started

    group = RecordingProgress()
    started = time.monotonic()
    group_result = launch_local(_job(_config(1), tiny_model_dir, eight_rows, tmp_path / "two"), 2, None, group, 0.2)
    group_seconds = time.monotonic() - started

    one, two = _losses(single), _losses(group)
    print(f"\nloss by step, 1 process x accumulation 2: {one}\nloss by step, 2 processes x accumulation 1: {two}")
    for name, result, seconds in (
        ("1 process", single_result, single_seconds),
        ("2 processes", group_result, group_seconds),
    ):
        runtime = result.metrics["train_runtime"]
        print(
            f"{name}: {runtime / result.steps:.3f} s per step (train_runtime {runtime:.2f} s), {seconds:.1f} s in all"
        )
    assert sorted(one) == sorted(two) == [1, 2, 3, 4]
    assert all(math.isfinite(loss) for loss in one.values())
    assert one[4] < one[1], "the loss must move, or matching curves would prove nothing"
    for step in one:
        assert two[step] == pytest.approx(one[step], rel=LOSS_TOLERANCE), f"step {step}: {one} vs {two}"
    # Rank 0's events reached the supervisor's progress: stages, advances and the log.
    assert [name for name, _total in group.stages] == ["tokenize", "train", "save"]
    assert group.done_by_stage["train"] == 4
    assert any("2 ranks on this host" in message for message in group.messages)
    assert group_result.steps == 4 and Path(group_result.output_dir, "adapter_config.json").is_file()


def test_a_group_checkpoint_resumes_in_one_process_and_one_process_checkpoint_in_a_group(
    tiny_model_dir, eight_rows, tmp_path
):
    from pipelines.common.store import RunStore as Store
    from pipelines.training.distributed.effective_batch import keep_effective_batch

    # A group of 2 (accumulation 1) is cancelled: every rank stops at one step end, one checkpoint.
    group_dir = tmp_path / "group-first"
    cancelled = CancelAtStep(2)
    with pytest.raises(RunCancelled, match="checkpoint saved"):
        keep_effective_batch(_config(1, max_steps=8), Store(group_dir), 2, cancelled)
        launch_local(_job(_config(1, max_steps=8), tiny_model_dir, eight_rows, group_dir), 2, None, cancelled, 0.2)
    stopped_at = int(latest_checkpoint(group_dir / CHECKPOINTS_DIR).name.split("-")[1])
    assert 2 <= stopped_at < 8
    assert not list((group_dir / CHECKPOINTS_DIR).glob(".staging-*")), "no half-written checkpoint is left"
    # One process resumes it: the effective batch (2 x 1 x 2 = 4) is kept with accumulation 2.
    resumed = RecordingProgress()
    config = keep_effective_batch(_config(1, max_steps=8), Store(group_dir), 1, resumed)
    assert config.training.gradient_accumulation_steps == 2
    assert any("gradient accumulation 1 -> 2" in message for message in resumed.messages)
    result = run_sft(config, tiny_model_dir, eight_rows, Store(group_dir), resumed)
    assert any(f"resumed from step {stopped_at} of 8" in message for message in resumed.messages)
    assert result.steps == 8 and min(_losses(resumed)) == stopped_at + 1

    # And the other way: one process (accumulation 2) cancelled in process, a group of 2 finishes it.
    single_dir = tmp_path / "single-first"
    keep_effective_batch(_config(2, max_steps=6), Store(single_dir), 1, RecordingProgress())
    with pytest.raises(RunCancelled):
        run_sft(_config(2, max_steps=6), tiny_model_dir, eight_rows, Store(single_dir), CancelAtStep(3))
    assert latest_checkpoint(single_dir / CHECKPOINTS_DIR).name == "checkpoint-3"
    group = RecordingProgress()
    config = keep_effective_batch(_config(2, max_steps=6), Store(single_dir), 2, group)
    assert config.training.gradient_accumulation_steps == 1
    result = launch_local(_job(config, tiny_model_dir, eight_rows, single_dir), 2, None, group, 0.2)
    assert any("resumed from step 3 of 6" in message for message in group.messages)
    assert result.steps == 6 and sorted(_losses(group)) == [4, 5, 6]


def _group_processes(job_path: Path) -> list[psutil.Process]:
    """Every process of the group that runs `job_path`: torchrun (its command names the rank module too) and the ranks."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        command = process.info["cmdline"] or []
        if "pipelines.training.distributed.rank" in command and str(job_path) in command:
            found.append(process)
    return found


def _ranks(job_path: Path) -> list[psutil.Process]:
    """The ranks alone: torchrun's own command runs torch.distributed.run."""
    return [process for process in _group_processes(job_path) if "torch.distributed.run" not in process.info["cmdline"]]


class KillRankAtStep(RecordingProgress):
    """Kills rank `rank` with SIGKILL once the train stage reached `step`; notes every process of the group."""

    def __init__(self, job: DistributedJob, rank: int, step: int) -> None:
        super().__init__()
        self.job, self.rank, self.step = job, rank, step
        self.seen: dict[int, psutil.Process] = {}
        self.killed_pid: int | None = None

    def advance(self, count: int = 1) -> None:
        super().advance(count)
        for process in _group_processes(self.job.group_dir / "job.json"):
            self.seen[process.pid] = process
        ranks = _ranks(self.job.group_dir / "job.json")
        if self.killed_pid is None and self.stages[-1][0] == "train" and self.done >= self.step:
            victim = next(process for process in ranks if process.environ().get("RANK") == str(self.rank))
            self.killed_pid = victim.pid
            os.kill(victim.pid, signal.SIGKILL)


def test_a_killed_rank_fails_the_run_by_name_leaves_nothing_running_and_the_run_resumes(
    tiny_model_dir, eight_rows, tmp_path
):
    config = _config(1, max_steps=12, save_steps=2)
    job = _job(config, tiny_model_dir, eight_rows, tmp_path / "run")
    progress = KillRankAtStep(job, rank=1, step=3)
    started = time.monotonic()
    with pytest.raises(DistributedTrainingFailed) as failure:
        launch_local(job, 2, None, progress, 0.2)
    print(
        f"\nkilled rank 1 (pid {progress.killed_pid}); the run failed {time.monotonic() - started:.1f} s after launch: {failure.value}"
    )
    assert failure.value.rank == 1
    assert "rank 1 of 2 failed: killed by SIGKILL" in str(failure.value)
    assert any("[rank 1]" in line for line in failure.value.last_lines), "rank 1's own last lines"
    assert len(progress.seen) == 3, f"torchrun and two ranks were seen: {progress.seen}"
    left = [
        process
        for process in progress.seen.values()
        if process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    ]
    assert not left, f"processes of the group still running: {left}"
    assert not _group_processes(job.group_dir / "job.json")

    checkpoint = latest_checkpoint(tmp_path / "run" / CHECKPOINTS_DIR)
    assert checkpoint is not None
    resumed = RecordingProgress()
    result = launch_local(_job(config, tiny_model_dir, eight_rows, tmp_path / "run"), 2, None, resumed, 0.2)
    step = int(checkpoint.name.split("-")[1])
    print(f"resumed from {checkpoint.name}: steps {sorted(_losses(resumed))}, finished at step {result.steps}")
    assert any(f"resumed from step {step} of 12" in message for message in resumed.messages)
    assert result.steps == 12


LAUNCHER_SCRIPT = """
import sys
from pipelines.common.progress import RecordingProgress
from pipelines.training.distributed.job import DistributedJob
from pipelines.training.distributed.launch import launch_local
launch_local(DistributedJob.read(sys.argv[1]), 2, None, RecordingProgress(), 0.2)
"""


def test_a_killed_worker_takes_its_training_group_with_it(tiny_model_dir, eight_rows, tmp_path):
    """The group runs in its own session, so the kernel's parent-death signal is what ends it with the worker."""
    import subprocess
    import sys

    job = _job(_config(1, max_steps=400, save_steps=400), tiny_model_dir, eight_rows, tmp_path / "run")
    job_path = job.write()
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER_SCRIPT, str(job_path)], cwd=Path(__file__).parents[3])
    try:
        deadline = time.monotonic() + 120
        while "stage train" not in (job.rank_log_path(1).read_text() if job.rank_log_path(1).exists() else ""):
            assert time.monotonic() < deadline and launcher.poll() is None, "the group never started training"
            time.sleep(0.5)
        group = _group_processes(job_path)
        assert len(group) == 3 and len(_ranks(job_path)) == 2, f"torchrun and two ranks: {group}"
        launcher.kill()  # the worker dies outright: no finally, no cleanup of its own
        launcher.wait()
        gone, alive = psutil.wait_procs(group, timeout=30)
        assert not alive, f"ranks outlived their worker: {alive}"
        assert not _group_processes(job_path)
    finally:
        if launcher.poll() is None:
            launcher.kill()
        for process in _group_processes(job_path):
            process.kill()
