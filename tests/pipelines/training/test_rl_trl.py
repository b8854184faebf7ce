"""RLOO and GRPO through TRL on the tiny random model: reward goes up on an easy reward, KL is reported,
and a cancelled run resumes from its checkpoint without repeating a step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.common.progress import RecordingProgress
from pipelines.common.store import RunStore
from pipelines.errors import RunCancelled
from pipelines.training.rl.config import RLConfig
from pipelines.training.rl.run import run_rl

from .conftest import tiny_training

pytestmark = pytest.mark.slow


class TokenClassReward:
    """A toy reward model: the mean, over the response's tokens, of how far each token's output embedding
    points along one fixed direction (tanh-squashed, about -1 to 1; about 0 for the untrained model).

    Easy to learn: the policy raises it by turning its last hidden state along that direction, which
    lifts a whole half of the vocabulary at once.
    """

    __name__ = "token_class_reward"

    def __init__(self, model_dir: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        weights = AutoModelForCausalLM.from_pretrained(model_dir).get_output_embeddings().weight.detach()
        direction = torch.randn(weights.shape[1], generator=torch.Generator().manual_seed(0))
        projection = weights @ direction
        self.token_reward = torch.tanh(3 * projection / projection.std())
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)

    def _mean(self, ids: list[int]) -> float:
        return float(self.token_reward[ids].mean()) if ids else 0.0

    def score(self, prompts, texts, ended=None):  # type: ignore[no-untyped-def]
        return [self._mean(self.tokenizer(text, add_special_tokens=False)["input_ids"]) for text in texts]

    def __call__(self, prompts, completions, completion_ids=None, **columns):  # type: ignore[no-untyped-def]
        return [self._mean(list(ids)) for ids in completion_ids]


def _prompts(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"Tell me about topic number {n}."}) + "\n" for n in range(12)))
    return path


def _config(algorithm: str, steps: int) -> RLConfig:
    return RLConfig(
        algorithm=algorithm,
        training=tiny_training(
            max_steps=steps, per_device_batch_size=4, learning_rate=1e-2, save_steps=2, adapter="full", torch_threads=1
        ),
        max_new_tokens=6,
        temperature=1.0,
        num_generations=4,
        held_out_prompts=2,
        eval_steps=2,
    )


def test_grpo_raises_an_easy_reward_and_reports_kl(tmp_path, tiny_model_dir):
    """GRPO here; RLOO trains through the same code (`trl_trainers.py`) in the resume test below and the
    worker tests, and PPO has its own reward test (test_rl_ppo.py)."""
    progress = RecordingProgress()
    store = RunStore(tmp_path / "run")
    result = run_rl(_config("grpo", 8), tiny_model_dir, tiny_model_dir, _prompts(tmp_path), store, progress,
                    reward=TokenClassReward(tiny_model_dir))

    rewards = [row["reward"] for row in progress.metric_rows if "reward" in row]
    assert len(rewards) == 8
    assert sum(rewards[-3:]) / 3 > sum(rewards[:2]) / 2 + 0.05, rewards
    held_out = [row for row in progress.metric_rows if "held_out/reward_mean" in row]
    assert [row["step"] for row in held_out] == [0, 2, 4, 6, 8]
    assert held_out[0]["held_out/kl"] == pytest.approx(0.0, abs=1e-4) and held_out[-1]["held_out/kl"] > 0
    assert result.steps == 8 and Path(result.output_dir, "refinery_training_format.json").is_file()
    assert store.exists("held_out", "samples", "step-0000008.json")


def test_a_cancelled_run_resumes_from_its_checkpoint_and_never_repeats_a_step(tmp_path, tiny_model_dir):
    store = RunStore(tmp_path / "run")
    reward = TokenClassReward(tiny_model_dir)
    first = RecordingProgress(cancel_after=3)
    with pytest.raises(RunCancelled, match="stopped at step"):
        run_rl(_config("rloo", 5), tiny_model_dir, tiny_model_dir, _prompts(tmp_path), store, first, reward=reward)
    first_steps = [row["step"] for row in first.metric_rows if "reward" in row]
    second = RecordingProgress()
    result = run_rl(_config("rloo", 5), tiny_model_dir, tiny_model_dir, _prompts(tmp_path), store, second, reward=reward)
    second_steps = [row["step"] for row in second.metric_rows if "reward" in row]
    assert first_steps == [1, 2, 3] and second_steps == [4, 5] and result.steps == 5
    assert any("resum" in message for message in second.messages)
    assert (store.root / "checkpoints" / "checkpoint-5").is_dir()
