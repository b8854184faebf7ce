"""The RL stage's prompts: read from a JSONL file, checked against the prompt length limit, split into
training and held-out prompts. No torch here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.errors import InvalidInputError
from pipelines.training.examples import Messages, split_held_out

PROMPT_FIELDS = ("prompt", "text", "instruction")
"""A prompt row's text is read from the first of these fields it has (a seed prompt set exports `text`)."""


@dataclass(frozen=True)
class RLPrompts:
    """Training and held-out prompts as chat messages, and what the length limit left out."""

    train: list[Messages]
    held_out: list[Messages]
    dropped_over_length: int = 0

    def summary(self) -> dict[str, int]:
        return {
            "train_prompts": len(self.train),
            "held_out_prompts": len(self.held_out),
            "prompts_dropped_over_length": self.dropped_over_length,
        }


def read_prompt_rows(path: str | Path) -> list[Messages]:
    """Every row's prompt as messages; a row without a prompt is refused with its file, line and field."""
    path = Path(path)
    prompts: list[Messages] = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise InvalidInputError(f"{path.name} line {line_number}: not JSON ({error.msg})") from error
            prompts.append(_row_prompt(row, f"{path.name} line {line_number}"))
    if not prompts:
        raise InvalidInputError(f"{path.name} holds no prompt")
    return prompts


def _row_prompt(row: Any, where: str) -> Messages:
    if not isinstance(row, dict):
        raise InvalidInputError(f"{where}: a row must be a JSON object")
    for name in PROMPT_FIELDS:
        value = row.get(name)
        if isinstance(value, str) and value.strip():
            return [{"role": "user", "content": value}]
        if isinstance(value, list) and value and all(isinstance(turn, dict) for turn in value):
            if value[-1].get("role") != "user":
                raise InvalidInputError(f"{where}: field `{name}` must end with a user turn")
            return [{"role": str(turn["role"]), "content": str(turn["content"])} for turn in value]
    raise InvalidInputError(f"{where}: no prompt (one of the fields {', '.join(PROMPT_FIELDS)} as text or turns)")


def split_prompts(
    prompts: list[Messages],
    *,
    held_out: int,
    prompt_tokens: list[int],
    max_prompt_length: int,
    over_length: str,
    seed: int,
) -> RLPrompts:
    """Leave out prompts over `max_prompt_length` tokens (or refuse, with `over_length` "refuse"), then hold
    `held_out` of the rest out of training (seeded).

    Why no cut: a prompt cut at either end asks another question, and the reward model would score the
    answer to the whole one; such prompts are dropped and counted ("cut" and "drop" alike), never cut.
    """
    over = [index for index, count in enumerate(prompt_tokens) if count > max_prompt_length]
    if over and over_length == "refuse":
        shown = ", ".join(f"prompt {index + 1} ({prompt_tokens[index]} tokens)" for index in over[:5])
        raise InvalidInputError(
            f"{len(over)} prompt(s) are longer than max_prompt_length {max_prompt_length}: {shown}; "
            "raise the limit or set over_length to drop"
        )
    kept = [prompt for index, prompt in enumerate(prompts) if index not in set(over)]
    if len(kept) <= held_out:
        raise InvalidInputError(
            f"{len(kept)} prompt(s) fit max_prompt_length {max_prompt_length} but {held_out} are to be held out: "
            "nothing would be left to train on; add prompts or hold out fewer"
        )
    fraction = held_out / len(kept) if held_out else 0.0
    train, evaluation = split_held_out(kept, fraction, seed=seed) if held_out else (kept, [])
    evaluation = evaluation[:held_out] if held_out else []
    return RLPrompts(train=train, held_out=evaluation, dropped_over_length=len(over))
