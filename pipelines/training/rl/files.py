"""Where an RL run keeps its held-out figures and responses, and how to read them back. No torch here:
the run pages read these files in the web process."""

from __future__ import annotations

from typing import Any

from pipelines.common.store import RunStore

CURVE_FILE = "held_out/curve.jsonl"
SAMPLES_DIR = "held_out/samples"


def read_curve(store: RunStore) -> list[dict[str, Any]]:
    """The held-out figures recorded so far, one row per step (a resumed run's repeated step: the last one)."""
    if not store.exists(CURVE_FILE):
        return []
    by_step: dict[int, dict[str, Any]] = {}
    for row in store.read_jsonl(CURVE_FILE):
        by_step[int(row["step"])] = row
    return [by_step[step] for step in sorted(by_step)]
