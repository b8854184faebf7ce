"""RLOO as a process group (torchrun, gloo on CPU): two ranks train the tiny policy against a reward model,
the main rank alone measures the held-out prompts, and the result is one policy; PPO refuses a group."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.common.progress import RecordingProgress
from pipelines.errors import InvalidConfigError
from pipelines.training.distributed.job import DistributedJob
from pipelines.training.distributed.launch import launch_local
from pipelines.training.distributed.pipeline import check_rl_processes
from pipelines.training.rl.config import RLConfig

from .conftest import tiny_training

pytestmark = pytest.mark.slow


def _config(algorithm: str = "rloo") -> RLConfig:
    return RLConfig(
        algorithm=algorithm,
        training=tiny_training(max_steps=2, per_device_batch_size=2, save_steps=1, adapter="full", torch_threads=1),
        max_new_tokens=4,
        num_generations=2,
        held_out_prompts=2,
        eval_steps=1,
    )


def test_two_ranks_train_rloo_and_only_the_main_rank_measures_the_held_out_prompts(tmp_path, tiny_model_dir):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"Question {n}?"}) + "\n" for n in range(10)))
    run_dir = tmp_path / "run"
    job = DistributedJob.for_config(
        _config(), model_dir=tiny_model_dir, dataset_path=prompts, run_dir=run_dir, reward_model_dir=tiny_model_dir
    )
    progress = RecordingProgress()
    result = launch_local(job, 2, None, progress, 0.2)

    assert result.steps == 2 and Path(result.output_dir, "config.json").is_file()
    curve = [json.loads(line) for line in (run_dir / "held_out" / "curve.jsonl").read_text().splitlines()]
    assert [row["step"] for row in curve] == [0, 1, 2]  # once per evaluation: rank 1 measured nothing
    assert [row["step"] for row in progress.metric_rows if "reward" in row] == [1, 2]


def test_ppo_refuses_a_process_group_by_name_and_the_critic_free_ones_take_it():
    with pytest.raises(InvalidConfigError, match="PPO trains in one process") as caught:
        check_rl_processes(_config("ppo"), 2)
    assert caught.value.field == "distributed"
    check_rl_processes(_config("rloo"), 8)
    check_rl_processes(_config("ppo"), 1)
