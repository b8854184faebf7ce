"""Reading pairwise artifacts lazily and sampling from them: the two row formats a campaign accepts.

(a) preference pairs: `prompt`, `chosen`, `rejected` (+ `chosen_config`, `rejected_config`, filter
    columns): the synthetic label is "chosen is better", i.e. side a;
(b) evaluation pairs: `prompt`, `response_a`, `response_b` (+ `model_a`, `model_b`, `judge_verdict`):
    the machine's label is `judge_verdict` when present.
Rows stream from the JSONL one at a time; sampling keeps reservoirs, so memory grows with the
sample, never with the artifact.
"""
from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.common.jsonl import read_numbered_jsonl_rows
from pipelines.errors import InvalidInputError

PREFERENCE = "preference"
EVALUATION = "evaluation"
TEXT_FIELDS = {PREFERENCE: ("prompt", "chosen", "rejected"), EVALUATION: ("prompt", "response_a", "response_b")}
CONFIG_PAIR = "config_pair"
MISSING_GROUP = "(none)"
MAX_GROUPS = 200
_LABEL_WORDS = {
    "a": "a", "response_a": "a", "model_a": "a", "1": "a", "first": "a", "left": "a",
    "b": "b", "response_b": "b", "model_b": "b", "2": "b", "second": "b", "right": "b",
    "tie": "tie", "draw": "tie", "equal": "tie", "both_good": "tie",
    "both_bad": "both_bad", "neither": "both_bad",
}


class PairProblem(ValueError):
    """A row that is not a usable pair; the message names the file, the line and the field."""


@dataclass(frozen=True)
class Pair:
    """One pair from the artifact, in the artifact's own sides (a = chosen / response_a)."""

    line: int
    prompt: str
    response_a: str
    response_b: str
    synthetic_label: str
    provenance: dict[str, Any] = field(default_factory=dict)


def _text(value: Any) -> str | None:
    """A string as is; a chat (list of role/content messages) as readable turns; anything else None."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(m, dict) and "content" in m for m in value):
        if len(value) == 1:
            return str(value[0]["content"])
        return "\n\n".join(f"{m.get('role', 'message')}: {m['content']}" for m in value)
    return None


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) of the artifact's JSONL; a broken line is a PairProblem naming it."""
    try:
        yield from read_numbered_jsonl_rows(path)
    except InvalidInputError as error:
        raise PairProblem(f"{error}.") from None


def detect_format(path: Path) -> str:
    """Which of the two pair formats the first row uses; a clear error if neither."""
    for line_number, row in _rows(path):
        if all(name in row for name in TEXT_FIELDS[PREFERENCE]):
            return PREFERENCE
        if all(name in row for name in TEXT_FIELDS[EVALUATION]):
            return EVALUATION
        raise PairProblem(
            f"line {line_number} of {path.name}: not a pair; expected `prompt`, `chosen`, `rejected` or "
            f"`prompt`, `response_a`, `response_b`, found {', '.join(sorted(row)) or 'no fields'}."
        )
    raise PairProblem(f"{path.name}: the artifact has no rows.")


def _machine_label(row: dict[str, Any], line_number: int, file_name: str) -> str:
    value = row.get("judge_verdict")
    if value is None or value == "":
        return ""
    text = str(value).strip()
    if text and text == str(row.get("model_a", "")):
        return "a"
    if text and text == str(row.get("model_b", "")):
        return "b"
    label = _LABEL_WORDS.get(text.lower().replace(" ", "_").replace("-", "_"))
    if label is None:
        raise PairProblem(
            f"line {line_number} of {file_name}: `judge_verdict` is {value!r}; expected A, B, tie, both_bad "
            "or one of the row's model names."
        )
    return label


