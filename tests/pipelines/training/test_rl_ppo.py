"""PPO (ALMoST's RL from synthetic feedback) on the tiny random model with a toy reward: it learns, it
resumes without repeating a step, and a LoRA run saves its adapter and the merge."""

from __future__ import annotations

import json
import shutil
import statistics
from dataclasses import replace
from pathlib import Path

import pytest

from pipelines.common.progress import RecordingProgress
from pipelines.common.store import RunStore
from pipelines.errors import RunCancelled
from pipelines.training.formatting import TRAINING_FORMAT_FILE
from pipelines.training.rl.config import PPOSettings, RLConfig
from pipelines.training.rl.files import read_curve
from pipelines.training.rl.ppo import step_prompt_indices, value_model_source
from pipelines.training.rl.run import run_rl
from tests.pipelines.training.conftest import tiny_training, write_jsonl

PROMPTS = [
    "Name a colour.",
    "Say hello.",
    "What is 2 + 2?",
    "Name an animal.",
    "Count to three.",
    "Name a fruit.",
    "What day is it?",
    "Say something short.",
    "Name a city.",
    "Pick a number.",
]


class EmbeddingDirectionReward:
    """A dense toy reward a random model can learn: the mean, over the response's tokens (re-tokenized), of
    their initial embedding's standardized projection on a fixed random direction.

    Why not a property of token ids (even ids, say): a random model spreads its probability over 49k
    tokens, and PPO can raise such a set only token by token as they get sampled. Here moving the last
    hidden state toward the direction raises every well-scoring token at once (the head is tied).
    """

    def __init__(self, tokenizer, model_dir: Path) -> None:
        import torch
        from safetensors.torch import load_file

        embedding = load_file(str(model_dir / "model.safetensors"))["model.embed_tokens.weight"].float()
        direction = torch.randn(embedding.shape[1], generator=torch.Generator().manual_seed(0))
        projection = embedding @ (direction / direction.norm())
        self.token_scores = ((projection - projection.mean()) / projection.std()).tolist()
        self.tokenizer = tokenizer

    def score(self, prompts, texts, ended=None):
        scores = []
        for text in texts:
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            scores.append(sum(self.token_scores[token] for token in ids) / len(ids) if ids else 0.0)
        return scores


@pytest.fixture
def prompts_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": text} for text in PROMPTS])


def ppo_config(held_out: int = 0, ppo: PPOSettings | None = None, **training) -> RLConfig:
    """A few quick steps: ALMoST's raw prompt format keeps prompts short, one thread beats two on a busy host."""
    values = {
        "max_steps": 4,
        "per_device_batch_size": 4,
        "adapter": "full",
        "save_steps": 100,
        "max_prompt_length": 60,
        "prompt_format": "raw_assistant",
        "torch_threads": 1,
    }
    values.update(training)
    return RLConfig(
        training=tiny_training(**values),
        max_new_tokens=8,
        held_out_prompts=held_out,
        eval_steps=2,
        ppo=ppo or PPOSettings(num_ppo_epochs=2, num_mini_batches=2),
    )


def train_rows(progress: RecordingProgress) -> list[dict]:
    return [row for row in progress.metric_rows if "objective/scores" in row]


def test_step_prompts_follow_from_the_step_number_and_cover_every_prompt_each_epoch():
    first_epoch = [i for step in (1, 2) for i in step_prompt_indices(step, 5, 10, seed=7)]
    assert sorted(first_epoch) == list(range(10))
    assert step_prompt_indices(3, 5, 10, seed=7) == step_prompt_indices(3, 5, 10, seed=7)
    assert step_prompt_indices(3, 5, 10, seed=7) != step_prompt_indices(1, 5, 10, seed=7)
    assert len(step_prompt_indices(1, 8, 3, seed=7)) == 8  # a batch larger than the prompts spans epochs


