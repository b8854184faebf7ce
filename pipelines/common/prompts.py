"""The prompt snapshot of a run: `prompts.jsonl` in the run directory, `{"prompt_id", "prompt"}` rows.

A prompt set on the site can change while a run is queued or resumed, so whoever starts a run
copies the prompts into the run directory once, and every attempt of the run reads that copy: a
resume answers exactly the prompts the first attempt started on. Generate, AFT, SPIN and
evaluation all read their prompts this way.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pipelines.common.jsonl import line_error, read_numbered_jsonl_rows
from pipelines.common.store import RunStore
from pipelines.errors import InvalidInputError

PROMPTS_FILE = "prompts.jsonl"

Prompt = str | list[dict[str, Any]]
"""A prompt's text, or a conversation so far (SPIN's multi-turn prompts) ending with the user's message."""


def numbered_prompts(prompts: Iterable[Prompt]) -> Iterator[dict[str, Any]]:
    """Snapshot rows for prompts that have no ids of their own: `p000000`, `p000001`, ... by position."""
    for position, prompt in enumerate(prompts):
        yield {"prompt_id": f"p{position:06d}", "prompt": prompt}


def write_prompts(store: RunStore, rows: Iterable[dict[str, Any]]) -> Path:
    """Write the snapshot unless the run directory has one: a resumed run keeps the prompts it started on.

    `rows` need `prompt_id` and `prompt` (see `numbered_prompts`); other fields are dropped. They
    are only read when the snapshot is written, so a caller can pass a lazy iterable.
    """
    if not store.exists(PROMPTS_FILE):
        store.write_jsonl(({"prompt_id": row["prompt_id"], "prompt": row["prompt"]} for row in rows), PROMPTS_FILE)
    return store.path(PROMPTS_FILE)


def load_prompts(store: RunStore, *, allow_conversations: bool = True) -> list[dict[str, Any]]:
    """The snapshot's rows; every row needs a unique `prompt_id` and a non-empty `prompt`.

    `allow_conversations=False` for a method that only takes text prompts (evaluation's judge
    compares answers to one instruction).
    """
    if not store.exists(PROMPTS_FILE):
        raise InvalidInputError(f"{PROMPTS_FILE}: missing from the run directory {store.root}")
    wanted = (
        "a non-empty `prompt` (text, or a conversation of {role, content} messages ending with a user message)"
        if allow_conversations
        else "a non-empty text `prompt`"
    )
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for line_number, row in read_numbered_jsonl_rows(store.path(PROMPTS_FILE)):
        prompt_id, prompt = str(row.get("prompt_id", "")), row.get("prompt")
        if not prompt_id or not (_is_text(prompt) or (allow_conversations and _is_conversation(prompt))):
            raise line_error(PROMPTS_FILE, line_number, f"needs `prompt_id` and {wanted}")
        if prompt_id in seen:
            raise line_error(PROMPTS_FILE, line_number, f"duplicate prompt_id {prompt_id!r}")
        seen.add(prompt_id)
        rows.append({"prompt_id": prompt_id, "prompt": prompt})
    if not rows:
        raise InvalidInputError(f"{PROMPTS_FILE}: no prompts to answer")
    return rows


def _is_text(prompt: Any) -> bool:
    return isinstance(prompt, str) and bool(prompt.strip())


def _is_conversation(prompt: Any) -> bool:
    """A conversation so far: messages with a role and content, the last one the user's."""
    return (
        isinstance(prompt, list)
        and bool(prompt)
        and all(isinstance(message, dict) and {"role", "content"} <= set(message) for message in prompt)
        and prompt[-1]["role"] == "user"
    )
