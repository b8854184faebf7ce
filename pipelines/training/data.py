"""From a dataset artifact (JSONL or parquet) to the token rows each trainer needs.

Rows are normalised first into plain records (a prompt as chat messages, completions as text),
then tokenized with the model's chat template; labels are -100 on prompt tokens so the loss
covers completions only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.errors import InvalidInputError
from pipelines.training.config import validate_dataset_fields

IGNORE_INDEX = -100
"""Label of tokens that carry no loss (prompt and padding)."""

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class PromptCompletion:
    """One SFT example: the conversation so far, and the assistant reply to learn."""

    prompt: Messages
    completion: str


@dataclass(frozen=True)
class PreferencePair:
    """One comparison: a prompt and a better (chosen) and worse (rejected) assistant reply."""

    prompt: Messages
    chosen: str
    rejected: str


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a `.jsonl`/`.json` lines file or a `.parquet` file, as dicts."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"{path}: no such dataset file")
    if path.suffix == ".parquet":
        import pyarrow.parquet as parquet

        return parquet.read_table(path).to_pylist()
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise InvalidInputError(f"line {line_number} of {path.name}: not valid JSON ({error.msg})") from error
            if not isinstance(row, dict):
                raise InvalidInputError(
                    f"line {line_number} of {path.name}: expected a JSON object, found {type(row).__name__}"
                )
            rows.append(row)
    if not rows:
        raise InvalidInputError(f"{path.name} holds no rows")
    return rows


def _columns(rows: list[dict[str, Any]]) -> set[str]:
    # Fields present in every row: a field missing from some rows is as good as missing.
    columns = set(rows[0])
    for row in rows[1:]:
        columns &= set(row)
    return columns


def _as_messages(value: Any, where: str) -> Messages:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if isinstance(value, list) and all(isinstance(m, dict) and "role" in m and "content" in m for m in value):
        return [{"role": str(m["role"]), "content": str(m["content"])} for m in value]
    raise InvalidInputError(f"{where}: expected text or a list of {{role, content}} messages")


def _split_last_assistant(value: Any, where: str) -> tuple[Messages, str]:
    """A conversation ending in an assistant turn -> (the turns before it, its text)."""
    messages = _as_messages(value, where)
    if not messages or messages[-1]["role"] != "assistant":
        raise InvalidInputError(f"{where}: the conversation must end with an assistant message")
    return messages[:-1], messages[-1]["content"]


def _completion_text(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    return _split_last_assistant(value, where)[1]


def sft_examples(rows: list[dict[str, Any]], *, include_context: bool = False) -> list[PromptCompletion]:
    """Normalise SFT rows: `messages`, `prompt`/`response` (or `completion`), or `question`/`answer` (+ `context`)."""
    layout = validate_dataset_fields("sft", _columns(rows))
    examples = []
    for index, row in enumerate(rows, start=1):
        where = f"row {index}"
        if layout == ("messages",):
            prompt, completion = _split_last_assistant(row["messages"], f"{where} `messages`")
            if not prompt:
                raise InvalidInputError(f"{where} `messages`: needs a user turn before the assistant reply")
        elif layout == ("question", "answer"):
            question = str(row["question"])
            context = row.get("context")
            if include_context and context:
                question = f"{context}\n\n{question}"
            prompt, completion = [{"role": "user", "content": question}], str(row["answer"])
        else:
            prompt = _as_messages(row["prompt"], f"{where} `prompt`")
            completion = _completion_text(row[layout[1]], f"{where} `{layout[1]}`")
        examples.append(PromptCompletion(prompt=prompt, completion=completion))
    return examples


def preference_pairs(rows: list[dict[str, Any]]) -> list[PreferencePair]:
    """Normalise comparisons: `prompt`/`chosen`/`rejected`, SPIN's `real`/`generated`, or conversational chosen/rejected."""
    layout = validate_dataset_fields("preference", _columns(rows))
    pairs = []
    for index, row in enumerate(rows, start=1):
        where = f"row {index}"
        if layout == ("prompt", "chosen", "rejected"):
            prompt = _as_messages(row["prompt"], f"{where} `prompt`")
            chosen = _completion_text(row["chosen"], f"{where} `chosen`")
            rejected = _completion_text(row["rejected"], f"{where} `rejected`")
        else:
            # SPIN: real = chosen, generated = rejected; both are [user, assistant] conversations.
            better, worse = ("real", "generated") if layout == ("real", "generated") else ("chosen", "rejected")
            prompt, chosen = _split_last_assistant(row[better], f"{where} `{better}`")
            worse_prompt, rejected = _split_last_assistant(row[worse], f"{where} `{worse}`")
            if worse_prompt != prompt:
                raise InvalidInputError(f"{where}: `{better}` and `{worse}` must share the same turns before the reply")
        pairs.append(PreferencePair(prompt=prompt, chosen=chosen, rejected=rejected))
    return pairs