def test_ppo_raises_a_toy_reward_and_reports_kl(tiny_model_dir, tokenizer, prompts_file, tmp_path):
    # TRL's PPO settings but a low temperature and a weak KL pull, so the tiny model's small logits move.
    config = replace(
        ppo_config(max_steps=12, per_device_batch_size=8, learning_rate=1e-2),
        temperature=0.3,
        kl_coef=0.01,
        ppo=PPOSettings(),
    )
    progress = RecordingProgress()
    result = run_rl(
        config,
        tiny_model_dir,
        tiny_model_dir,
        prompts_file,
        RunStore(tmp_path / "run"),
        progress,
        reward=EmbeddingDirectionReward(tokenizer, tiny_model_dir),
    )

    rows = train_rows(progress)
    assert [row["step"] for row in rows] == list(range(1, 13))
    scores = [row["objective/scores"] for row in rows]  # in standard deviations of the token scores
    assert statistics.fmean(scores[-3:]) > statistics.fmean(scores[:3]) + 0.5, scores
    assert rows[-1]["objective/kl"] > 0
    for name in (
        "objective/entropy",
        "objective/non_score_reward",
        "objective/rlhf_reward",
        "policy/approxkl_avg",
        "policy/clipfrac_avg",
        "loss/policy_avg",
        "loss/value_avg",
        "val/clipfrac_avg",
        "val/num_eos_tokens",
        "val/ratio",
        "lr",
        "completions/mean_length",
    ):
        assert name in rows[-1]
    assert result.steps == 12
    assert result.metrics["objective/kl"] == rows[-1]["objective/kl"]
    assert Path(result.output_dir, "config.json").is_file()
    assert any("value model initialised from" in message for message in progress.messages)


def test_the_first_ppo_pass_measures_the_rollout_policy_itself(tiny_model_dir, tokenizer, prompts_file, tmp_path):
    """Old and new log-probs are measured one way (dropout off, same alignment): before any update the
    ratio is exactly 1, so PPO's clip and approximate KL start from zero."""
    config = ppo_config(max_steps=1, ppo=PPOSettings(num_ppo_epochs=1, num_mini_batches=1))
    progress = RecordingProgress()
    run_rl(
        config,
        tiny_model_dir,
        tiny_model_dir,
        prompts_file,
        RunStore(tmp_path / "run"),
        progress,
        reward=EmbeddingDirectionReward(tokenizer, tiny_model_dir),
    )

    (row,) = train_rows(progress)
    assert row["val/ratio"] == pytest.approx(1.0, abs=1e-5)
    assert row["policy/approxkl_avg"] == pytest.approx(0.0, abs=1e-8)
    assert row["policy/clipfrac_avg"] == 0.0
    assert row["objective/kl"] == pytest.approx(0.0, abs=1e-4)  # the reference is the starting policy


def test_value_model_starts_from_a_reward_model_that_reads_the_policys_tokens(tiny_model_dir, tokenizer, tmp_path):
    reward_model_dir = Path(shutil.copytree(tiny_model_dir, tmp_path / "reward"))
    assert value_model_source(tiny_model_dir, reward_model_dir, tokenizer)[0] == reward_model_dir
    adapter_only = tmp_path / "adapter"
    adapter_only.mkdir()
    assert value_model_source(tiny_model_dir, adapter_only, tokenizer)[0] == tiny_model_dir


def test_cancelled_ppo_resumes_from_its_checkpoint_without_repeating_a_step(
    tiny_model_dir, tokenizer, prompts_file, tmp_path
):
    reward = EmbeddingDirectionReward(tokenizer, tiny_model_dir)
    store = RunStore(tmp_path / "run")
    config = ppo_config(held_out=2)
    interrupted = RecordingProgress(cancel_after=2)
    with pytest.raises(RunCancelled, match="stopped after step 2.*checkpoint-2"):
        run_rl(config, tiny_model_dir, tiny_model_dir, prompts_file, store, interrupted, reward=reward)
    assert (store.path("checkpoints") / "checkpoint-2").is_dir()

    resumed = RecordingProgress()
    result = run_rl(config, tiny_model_dir, tiny_model_dir, prompts_file, store, resumed, reward=reward)

    assert resumed.stages[0] == ("train", 4) and resumed.done_by_stage["train"] == 4
    steps = [row["step"] for row in train_rows(interrupted) + train_rows(resumed)]
    assert steps == [1, 2, 3, 4]
    assert result.steps == 4
    assert [row["step"] for row in read_curve(store)] == [0, 2, 4]

    # The resumed run continues the very sequence an uninterrupted run takes (prompts, samples, updates).
    straight = RecordingProgress()
    run_rl(
        config, tiny_model_dir, tiny_model_dir, prompts_file, RunStore(tmp_path / "straight"), straight, reward=reward
    )
    expected = {row["step"]: row["objective/scores"] for row in train_rows(straight)}
    assert {row["step"]: row["objective/scores"] for row in train_rows(resumed)} == {
        step: pytest.approx(expected[step], abs=1e-6) for step in (3, 4)
    }


