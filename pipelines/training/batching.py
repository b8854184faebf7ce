"""Token rows into padded tensor batches for the trainers (torch is imported inside: only trainers call these)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pipelines.training.encoding import IGNORE_INDEX


def collate_sft(features: list[dict[str, list[int]]], pad_token_id: int) -> dict[str, Any]:
    """Right-pad to the longest row of the batch; packed rows get position_ids and no attention mask."""
    import torch

    longest = max(len(feature["input_ids"]) for feature in features)
    input_ids = torch.full((len(features), longest), pad_token_id, dtype=torch.long)
    labels = torch.full((len(features), longest), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(features), longest), dtype=torch.long)
    packed = "position_ids" in features[0]
    position_ids = torch.zeros((len(features), longest), dtype=torch.long)
    for row, feature in enumerate(features):
        length = len(feature["input_ids"])
        input_ids[row, :length] = torch.tensor(feature["input_ids"])
        labels[row, :length] = torch.tensor(feature["labels"])
        attention_mask[row, :length] = 1
        if packed:
            position_ids[row, :length] = torch.tensor(feature["position_ids"])
            # Padding becomes one more packed segment (positions from 0), masked from the loss.
            position_ids[row, length:] = torch.arange(longest - length)
    if packed:
        return {"input_ids": input_ids, "labels": labels, "position_ids": position_ids}
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}


def collate_pairs(features: list[dict[str, Any]], pad_token_id: int) -> dict[str, Any]:
    """One batch of 2B rows, the B chosen sequences then the B rejected ones, right-padded to the longest.

    `labels` is -100 outside the replies. `completion_start` is the first reply position in the whole
    batch: the model computes logits from there only. Reference log-probs, when present, ride along.
    """
    import torch

    sequences = [f["prompt_ids"] + f["chosen_ids"] for f in features] + [
        f["prompt_ids"] + f["rejected_ids"] for f in features
    ]
    prompt_lengths = [len(f["prompt_ids"]) for f in features] * 2
    longest = max(len(sequence) for sequence in sequences)
    input_ids = torch.full((len(sequences), longest), pad_token_id, dtype=torch.long)
    labels = torch.full((len(sequences), longest), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    for row, (sequence, prompt_length) in enumerate(zip(sequences, prompt_lengths, strict=True)):
        tokens = torch.tensor(sequence)
        input_ids[row, : len(sequence)] = tokens
        labels[row, prompt_length : len(sequence)] = tokens[prompt_length:]
        attention_mask[row, : len(sequence)] = 1
    batch: dict[str, Any] = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "labels": labels,
        "completion_start": torch.tensor(min(prompt_lengths)),
        "index": torch.tensor([f["index"] for f in features]),
    }
    if "ref_chosen_logps" in features[0]:
        batch["ref_chosen_logps"] = torch.tensor([f["ref_chosen_logps"] for f in features], dtype=torch.float64)
        batch["ref_rejected_logps"] = torch.tensor([f["ref_rejected_logps"] for f in features], dtype=torch.float64)
    return batch


def padded_batches(sequences: list[list[int]], batch_size: int, pad_token_id: int) -> Iterator[tuple[Any, Any]]:
    """(input_ids, attention_mask) for `batch_size` sequences at a time, right-padded to each batch's longest.

    What the scorers (reward model, AugCon's query scorer) run their model on: scoring needs no labels.
    """
    import torch

    for start in range(0, len(sequences), batch_size):
        chunk = sequences[start : start + batch_size]
        longest = max(len(sequence) for sequence in chunk)
        input_ids = torch.full((len(chunk), longest), pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(chunk), longest), dtype=torch.long)
        for row, sequence in enumerate(chunk):
            input_ids[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
            attention_mask[row, : len(sequence)] = 1
        yield input_ids, attention_mask
