"""The answer cache: one file per (model, decoding config, prompt), so re-evaluations reuse answers.

A model answering a prompt set is the slow part of an evaluation; the same checkpoint with the same
decoding is compared against many baselines and judged by many judges. Files appear atomically, so a
file that exists is a complete answer, and a crashed run leaves nothing half written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipelines.common.store import atomic_writer
from pipelines.evaluation.config import prompt_cache_key


class AnswerCache:
    """`root/<model key>/<decoding key>/<prompt key[:2]>/<prompt key>.json`."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, model_key: str, decoding_key: str, prompt: str) -> Path:
        prompt_key = prompt_cache_key(prompt)
        return self.root / model_key[:32] / decoding_key[:32] / prompt_key[:2] / f"{prompt_key}.json"

    def get(self, model_key: str, decoding_key: str, prompt: str) -> dict[str, Any] | None:
        path = self.path(model_key, decoding_key, prompt)
        if not path.exists():
            return None
        entry = json.loads(path.read_text(encoding="utf-8"))
        # A hash prefix collision would hand back another prompt's answer: check the full text.
        return entry if entry.get("prompt") == prompt else None

    def put(self, model_key: str, decoding_key: str, prompt: str, entry: dict[str, Any]) -> Path:
        path = self.path(model_key, decoding_key, prompt)
        with atomic_writer(path) as handle:
            json.dump(
                {**entry, "prompt": prompt, "model_key": model_key, "decoding_key": decoding_key},
                handle,
                ensure_ascii=False,
            )
        return path
