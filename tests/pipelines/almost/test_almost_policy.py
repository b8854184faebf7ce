"""ALMoST to the end on the tiny model: RMSP demonstrations -> SFT policy -> RL policy -> base/SFT/RL measured
on held-out prompts, every model published with its lineage as soon as it is trained."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pipelines.almost.config import AlmostConfig, PolicyConfig
from pipelines.almost.run import run_almost
from pipelines.common.progress import RecordingProgress
from pipelines.common.store import RunStore
from pipelines.errors import InvalidConfigError
from pipelines.training.arguments import TrainingArgs
from pipelines.training.config import SFTConfig
from pipelines.training.rl.config import RLConfig

from .test_almost_run import _config, _inputs

TINY_TRAINING = {"max_steps": 1, "per_device_batch_size": 2, "learning_rate": 1e-4, "save_steps": 1,
                 "max_length": 96, "max_prompt_length": 64, "device": "cpu", "adapter": "full", "torch_threads": 1}


def _policy_config() -> AlmostConfig:
    base = _config()
    return replace(
        base,
        prompt_generation=replace(base.prompt_generation, num_generation=4),
        policy=PolicyConfig(
            sft_enabled=True,
            rl_enabled=True,
            sft=SFTConfig(training=TrainingArgs.from_dict(TINY_TRAINING)),
            rl=RLConfig(
                algorithm="rloo",
                training=TrainingArgs.from_dict(TINY_TRAINING),
                num_generations=2,
                max_new_tokens=6,
                held_out_prompts=1,
                eval_steps=1,
                samples_per_eval=1,
            ),
        ),
    )


def test_the_chain_trains_sft_then_rl_and_measures_base_sft_and_rl_on_prompts_none_trained_on(
    tmp_path, backend_pool, tiny_spec, embedder
):
    config = _policy_config()
    store = RunStore(tmp_path / "run")
    progress = RecordingProgress()
    result = run_almost(config, _inputs(tiny_spec), backend_pool, store, progress, embedder_loader=lambda: embedder)

    published_models = [output for early in progress.published for output in early.models]
    assert [(m.key, m.parent, m.dataset, m.reward_model) for m in published_models] == [
        ("reward_model", "reward_base", "comparisons", ""),
        ("sft_policy", "policy_base", "rmsp-demonstrations", ""),
        ("rl_policy", "sft_policy", "rl-prompts", "reward_model"),
    ]
    # Every artifact a model names went out before that model did.
    names_seen: list[str] = []
    for early in progress.published:
        names_seen += [artifact.name for artifact in early.artifacts]
        for model in early.models:
            assert model.dataset in names_seen
    assert {"policy-held-out-prompts", "rl-prompts", "rmsp-demonstrations"} <= set(names_seen)

    held_out = {row["prompt_id"] for row in store.read_jsonl("policy", "held-out.jsonl")}
    demonstrated = {row["prompt_id"] for row in store.read_jsonl("rmsp", "demonstrations.jsonl")}
    rl_prompts = {row["prompt_id"] for row in store.read_jsonl("policy", "rl-prompts.jsonl")}
    assert len(held_out) == 1 and not held_out & demonstrated and not held_out & rl_prompts

    evaluation = result.summary["policy_evaluation"]
    assert evaluation["held_out_prompts"] == 1 and set(evaluation["policies"]) == {"base", "sft", "rl"}
    for name in ("base", "sft", "rl"):
        assert isinstance(evaluation["policies"][name]["reward_mean"], float)
    assert "kl" in evaluation["policies"]["rl"] and "kl" not in evaluation["policies"]["sft"]
    assert result.summary["rl"]["steps"] == 1 and "held_out/kl" in result.summary["rl"]
    assert set(result.summary["stage_seconds"]) >= {"reward_model", "self_play", "sft", "rl", "policy_evaluation"}
    curve = list(store.read_jsonl("rl", "held_out", "curve.jsonl"))
    assert [row["step"] for row in curve] == [0, 1]
    assert store.exists("rl", "held_out", "samples", "step-0000001.json")

    # Read again, a finished chain trains nothing and measures nothing again.
    again = run_almost(config, _inputs(tiny_spec), backend_pool, store, RecordingProgress())
    assert again.summary["policy_evaluation"] == evaluation


def test_rl_without_sft_and_sft_without_rmsp_are_refused():
    with pytest.raises(InvalidConfigError, match="needs policy.sft_enabled"):
        PolicyConfig(rl_enabled=True)
    with pytest.raises(InvalidConfigError, match="needs RMSP"):
        replace(_config(), rmsp=replace(_config().rmsp, enabled=False), policy=PolicyConfig(sft_enabled=True))
