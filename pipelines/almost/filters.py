"""The heuristic filters of ALMoST's comparisons, one small named rule each.

Response rules come from the original's `check_bad` (a response it marks "BAD" never enters a
pair); pair rules from its `check_length` and its reward-model loader (which drops chosen ==
rejected, after the pairs were chosen: see `cs.compare_prompt`). Rules are independent, so a table of cases can say which rule removes which pair:
"no_final_punctuation" fires on endings other than . ! ? : because "ends_with_question" owns ? and
: (together they reject exactly what the original's two tests reject).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable

from pipelines.almost.config import ComparisonConfig

_DONT_KNOW = re.compile(r"(don('|’)t|do not)\s+know", re.IGNORECASE)
# The original's check_bad matches `Human[:]` and `[<]Image[>]` with re.IGNORECASE: "human:" and "<IMAGE>" count too.
_HUMAN_TURN = re.compile(r"Human:", re.IGNORECASE)
_IMAGE = re.compile(r"<Image>", re.IGNORECASE)


def _too_short(text: str, config: ComparisonConfig) -> bool:
    return len(text) < config.min_response_chars


def _ends_with_question(text: str, config: ComparisonConfig) -> bool:
    return text.rstrip().endswith(("?", ":"))


def _starts_with_well(text: str, config: ComparisonConfig) -> bool:
    return text.lstrip().lower().startswith("well")


def _no_final_punctuation(text: str, config: ComparisonConfig) -> bool:
    return not text.rstrip().endswith((".", "!", "?", ":"))


def _dont_know(text: str, config: ComparisonConfig) -> bool:
    return bool(_DONT_KNOW.search(text))


def _contains_human_turn(text: str, config: ComparisonConfig) -> bool:
    return bool(_HUMAN_TURN.search(text))


def _contains_image(text: str, config: ComparisonConfig) -> bool:
    return bool(_IMAGE.search(text))


RESPONSE_RULE_TESTS: dict[str, Callable[[str, ComparisonConfig], bool]] = {
    "too_short": _too_short,
    "ends_with_question": _ends_with_question,
    "starts_with_well": _starts_with_well,
    "no_final_punctuation": _no_final_punctuation,
    "dont_know": _dont_know,
    "contains_human_turn": _contains_human_turn,
    "contains_image": _contains_image,
}


def response_failures(text: str, config: ComparisonConfig) -> set[str]:
    """Every response rule `text` breaks, switched on or not; an empty response breaks "empty" only."""
    if not text.strip():
        return {"empty"}
    return {name for name, test in RESPONSE_RULE_TESTS.items() if test(text, config)}


def length_bound(lengths: list[int], config: ComparisonConfig) -> float:
    """mean - factor x std (population std, as numpy's default in the original) of a prompt's response lengths."""
    if not lengths:
        return 0.0
    return statistics.fmean(lengths) - config.length_std_factor * statistics.pstdev(lengths)


def pair_failures(chosen: str, rejected: str, bound: float) -> set[str]:
    """Pair rules broken: "length" (chosen shorter than rejected and than `bound`) and "identical"."""
    failures = set()
    if len(chosen) < len(rejected) and len(chosen) < bound:
        failures.add("length")
    # Exact equality, as the original's reward-model loader (`x['chosen'] != x['rejected']`); both
    # responses were already stripped of newlines and spaces by `prompts.clean_response`.
    if chosen == rejected:
        failures.add("identical")
    return failures
