"""Agreement statistics as pure functions: kappas, Krippendorff's alpha, Wilson intervals, campaign summaries.

No Django here: the selectors turn a campaign into `ItemVotes` records and `summarize` does the rest,
so every figure on the statistics page can be checked against a hand computation.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

Z_95 = 1.959963984540054


def cohen_kappa(first: Sequence[Hashable], second: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two raters over the same items; None when undefined (no items, or chance = 1)."""
    if len(first) != len(second):
        raise ValueError("both raters must rate the same items")
    n = len(first)
    if n == 0:
        return None
    observed = sum(1 for x, y in zip(first, second, strict=True) if x == y) / n
    first_counts, second_counts = Counter(first), Counter(second)
    chance = sum(first_counts[c] * second_counts[c] for c in first_counts) / (n * n)
    if math.isclose(chance, 1.0):
        return None
    return (observed - chance) / (1 - chance)


def fleiss_kappa(counts_per_item: Sequence[Sequence[int]]) -> float | None:
    """Fleiss' kappa from an items x categories table of rating counts (the same number of raters per item)."""
    items = [list(row) for row in counts_per_item]
    if not items:
        return None
    raters = sum(items[0])
    if raters < 2 or any(sum(row) != raters for row in items):
        raise ValueError("Fleiss' kappa needs the same number (at least two) of ratings on every item")
    n_items = len(items)
    category_share = [sum(row[j] for row in items) / (n_items * raters) for j in range(len(items[0]))]
    per_item_agreement = [(sum(c * c for c in row) - raters) / (raters * (raters - 1)) for row in items]
    observed = sum(per_item_agreement) / n_items
    chance = sum(p * p for p in category_share)
    if math.isclose(chance, 1.0):
        return None
    return (observed - chance) / (1 - chance)


def krippendorff_alpha_nominal(units: Iterable[Sequence[Hashable | None]]) -> float | None:
    """Krippendorff's alpha for nominal data; each unit lists its values, None for a missing rating.

    Units with fewer than two values are not pairable and are ignored, as in Krippendorff (2011).
    """
    pairable = [[v for v in unit if v is not None] for unit in units]
    pairable = [unit for unit in pairable if len(unit) >= 2]
    coincidence: Counter[tuple[Hashable, Hashable]] = Counter()
    for unit in pairable:
        m = len(unit)
        counts = Counter(unit)
        for c, n_c in counts.items():
            for k, n_k in counts.items():
                pairs = n_c * (n_k - 1) if c == k else n_c * n_k
                if pairs:
                    coincidence[(c, k)] += pairs / (m - 1)
    total = sum(coincidence.values())
    if total <= 1:
        return None
    marginals: Counter[Hashable] = Counter()
    for (c, _k), value in coincidence.items():
        marginals[c] += value
    observed_disagreement = sum(v for (c, k), v in coincidence.items() if c != k)
    expected_disagreement = sum(marginals[c] * marginals[k] for c in marginals for k in marginals if c != k) / (
        total - 1
    )
    if expected_disagreement == 0:
        return None
    return 1 - observed_disagreement / expected_disagreement


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float] | None:
    """Wilson score interval for a proportion; honest near 0 and 1 and for small samples, unlike p ± z·se."""
    if trials <= 0:
        return None
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def majority(verdicts: Iterable[str]) -> str | None:
    """The most frequent verdict, or None when two verdicts share the top count (no majority)."""
    ranked = Counter(verdicts).most_common()
    if not ranked or (len(ranked) > 1 and ranked[0][1] == ranked[1][1]):
        return None
    return ranked[0][0]


@dataclass(frozen=True)
class ItemVotes:
    """One item's current human verdicts by annotator, with what the machine said."""

    item_id: int
    position: int
    synthetic_label: str
    group: str
    votes: dict[str, str] = field(default_factory=dict)

    @property
    def human_majority(self) -> str | None:
        return majority(self.votes.values())

    @property
    def unanimous(self) -> bool:
        return len(set(self.votes.values())) <= 1


def _proportion(successes: int, trials: int) -> dict[str, Any]:
    interval = wilson_interval(successes, trials)
    return {
        "agree": successes,
        "n": trials,
        "rate": successes / trials if trials else None,
        "low": interval[0] if interval else None,
        "high": interval[1] if interval else None,
    }


MAJORITY_MIN_JUDGMENTS = 2
"""An item needs at least this many human judgments before its most common verdict is a majority."""