def test_ppo_with_lora_saves_the_adapter_and_the_merged_policy(tiny_model_dir, tokenizer, prompts_file, tmp_path):
    store = RunStore(tmp_path / "run")
    config = ppo_config(held_out=2, adapter="lora", max_steps=2, save_steps=1, save_total_limit=1)
    result = run_rl(
        config,
        tiny_model_dir,
        tiny_model_dir,
        prompts_file,
        store,
        RecordingProgress(),
        reward=EmbeddingDirectionReward(tokenizer, tiny_model_dir),
    )

    assert Path(result.adapter_dir, "adapter_config.json").is_file()
    assert Path(result.merged_dir, "config.json").is_file()
    assert result.output_dir == result.merged_dir
    assert json.loads(Path(result.adapter_dir, TRAINING_FORMAT_FILE).read_text()) == {"prompt_format": "raw_assistant"}
    assert [path.name for path in store.path("checkpoints").iterdir()] == ["checkpoint-2"]
    assert (store.path("checkpoints") / "checkpoint-2" / "value" / "adapter_config.json").is_file()
    assert store.read_json("final", "result.json") == result.to_dict()
    assert "held_out/reward_mean" in result.metrics
    assert 0 < result.trainable_parameter_count < result.parameter_count


def test_ppo_with_lora_reads_its_reference_and_reward_model_through_its_adapters_switched_off(
    tiny_model_dir, tokenizer, prompts_file, tmp_path
):
    """No second copy of either frozen model: the reference is the policy with its adapter off and the reward
    model the value model with its adapter off. Both must score exactly as the models loaded on their own,
    after training has moved the adapters (the value model's score head included)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from pipelines.training.rl.rewards import RewardFunction

    reward_model_dir = tmp_path / "reward"
    torch.manual_seed(3)
    AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=1).save_pretrained(reward_model_dir)
    tokenizer.save_pretrained(reward_model_dir)
    store = RunStore(tmp_path / "run")
    config = replace(
        ppo_config(held_out=3, adapter="lora", max_steps=2, learning_rate=1e-2, gradient_checkpointing=True),
        samples_per_eval=3,
    )  # with gradient checkpointing, as the cpu-demo preset trains
    progress = RecordingProgress()
    run_rl(config, tiny_model_dir, reward_model_dir, prompts_file, store, progress)

    assert any("reference: the policy's own weights with its LoRA adapter off" in m for m in progress.messages)
    assert any("reward model: the value model's own weights with its LoRA adapter off" in m for m in progress.messages)
    curve = read_curve(store)
    assert curve[0]["kl"] == pytest.approx(0.0, abs=1e-6)  # a fresh adapter changes nothing yet
    assert curve[-1]["kl"] > 0  # the reference stayed the starting policy while the policy moved
    shown = store.read_json("held_out", "samples", f"step-{curve[-1]['step']:07d}.json")["samples"]
    loaded = RewardFunction(reward_model_dir, max_length=config.training.max_length + config.max_new_tokens,
                            missing_eos_penalty=config.missing_eos_penalty)
    scores = loaded.score([[{"role": "user", "content": row["prompt"]}] for row in shown],
                          [row["response"] for row in shown], [row["ended"] for row in shown])
    assert [row["reward"] for row in shown] == pytest.approx(scores, abs=1e-3)
    # The value model's own score head was trained away from the reward model's, so equal scores above
    # mean the switched-off adapter really gave back the reward model's head.
    from safetensors.torch import load_file

    trained = load_file(str(store.path("checkpoints") / "checkpoint-2" / "value" / "adapter_model.safetensors"))
    (head,) = [tensor for name, tensor in trained.items() if name.endswith("score.weight")]
    original = load_file(str(reward_model_dir / "model.safetensors"))["score.weight"]
    assert not torch.allclose(head.float(), original.float())
