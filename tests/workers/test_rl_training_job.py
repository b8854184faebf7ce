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
    ("distributed", "fragment"),
    [({"launcher": "ray"}, "distributed.launcher is ray"), ({"processes": 2}, "distributed.processes is 2")],
)
def test_rl_refuses_the_ray_launcher_and_more_than_one_process_naming_distributed(distributed, fragment):
    from pipelines.errors import InvalidConfigError
    from workers.kinds.training_rl import check_one_process

    with pytest.raises(InvalidConfigError, match=fragment) as caught:
        check_one_process(distributed)
    assert caught.value.field == "distributed"
    check_one_process({"processes": 1})  # what the form queues