def load_sft_examples(path: str | Path, *, include_context: bool = False) -> list[PromptCompletion]:
    return sft_examples(read_rows(path), include_context=include_context)


def load_preference_pairs(path: str | Path) -> list[PreferencePair]:
    return preference_pairs(read_rows(path))


def split_held_out(items: list[Any], fraction: float, seed: int) -> tuple[list[Any], list[Any]]:
    """(train, held_out): a seeded shuffle, then the last `fraction` (at least one item) held out."""
    if fraction <= 0 or len(items) < 2:
        return list(items), []
    import random

    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    held = max(1, round(len(items) * fraction))
    held = min(held, len(items) - 1)
    return [items[i] for i in sorted(order[:-held])], [items[i] for i in sorted(order[-held:])]


# --- tokenization -------------------------------------------------------------------------------


def _chat_text(tokenizer: Any, messages: Messages, *, add_generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def encode_prompt_completions(
    tokenizer: Any,
    prompts: list[Messages],
    completions: list[str],
    *,
    max_length: int,
    max_prompt_length: int,
) -> list[tuple[list[int], list[int]]]:
    """(prompt_ids, completion_ids) per example, through the chat template.

    The completion's tokens are what the template adds after the generation prompt (the reply and
    its end-of-turn marker). A prompt longer than `max_prompt_length` keeps its last tokens; the
    completion is then cut to fit `max_length`.
    """
    prompt_texts = [_chat_text(tokenizer, prompt, add_generation_prompt=True) for prompt in prompts]
    full_texts = [
        _chat_text(tokenizer, [*prompt, {"role": "assistant", "content": completion}], add_generation_prompt=False)
        for prompt, completion in zip(prompts, completions, strict=True)
    ]
    prompt_ids_list = tokenizer(prompt_texts, add_special_tokens=False)["input_ids"]
    full_ids_list = tokenizer(full_texts, add_special_tokens=False)["input_ids"]
    encoded = []
    for prompt_ids, full_ids, completion in zip(prompt_ids_list, full_ids_list, completions, strict=True):
        if full_ids[: len(prompt_ids)] == prompt_ids:
            completion_ids = full_ids[len(prompt_ids) :]
        else:  # a template whose reply rendering changes the prompt's last tokens
            completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
            if tokenizer.eos_token_id is not None:
                completion_ids = [*completion_ids, tokenizer.eos_token_id]
        prompt_ids = prompt_ids[-max_prompt_length:]
        completion_ids = completion_ids[: max_length - len(prompt_ids)]
        encoded.append((list(prompt_ids), list(completion_ids)))
    return encoded


def encode_sft(
    tokenizer: Any, examples: list[PromptCompletion], *, max_length: int, max_prompt_length: int
) -> list[dict[str, list[int]]]:
    """Token rows with labels masked on the prompt: loss on completions only."""
    encoded = encode_prompt_completions(
        tokenizer,
        [example.prompt for example in examples],
        [example.completion for example in examples],
        max_length=max_length,
        max_prompt_length=max_prompt_length,
    )
    return [
        {"input_ids": prompt_ids + completion_ids, "labels": [IGNORE_INDEX] * len(prompt_ids) + completion_ids}
        for prompt_ids, completion_ids in encoded
        if completion_ids
    ]


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


def encode_preference(
    tokenizer: Any, pairs: list[PreferencePair], *, max_length: int, max_prompt_length: int
) -> list[dict[str, list[int]]]:
    """Per pair: the prompt's tokens and each reply's tokens (both cut to fit `max_length` with the prompt)."""
    prompts = [pair.prompt for pair in pairs]
    chosen = encode_prompt_completions(
        tokenizer, prompts, [p.chosen for p in pairs], max_length=max_length, max_prompt_length=max_prompt_length
    )
    rejected = encode_prompt_completions(
        tokenizer, prompts, [p.rejected for p in pairs], max_length=max_length, max_prompt_length=max_prompt_length
    )
    features = []
    for index, ((prompt_ids, chosen_ids), (_, rejected_ids)) in enumerate(zip(chosen, rejected, strict=True)):
        if not chosen_ids or not rejected_ids:
            raise InvalidInputError(
                f"row {index + 1}: the prompt fills max_length ({max_length}) and leaves no room for the replies; "
                "raise max_length or lower max_prompt_length"
            )
        features.append(
            {"index": index, "prompt_ids": prompt_ids, "chosen_ids": chosen_ids, "rejected_ids": rejected_ids}
        )
    return features


# --- batching (torch imported inside: only trainers call these) ----------------------------------


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
