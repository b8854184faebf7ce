"""The pieces of a distributed training run that need no process group: the job file, rank 0's events
replayed into a Progress, and the effective batch kept across process counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.common.progress import RecordingProgress
from pipelines.common.store import RunStore
from pipelines.errors import InvalidConfigError, RunCancelled
from pipelines.training.config import RewardConfig, SFTConfig
from pipelines.training.distributed.effective_batch import keep_effective_batch
from pipelines.training.distributed.events import GroupProgress, follow_events
from pipelines.training.distributed.job import DistributedJob
from pipelines.training.distributed.launch import last_log_lines
from tests.pipelines.training.conftest import tiny_training


def test_a_job_round_trips_through_its_file_and_checks_its_trainer(tmp_path: Path):
    config = SFTConfig(training=tiny_training(gradient_accumulation_steps=3))
    job = DistributedJob.for_config(config, model_dir="/models/m", dataset_path="/data/d.jsonl", run_dir=tmp_path)
    read = DistributedJob.read(job.write())
    assert read == job and read.training_config() == config
    assert read.events_path == tmp_path / "distributed" / "events.jsonl"
    assert read.rank_log_path(1) == tmp_path / "distributed" / "ranks" / "rank-1.log"
    with pytest.raises(InvalidConfigError, match="only preference training uses a reference model"):
        DistributedJob.for_config(config, model_dir="m", dataset_path="d", run_dir=tmp_path, reference_model_dir="r")
    with pytest.raises(InvalidConfigError, match="trainer must be one of"):
        DistributedJob.from_dict({**job.to_dict(), "trainer": "ppo"})


def test_rank_zero_events_replay_into_the_workers_progress_a_half_written_line_waits(tmp_path: Path):
    events, cancel = tmp_path / "events.jsonl", tmp_path / "cancel-requested"
    rank_zero, rank_one = GroupProgress(events, cancel, 0), GroupProgress(events, cancel, 1)
    rank_zero.stage("train", total=4)
    rank_zero.advance(2)
    rank_zero.metrics({"loss": 1.5, "step": 2})
    rank_one.log("only in rank 1's own log")
    rank_zero.log("step two done")
    rank_zero.close()
    with events.open("a") as handle:
        handle.write('{"type": "advance", "cou')  # rank 0 is mid-write
    replayed = RecordingProgress()
    offset = follow_events(events, replayed, 0)
    assert replayed.stages == [("train", 4)] and replayed.done == 2
    assert replayed.metric_rows == [{"loss": 1.5, "step": 2}]
    assert replayed.messages == ["step two done"]
    with events.open("a") as handle:
        handle.write('nt": 1}\n{"type": "checkpoint"}\n')
    offset = follow_events(events, replayed, offset)
    assert replayed.done == 3 and offset == events.stat().st_size
    assert replayed.messages[-1].startswith("unknown event from rank 0 ignored")


def test_without_a_process_group_each_rank_reads_the_cancel_file(tmp_path: Path):
    progress = GroupProgress(tmp_path / "events.jsonl", tmp_path / "cancel-requested", 1)
    progress.check_cancelled()
    (tmp_path / "cancel-requested").touch()
    with pytest.raises(RunCancelled):
        progress.check_cancelled()


def test_the_effective_batch_is_kept_on_another_process_count_or_refused_by_name(tmp_path: Path):
    store = RunStore(tmp_path)
    config = RewardConfig(training=tiny_training(per_device_batch_size=2, gradient_accumulation_steps=3))
    progress = RecordingProgress()
    assert keep_effective_batch(config, store, 2, progress) == config  # the first attempt records 2 x 3 x 2 = 12
    assert json.loads((tmp_path / "distributed" / "effective_batch.json").read_text())["effective_batch"] == 12
    assert keep_effective_batch(config, store, 1, progress).training.gradient_accumulation_steps == 6
    assert "gradient accumulation 3 -> 6 (2 per device x 6 x 1 = 12)" in progress.messages[-1]
    assert keep_effective_batch(config, store, 6, progress).training.gradient_accumulation_steps == 1
    with pytest.raises(InvalidConfigError, match="effective batch of 12 is not a whole number"):
        keep_effective_batch(config, store, 4, progress)


def test_a_ranks_last_lines_split_progress_bars_and_skip_blank_lines(tmp_path: Path):
    log = tmp_path / "rank-1.log"
    log.write_text("one\n\nLoading 0%\rLoading 100%\n" + "".join(f"line {n}\n" for n in range(30)))
    lines = last_log_lines(log, count=5)
    assert lines == [f"line {n}" for n in range(25, 30)]
    assert last_log_lines(log, count=40)[:3] == ["one", "Loading 0%", "Loading 100%"]
    assert last_log_lines(tmp_path / "absent.log") == []
