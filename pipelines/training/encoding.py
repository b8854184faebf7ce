"""The token rows each trainer trains on: SFT rows (labels masked on the prompt) and preference pairs
(the prompt's and each reply's tokens), fitted to the run's length limits, with their length report.

Tokenization is in `formatting.py`, the limits in `length_limits.py`; batching the rows into tensors is
in `batching.py`.
"""

from __future__ import annotations

from typing import Any

from pipelines.errors import InvalidInputError
from pipelines.training.examples import PreferencePair, PromptCompletion
from pipelines.training.length_limits import LengthReport, fit_prompt_completions

IGNORE_INDEX = -100
"""Label of tokens that carry no loss (prompt and padding)."""


def encode_sft_with_report(
    tokenizer: Any,
    examples: list[PromptCompletion],
    *,
    max_length: int,
    max_prompt_length: int,
    over_length: str = "cut",
    prompt_format: str = "chat_template",
    completion_only_loss: bool = True,
) -> tuple[list[dict[str, list[int]]], LengthReport]:
    """Token rows, labels masked on the prompt unless `completion_only_loss` is off, and the length report."""
    fitted, report = fit_prompt_completions(
        tokenizer,
        [example.prompt for example in examples],
        [[example.completion] for example in examples],
        max_length=max_length,
        max_prompt_length=max_prompt_length,
        over_length=over_length,
        prompt_format=prompt_format,
        proposals=[example.proposals for example in examples],
    )
    features = []
    for row in fitted:
        if row is None:
            continue
        prompt_ids, (completion_ids,) = row
        prompt_labels = prompt_ids if not completion_only_loss else [IGNORE_INDEX] * len(prompt_ids)
        features.append({"input_ids": prompt_ids + completion_ids, "labels": prompt_labels + completion_ids})
    return features, report


def pack_sft(features: list[dict[str, list[int]]], *, max_length: int) -> list[dict[str, list[int]]]:
    """Greedily pack whole examples into rows of at most `max_length` tokens.

    Each row carries `position_ids` restarting at 0 for every example; the model is then called
    without an attention mask, and transformers turns the restarts into a block-diagonal mask, so an
    example never attends to the one packed before it. No example is split.
    """
    packed: list[dict[str, list[int]]] = []
    current: dict[str, list[int]] = {"input_ids": [], "labels": [], "position_ids": []}
    for feature in features:
        length = len(feature["input_ids"])
        if current["input_ids"] and len(current["input_ids"]) + length > max_length:
            packed.append(current)
            current = {"input_ids": [], "labels": [], "position_ids": []}
        current["input_ids"] += feature["input_ids"]
        current["labels"] += feature["labels"]
        current["position_ids"] += list(range(length))
    if current["input_ids"]:
        packed.append(current)
    return packed


def encode_preference_with_report(
    tokenizer: Any,
    pairs: list[PreferencePair],
    *,
    max_length: int,
    max_prompt_length: int,
    over_length: str = "cut",
    prompt_format: str = "chat_template",
) -> tuple[list[dict[str, Any]], LengthReport]:
    """Per pair: the prompt's tokens and each reply's tokens, fitted by `over_length`, and the length report.

    `index` keeps the pair's position in the dataset, so a dropped pair leaves a gap rather than shifting
    the others (reference log-probs are cached by it).
    """
    fitted, report = fit_prompt_completions(
        tokenizer,
        [pair.prompt for pair in pairs],
        [[pair.chosen, pair.rejected] for pair in pairs],
        max_length=max_length,
        max_prompt_length=max_prompt_length,
        over_length=over_length,
        prompt_format=prompt_format,
    )
    features = []
    for index, row in enumerate(fitted):
        if row is None:
            continue
        prompt_ids, (chosen_ids, rejected_ids) = row
        features.append(
            {"index": index, "prompt_ids": prompt_ids, "chosen_ids": chosen_ids, "rejected_ids": rejected_ids}
        )
    if not features:
        raise InvalidInputError(f"no pair is left to train on: {report.message()}")
    return features, report
