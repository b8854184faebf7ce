"""From a dataset artifact (JSONL or parquet) to plain training examples.

Every layout a trainer accepts (see `layouts.py`) becomes one record type per trainer, a prompt as
chat messages and its replies as text, before anything is tokenized: `PromptCompletion` for SFT,
`PreferencePair` for preference and reward training. The held-out split lives here too, because it
splits these examples before encoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.common.jsonl import read_jsonl_rows
from pipelines.errors import InvalidInputError
from pipelines.training.layouts import validate_dataset_fields

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class PromptCompletion:
    """One SFT example: the conversation so far, and the assistant reply to learn."""

    prompt: Messages
    completion: str
    proposals: tuple[str, ...] = ()
    """An AFT aggregation row's drafts (the end of its system message): what a forced cut shortens."""


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
    rows = list(read_jsonl_rows(path))
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
        proposals: tuple[str, ...] = ()
        if layout == ("messages",):
            prompt, completion = _split_last_assistant(row["messages"], f"{where} `messages`")
            if not prompt:
                raise InvalidInputError(f"{where} `messages`: needs a user turn before the assistant reply")
            proposals = _aggregation_proposals(row, prompt)
        elif layout == ("question", "answer"):
            question = str(row["question"])
            context = row.get("context")
            if include_context and context:
                question = f"{context}\n\n{question}"
            prompt, completion = [{"role": "user", "content": question}], str(row["answer"])
        else:
            prompt = _as_messages(row["prompt"], f"{where} `prompt`")
            completion = _completion_text(row[layout[1]], f"{where} `{layout[1]}`")
        examples.append(PromptCompletion(prompt=prompt, completion=completion, proposals=proposals))
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


def numbered_proposals(proposals: tuple[str, ...] | list[str]) -> str:
    """An aggregation prompt's drafts as they end its system message ("1. ...\n2. ...")."""
    # The aggregator's drafts as pipelines/aft/prompts.py numbers them ("1. ...\n2. ..."); a test checks
    # the two agree. Not imported: importing pipelines.aft loads the whole AFT package.
    return "\n".join(f"{index}. {proposal}" for index, proposal in enumerate(proposals, start=1))


def _aggregation_proposals(row: dict[str, Any], prompt: Messages) -> tuple[str, ...]:
    """The drafts of an AFT aggregation row whose system message ends with them, else ()."""
    proposals = row.get("proposals")
    if row.get("row_kind") != "aggregation" or not isinstance(proposals, list) or not proposals:
        return ()
    if not all(isinstance(proposal, str) for proposal in proposals):
        return ()
    if not prompt or prompt[0]["role"] != "system" or not prompt[0]["content"].endswith(numbered_proposals(proposals)):
        return ()
    return tuple(proposals)
