"""The reward model as the RL stage's reward function: (prompt, response) pairs in, one score each out.

The reward model formats its inputs as it was trained (`refinery_training_format.json` beside it:
ALMoST's raw `prompt\n\nAssistant: response<eos>` or a chat template), whatever the policy's own format.
Imports torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipelines.training.examples import Messages
from pipelines.training.reward import RewardScorer


class RewardFunction:
    """Scores responses with a trained reward model; a response cut at the token limit may pay a penalty.

    Callable the way TRL's GRPO/RLOO call a reward function (`prompts`, `completions`, and the dataset's
    other columns as keyword lists): the dataset carries each prompt's messages as JSON in `conversation`,
    because TRL hands the reward function the prompt as the policy saw it (templated text).
    """

    __name__ = "reward_model"  # TRL names the logged reward after the function

    def __init__(
        self,
        reward_model_dir: str | Path,
        *,
        batch_size: int = 8,
        max_length: int = 1024,
        device: str = "cpu",
        missing_eos_penalty: float | None = None,
        model: Any | None = None,
    ) -> None:
        """`model`: the reward model already in memory (see `RewardScorer`), else it is loaded from its directory."""
        self.scorer = RewardScorer(
            reward_model_dir, device=device, batch_size=batch_size, max_length=max_length, model=model
        )
        self.missing_eos_penalty = missing_eos_penalty

    def score(self, prompts: list[Messages], responses: list[str], ended: list[bool] | None = None) -> list[float]:
        """One reward per pair; `ended[i]` False (cut at the limit) subtracts `missing_eos_penalty` when set."""
        scores = self.scorer.score(prompts, responses)
        if self.missing_eos_penalty is not None and ended is not None:
            scores = [score - (0.0 if done else self.missing_eos_penalty) for score, done in zip(scores, ended, strict=True)]
        return scores

    def __call__(self, prompts: list[Any], completions: list[Any], **columns: Any) -> list[float]:
        conversations = [json.loads(text) for text in columns["conversation"]]
        texts = [_completion_text(completion) for completion in completions]
        ended = None
        if "completion_ids" in columns and self.missing_eos_penalty is not None:
            eos = self.scorer.tokenizer.eos_token_id
            ended = [bool(ids) and ids[-1] == eos for ids in columns["completion_ids"]]
        return self.score(conversations, texts, ended)


def _completion_text(completion: Any) -> str:
    """TRL hands a plain completion as text and a conversational one as [{"role": "assistant", ...}]."""
    if isinstance(completion, str):
        return completion
    return "".join(str(turn.get("content", "")) for turn in completion)