def iter_pairs(path: Path, pair_format: str) -> Iterator[Pair]:
    """Every row of the artifact as a Pair, read lazily; the first bad row stops with its line."""
    prompt_field, a_field, b_field = TEXT_FIELDS[pair_format]
    for line_number, row in _rows(path):
        texts = []
        for name in (prompt_field, a_field, b_field):
            text = _text(row.get(name))
            if text is None:
                found = "missing" if name not in row else f"a {type(row[name]).__name__}"
                raise PairProblem(f"line {line_number} of {path.name}: field `{name}` must be text, found {found}.")
            texts.append(text)
        label = "a" if pair_format == PREFERENCE else _machine_label(row, line_number, path.name)
        provenance = {key: value for key, value in row.items() if key not in (prompt_field, a_field, b_field)}
        yield Pair(line_number, texts[0], texts[1], texts[2], label, provenance)


def group_of(pair: Pair, group_by: str) -> str:
    """The pair's group for stratification and breakdowns; `config_pair` names both sides' origins."""
    if not group_by:
        return ""
    values = pair.provenance
    if group_by == CONFIG_PAIR:
        for left, right in (("chosen_config", "rejected_config"), ("model_a", "model_b")):
            if left in values or right in values:
                return f"{values.get(left, '?')} vs {values.get(right, '?')}"
        return MISSING_GROUP
    value = values.get(group_by)
    if value is None or value == "":
        return MISSING_GROUP
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def allocate(group_sizes: dict[str, int], total: int) -> dict[str, int]:
    """Proportional allocation of `total` draws over groups (largest remainder), each group at least one.

    Proportional keeps the overall synthetic-label accuracy unbiased; the floor of one makes every
    group visible in the breakdown even when it is rare.
    """
    population = sum(group_sizes.values())
    total = min(total, population)
    if total <= 0:
        return dict.fromkeys(group_sizes, 0)
    groups = sorted(group_sizes)
    quotas = {g: total * group_sizes[g] / population for g in groups}
    counts = {g: min(group_sizes[g], math.floor(quotas[g])) for g in groups}
    if total >= len(groups):
        for g in groups:
            counts[g] = max(counts[g], 1)
    # Hand out what is left by largest remainder, then take back from the largest groups if the floor overshot.
    while sum(counts.values()) < total:
        open_groups = [g for g in groups if counts[g] < group_sizes[g]]
        best = max(open_groups, key=lambda g: (quotas[g] - counts[g], group_sizes[g], g))
        counts[best] += 1
    while sum(counts.values()) > total:
        best = max((g for g in groups if counts[g] > 1), key=lambda g: (counts[g] - quotas[g], g))
        counts[best] -= 1
    return counts


def sample_pairs(
    pairs: Iterable[Pair], *, size: int, group_by: str, stratified: bool, rng: random.Random
) -> tuple[list[tuple[Pair, str]], int]:
    """A uniform sample (per group when stratified) in random order, and the number of rows seen.

    Reservoir sampling (Algorithm R), one reservoir per group, so a large artifact is streamed once.
    """
    reservoirs: dict[str, list[Pair]] = {}
    seen: dict[str, int] = {}
    for pair in pairs:
        group = group_of(pair, group_by)
        key = group if stratified else ""
        if key not in reservoirs:
            if len(reservoirs) >= MAX_GROUPS:
                raise PairProblem(
                    f"column `{group_by}` has more than {MAX_GROUPS} distinct values; stratify by a column with fewer."
                )
            reservoirs[key], seen[key] = [], 0
        seen[key] += 1
        reservoir = reservoirs[key]
        if len(reservoir) < size:
            reservoir.append(pair)
        else:
            slot = rng.randrange(seen[key])
            if slot < size:
                reservoir[slot] = pair
    counts = allocate(seen, size) if stratified else {"": min(size, seen.get("", 0))}
    chosen: list[Pair] = []
    for key in sorted(reservoirs):
        chosen.extend(rng.sample(reservoirs[key], counts[key]))
    rng.shuffle(chosen)
    return [(pair, group_of(pair, group_by)) for pair in chosen], sum(seen.values())
