"""RL from a reward model end to end: the site's config -> Redis -> a real rqworker -> RLOO -> the registry.

A tiny random policy against the same tiny model loaded as a reward model (a fresh random score
head: the mechanics, not the learning) keeps it to seconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.generate_runs import prompt_set_of
from tests.fixtures.runs import wait_for_run
from webapp.library.models import Artifact
from webapp.registry.models import ModelEntry
from webapp.runs import services as run_services
from webapp.runs.models import PipelineRun
from webapp.training import rl_services
from workers.kinds.training_rl import PROMPTS_ARTIFACT

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_an_rloo_run_trains_the_policy_against_the_reward_model_and_registers_its_lineage(
    live_settings, rq_worker, researcher, tiny_model_dir
):
    policy = ModelEntry.objects.create(name="tiny", source=ModelEntry.Source.LOCAL, path=str(tiny_model_dir))
    reward = ModelEntry.objects.create(
        name="tiny-rm", source=ModelEntry.Source.LOCAL, path=str(tiny_model_dir), task=ModelEntry.Task.REWARD
    )
    prompts = prompt_set_of(8, "eight")
    config = rl_services.rl_config_build(
        model=policy,
        reward_model=reward,
        prompt_set=prompts,
        preset="cpu-demo",
        settings={
            "algorithm": "rloo",
            "num_generations": 2,
            "max_new_tokens": 8,
            "held_out_prompts": 2,
            "eval_steps": 1,
            "samples_per_eval": 1,
            "training": {"max_steps": 2, "per_device_batch_size": 2, "save_steps": 1, "torch_threads": 1},
        },
    )
    worker = rq_worker()
    run = run_services.run_create(user=researcher, kind=rl_services.RL_KIND, config=config, name="rl")
    run = wait_for_run(run, timeout=300, what="the RL run to finish")
    assert run.status == PipelineRun.Status.SUCCEEDED, run.error + run.traceback + worker.log_text()

    snapshot = Artifact.objects.get(run=run, name=PROMPTS_ARTIFACT)
    assert snapshot.row_count == 8 and Path(snapshot.jsonl_path).name == "prompts.jsonl"
    trained = ModelEntry.objects.get(produced_by_run=run)
    assert (trained.parent, trained.reward_model, trained.trained_on) == (policy, reward, snapshot)
    assert trained.task == ModelEntry.Task.GENERATION
    assert trained.training_config["algorithm"] == "rloo"
    assert "held_out/reward_mean" in run.summary and "held_out/kl" in run.summary
    assert run.summary["effective_batch"] == "2 prompts x 2 responses = 4 rollouts a step"


@pytest.mark.parametrize(
    ("algorithm", "distributed", "fragment"),
    [
        ("rloo", {"launcher": "ray"}, "distributed.launcher is ray"),
        ("ppo", {"processes": 2}, "PPO trains in one process"),
    ],
)
def test_rl_refuses_the_ray_launcher_and_ppo_on_more_than_one_process_naming_distributed(
    algorithm, distributed, fragment
):
    from pipelines.errors import InvalidConfigError
    from pipelines.training.rl.config import RLConfig
    from workers.kinds.training_rl import check_launcher

    with pytest.raises(InvalidConfigError, match=fragment) as caught:
        check_launcher(distributed, RLConfig(algorithm=algorithm))
    assert caught.value.field == "distributed"
    check_launcher({"processes": 1}, RLConfig(algorithm="ppo"))  # what the form queues for PPO
    check_launcher({"processes": 8}, RLConfig(algorithm="rloo"))  # RLOO and GRPO run as a group


def test_a_killed_worker_resumes_rl_from_its_checkpoint_and_the_step_count_goes_on(
    live_settings, rq_worker, researcher, tiny_model_dir
):
    """SIGKILL during RL training, resume on a fresh worker: it starts after the newest checkpoint, never
    before it, and ends at max_steps with one registered policy."""
    import time

    policy = ModelEntry.objects.create(name="tiny", source=ModelEntry.Source.LOCAL, path=str(tiny_model_dir))
    reward = ModelEntry.objects.create(
        name="tiny-rm", source=ModelEntry.Source.LOCAL, path=str(tiny_model_dir), task=ModelEntry.Task.REWARD
    )
    config = rl_services.rl_config_build(
        model=policy,
        reward_model=reward,
        prompt_set=prompt_set_of(8, "eight"),
        preset="cpu-demo",
        settings={
            "algorithm": "rloo",
            "num_generations": 2,
            "max_new_tokens": 8,
            "held_out_prompts": 2,
            "eval_steps": 2,
            "training": {"max_steps": 8, "per_device_batch_size": 2, "save_steps": 1, "torch_threads": 1},
        },
    )
    first = rq_worker()
    run = run_services.run_create(user=researcher, kind=rl_services.RL_KIND, config=config, name="rl killed")
    run = wait_for_run(run, lambda r: r.stage == "train" and r.progress_done >= 3, 300, "three RL steps")
    first.kill()
    killed_at = time.time()
    checkpoints = run_services.run_directory(run) / "checkpoints"
    saved = max(int(path.name.split("-")[1]) for path in checkpoints.glob("checkpoint-*"))
    assert 2 <= saved < 8  # the kill may land while checkpoint-3 is being written
    run = wait_for_run(run, lambda r: r.status == PipelineRun.Status.LOST, 90, "the run to be detected as lost")

    second = rq_worker()
    run_services.run_resume(run=run)
    run = wait_for_run(run, timeout=300, what="the resumed RL run to finish")
    assert run.status == PipelineRun.Status.SUCCEEDED, run.error + run.traceback + second.log_text()
    resumed_steps = [row["step"] for row in run.metrics if "reward" in row and row["t"] > killed_at]
    assert resumed_steps == list(range(saved + 1, 9)), (saved, resumed_steps)
    assert run.summary["steps"] == 8 and ModelEntry.objects.filter(produced_by_run=run).count() == 1
