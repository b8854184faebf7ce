"""What AFT's run page shows, read from the run directory (no Django): the prompts and one finished row.

The page is refreshed every second while the run is active, so each lookup reads only as far as it
must: the prompt list up to a limit, the batch files until the chosen prompt's row is found.
"""

from __future__ import annotations

from typing import Any

from pipelines.common.prompts import PROMPTS_FILE
from pipelines.common.store import RunStore

BATCH_FOLDER = "batches"
"""Where `run_aft` keeps one file per finished batch (`pipelines.common.batches.batch_file_name`)."""


def prompt_choices(store: RunStore, limit: int) -> list[dict[str, str]]:
    """The run's prompts in order, at most `limit`: `prompt_id` and the prompt's first 90 characters."""
    choices: list[dict[str, str]] = []
    if not store.exists(PROMPTS_FILE):
        return choices
    for row in store.read_jsonl(PROMPTS_FILE):
        choices.append({"prompt_id": row["prompt_id"], "label": row["prompt"][:90]})
        if len(choices) >= limit:
            break
    return choices


def find_row(store: RunStore, prompt_id: str | None = None) -> dict[str, Any] | None:
    """The finished row of `prompt_id` (default: the first finished one), reading batches until found."""
    batch_dir = store.path(BATCH_FOLDER)
    if not batch_dir.is_dir():
        return None
    for path in sorted(batch_dir.glob("batch-*.jsonl")):
        for row in store.read_jsonl(BATCH_FOLDER, path.name):
            if prompt_id is None or row["prompt_id"] == prompt_id:
                return row
    return None
