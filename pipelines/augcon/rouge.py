"""ROUGE-L F over tokens, and AugCon's greedy dedup of ranked questions with it.

Tokens are lower-cased words, with each CJK character a token of its own (the paper tokenizes
Chinese with jieba; characters are the dependency-free stand-in). F is the usual harmonic mean of
LCS precision and recall (rouge-score's ROUGE-L F1).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_TOKEN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[^\W_]+", re.UNICODE)


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def lcs_length(first: Sequence[str], second: Sequence[str]) -> int:
    """Length of the longest common subsequence (two-row dynamic programme)."""
    if not first or not second:
        return 0
    previous = [0] * (len(second) + 1)
    for token in first:
        current = [0]
        for index, other in enumerate(second, start=1):
            current.append(previous[index - 1] + 1 if token == other else max(previous[index], current[index - 1]))
        previous = current
    return previous[-1]


def rouge_l_f(first: str | Sequence[str], second: str | Sequence[str]) -> float:
    """ROUGE-L F1 of two texts (or token lists); symmetric, 1.0 for identical non-empty texts."""
    first_tokens = tokenize(first) if isinstance(first, str) else list(first)
    second_tokens = tokenize(second) if isinstance(second, str) else list(second)
    common = lcs_length(first_tokens, second_tokens)
    if common == 0:
        return 0.0
    precision = common / len(second_tokens)
    recall = common / len(first_tokens)
    return 2 * precision * recall / (precision + recall)


@dataclass(frozen=True)
class DedupDecision:
    kept: bool
    reason: str
    """"" when kept; else why: a near duplicate of a kept question, or the quota was full."""
    duplicate_of: int | None = None
    """Index (in the ranked input) of the kept question it repeats."""
    rouge: float | None = None


def greedy_dedup(ranked_questions: Sequence[str], *, threshold: float, quota: int) -> list[DedupDecision]:
    """Walk questions best first; keep one unless its ROUGE-L F with a kept one exceeds `threshold`;
    stop keeping at `quota` (AugCon's `filter_queries`). One decision per input, in input order."""
    kept_indices: list[int] = []
    kept_tokens: list[list[str]] = []
    decisions: list[DedupDecision] = []
    for index, question in enumerate(ranked_questions):
        if len(kept_indices) >= quota:
            decisions.append(DedupDecision(False, f"quota of {quota} questions for this chunk already kept"))
            continue
        tokens = tokenize(question)
        best_score, best_index = 0.0, None
        for kept_index, other in zip(kept_indices, kept_tokens, strict=True):
            score = rouge_l_f(tokens, other)
            if score > best_score:
                best_score, best_index = score, kept_index
        if best_index is not None and best_score > threshold:
            decisions.append(
                DedupDecision(
                    False,
                    f"near duplicate (ROUGE-L F {best_score:.2f} > {threshold}) of a higher-scored question",
                    duplicate_of=best_index,
                    rouge=round(best_score, 4),
                )
            )
            continue
        kept_indices.append(index)
        kept_tokens.append(tokens)
        decisions.append(DedupDecision(True, ""))
    return decisions
