"""Dataset layouts: which columns each trainer accepts, checked before a run is queued (no torch)."""

from __future__ import annotations

from pipelines.errors import InvalidConfigError, InvalidInputError

# Which columns each trainer accepts, as alternatives; the first is the one named in errors.
DATASET_LAYOUTS: dict[str, list[tuple[str, ...]]] = {
    "sft": [("prompt", "response"), ("messages",), ("question", "answer"), ("prompt", "completion")],
    "preference": [("prompt", "chosen", "rejected"), ("real", "generated"), ("chosen", "rejected")],
}
DATASET_LAYOUTS["reward"] = DATASET_LAYOUTS["preference"]
_LAYOUT_DESCRIPTIONS = {
    "sft": "SFT needs prompt, response (or chat `messages`, or question, answer)",
    "preference": "preference training needs prompt, chosen, rejected (or SPIN's real, generated)",
    "reward": "reward-model training needs prompt, chosen, rejected",
}


def validate_dataset_fields(kind: str, columns: list[str] | set[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Return the layout the columns match, or raise InvalidInputError naming the first missing field."""
    if kind not in DATASET_LAYOUTS:
        raise InvalidConfigError(f"unknown training kind {kind!r}; choose sft, preference or reward")
    present = set(columns)
    for layout in DATASET_LAYOUTS[kind]:
        if present.issuperset(layout):
            return layout
    # Name the missing field of the layout the dataset comes closest to (ties: the primary layout).
    closest = max(DATASET_LAYOUTS[kind], key=lambda layout: len(present & set(layout)) / len(layout))
    missing = next(name for name in closest if name not in present)
    found = ", ".join(sorted(present)) or "none"
    raise InvalidInputError(f"the dataset has no `{missing}` field; {_LAYOUT_DESCRIPTIONS[kind]} (found: {found})")