def synthetic_agreement(items: Sequence[ItemVotes]) -> dict[str, Any]:
    """How often the machine's label equals a real human majority, with a 95% Wilson interval.

    The headline (`agree`, `n`, `rate`, `low`, `high`) counts items with at least two human
    judgments and a unique most common verdict: one annotator's verdict is not a majority, so
    items judged once are reported apart (`single_judgment`: agreement with that one human, the
    weaker evidence). Items whose humans split evenly are counted in `no_majority`, never as
    agreement or not.
    """
    labelled = [item for item in items if item.synthetic_label and item.votes]
    single = [item for item in labelled if len(item.votes) < MAJORITY_MIN_JUDGMENTS]
    several = [item for item in labelled if len(item.votes) >= MAJORITY_MIN_JUDGMENTS]
    decided = [item for item in several if item.human_majority is not None]
    agree = sum(1 for item in decided if item.human_majority == item.synthetic_label)
    single_agree = sum(1 for item in single if item.human_majority == item.synthetic_label)
    return {
        **_proportion(agree, len(decided)),
        "no_majority": len(several) - len(decided),
        "outcomes": _outcomes(decided),
        "single_judgment": {**_proportion(single_agree, len(single)), "outcomes": _outcomes(single)},
    }


def _outcomes(items: Sequence[ItemVotes]) -> dict[str, int]:
    """Confirmed, reversed (a <-> b) or what the humans said instead, per item."""
    return dict(
        Counter(
            "confirmed"
            if item.human_majority == item.synthetic_label
            else "reversed"
            if {item.human_majority, item.synthetic_label} == {"a", "b"}
            else f"human_{item.human_majority}"
            for item in items
        )
    )


def annotator_agreement(items: Sequence[ItemVotes]) -> dict[str, Any]:
    """Cohen's kappa per pair of annotators (and overall when there are exactly two), Fleiss' kappa
    over the items with the most common number of ratings, and Krippendorff's alpha over all items."""
    annotators = sorted({name for item in items for name in item.votes})
    pairwise = []
    for first, second in combinations(annotators, 2):
        shared = [item for item in items if first in item.votes and second in item.votes]
        pairwise.append(
            {
                "first": first,
                "second": second,
                "n": len(shared),
                "kappa": cohen_kappa([i.votes[first] for i in shared], [i.votes[second] for i in shared]),
                "raw_agreement": (sum(1 for i in shared if i.votes[first] == i.votes[second]) / len(shared))
                if shared
                else None,
            }
        )
    multi = [item for item in items if len(item.votes) >= 2]
    fleiss = None
    fleiss_items = 0
    fleiss_raters = 0
    if multi:
        fleiss_raters = Counter(len(item.votes) for item in multi).most_common(1)[0][0]
        same_count = [item for item in multi if len(item.votes) == fleiss_raters]
        categories = sorted({v for item in same_count for v in item.votes.values()})
        table = [[list(item.votes.values()).count(c) for c in categories] for item in same_count]
        fleiss = fleiss_kappa(table)
        fleiss_items = len(same_count)
    alpha = krippendorff_alpha_nominal([list(item.votes.values()) for item in multi])
    return {
        "annotators": annotators,
        "items_with_overlap": len(multi),
        "cohen": pairwise[0] if len(annotators) == 2 else None,
        "pairwise": pairwise,
        "fleiss_kappa": fleiss,
        "fleiss_items": fleiss_items,
        "fleiss_raters": fleiss_raters,
        "krippendorff_alpha": alpha,
        "unanimous_share": (sum(1 for item in multi if item.unanimous) / len(multi)) if multi else None,
    }


def summarize(items: Sequence[ItemVotes]) -> dict[str, Any]:
    """Everything the statistics page shows about agreement, overall and per group."""
    judged = [item for item in items if item.votes]
    groups = sorted({item.group for item in judged if item.group})
    by_group = [
        {
            "group": group,
            **synthetic_agreement([i for i in judged if i.group == group]),
            "judged_items": sum(1 for i in judged if i.group == group),
        }
        for group in groups
    ]
    disagreements = [
        item
        for item in judged
        if not item.unanimous or (item.synthetic_label and item.human_majority != item.synthetic_label)
    ]
    return {
        "judged_items": len(judged),
        "human_verdicts": dict(Counter(v for item in judged for v in item.votes.values())),
        "synthetic": synthetic_agreement(judged),
        "agreement": annotator_agreement(judged),
        "by_group": by_group,
        "disagreements": sorted(disagreements, key=lambda item: item.position),
    }
