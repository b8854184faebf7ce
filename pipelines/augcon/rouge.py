"""ROUGE-L F over tokens, and AugCon's greedy dedup of ranked questions with it.

Two tokenizations (`AugConConfig.rouge_tokenizer`):

- "words" (ours, the default, no dependency): lower-cased words, each CJK character a token of its
  own, punctuation left out.
- "jieba" (the paper's `utils.calc_rouge`): `" ".join(jieba.lcut(text))` scored by `rouge_chinese`,
  whose ROUGE-L compares the whitespace-split words of the whole text, case and punctuation tokens
  kept. Needs the `jieba` package.

F is the harmonic mean of LCS precision and recall in both. `rouge_chinese` 1.0.3 (the release
AugCon's unpinned requirement installs) computes F = 2PR / (P + R + 1e-8), plain F1 with an epsilon;
the "jieba" variant keeps that epsilon. What the two tokenizations do to the dedup is written in
docs/methods/augcon.md.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pipelines.errors import InvalidConfigError

_TOKEN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[^\W_]+", re.UNICODE)
ROUGE_TOKENIZERS = ("words", "jieba")
"""The values of `AugConConfig.rouge_tokenizer`."""
_ORIGINAL_EPSILON = 1e-8
# rouge_chinese's sentence cut (`Rouge.cut_sent`): a line break after a sentence end (。！？?) not followed by a
# closing quote, after six dots, after two ellipses, and after a sentence end plus closing quote.
_SENTENCE_BREAKS = (
    (re.compile(r"([。！？?])([^”’])"), r"\1\n\2"),
    (re.compile(r"(\.{6})([^”’])"), r"\1\n\2"),
    (re.compile(r"(…{2})([^”’])"), r"\1\n\2"),
    (re.compile(r"([。！？?][”’])([^，。！？?])"), r"\1\n\2"),
)


def check_jieba_available() -> None:
    """Refuse the paper's tokenization where `jieba` is not installed, saying what to do instead."""
    if importlib.util.find_spec("jieba") is None:
        raise InvalidConfigError(
            'rouge_tokenizer "jieba" (the paper\'s ROUGE-L tokenization for Chinese) needs the jieba package, '
            "which is not installed here: install it (pip install jieba) where the site and the workers run, "
            'or use rouge_tokenizer "words"',
            field="rouge_tokenizer",
        )


def jieba_words(text: str) -> list[str]:
    """The words `rouge_chinese` compares after the paper's `" ".join(jieba.lcut(text))`.

    rouge_chinese cuts the text into sentences, drops empty ones, joins each one's whitespace-split
    words with single spaces and splits the whole on spaces (a sentence of spaces alone thus adds one
    empty word, as there).
    """
    import jieba

    joined = " ".join(jieba.lcut(text))
    for pattern, replacement in _SENTENCE_BREAKS:
        joined = pattern.sub(replacement, joined)
    sentences = [" ".join(piece.split()) for piece in joined.rstrip().split("\n") if len(piece) > 0]
    return [word for sentence in sentences for word in sentence.split(" ")]


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


def rouge_l_f(first: str | Sequence[str], second: str | Sequence[str], *, epsilon: float = 0.0) -> float:
    """ROUGE-L F1 of two texts (or token lists); symmetric, 1.0 for identical non-empty texts.

    `epsilon` is added to the denominator as rouge_chinese does (the "jieba" variant passes 1e-8).
    """
    first_tokens = tokenize(first) if isinstance(first, str) else list(first)
    second_tokens = tokenize(second) if isinstance(second, str) else list(second)
    common = lcs_length(first_tokens, second_tokens)
    if common == 0:
        return 0.0
    precision = common / len(second_tokens)
    recall = common / len(first_tokens)
    return 2 * precision * recall / (precision + recall + epsilon)


def tokenizer_for(name: str) -> tuple[Callable[[str], list[str]], float]:
    """The tokenizer and the F denominator's epsilon of a `rouge_tokenizer` value."""
    if name == "words":
        return tokenize, 0.0
    if name == "jieba":
        check_jieba_available()
        return jieba_words, _ORIGINAL_EPSILON
    raise InvalidConfigError(f"rouge_tokenizer must be one of {', '.join(ROUGE_TOKENIZERS)}, got {name!r}")


@dataclass(frozen=True)
class DedupDecision:
    kept: bool
    reason: str
    """"" when kept; else why: a near duplicate of a kept question, or the quota was full."""
    duplicate_of: int | None = None
    """Index (in the ranked input) of the kept question it repeats."""
    rouge: float | None = None


def greedy_dedup(
    ranked_questions: Sequence[str], *, threshold: float, quota: int, tokenizer: str = "words"
) -> list[DedupDecision]:
    """Walk questions best first; keep one unless its ROUGE-L F with a kept one exceeds `threshold`;
    stop keeping at `quota` (AugCon's `filter_queries`). One decision per input, in input order."""
    split, epsilon = tokenizer_for(tokenizer)
    kept_indices: list[int] = []
    kept_tokens: list[list[str]] = []
    decisions: list[DedupDecision] = []
    for index, question in enumerate(ranked_questions):
        if len(kept_indices) >= quota:
            decisions.append(DedupDecision(False, f"quota of {quota} questions for this chunk already kept"))
            continue
        tokens = split(question)
        best_score, best_index = 0.0, None
        for kept_index, other in zip(kept_indices, kept_tokens, strict=True):
            score = rouge_l_f(tokens, other, epsilon=epsilon)
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
