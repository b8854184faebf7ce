"""Novelty checks for generated prompts: exact match, ROUGE-L overlap, and embedding similarity.

The original rejects a prompt whose ROUGE-L F to any seed or accepted prompt is >= 0.5 (on BERT
word pieces); we tokenize into lower-cased words, and add a MiniLM cosine check that also catches
paraphrases with little word overlap.
"""
from __future__ import annotations

import re
from typing import Any

_WORD = re.compile(r"\w+", re.UNICODE)


def normalized(text: str) -> str:
    """The form two prompts share when they are "the same": case, spacing and final punctuation ignored."""
    return " ".join(text.casefold().split()).rstrip(" .?!")


def words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def rouge_l(candidate: list[str], reference: list[str]) -> float:
    """ROUGE-L F1 of two token lists (longest common subsequence)."""
    if not candidate or not reference:
        return 0.0
    previous = [0] * (len(reference) + 1)
    for token in candidate:
        current = [0]
        for column, other in enumerate(reference, start=1):
            current.append(previous[column - 1] + 1 if token == other else max(previous[column], current[-1]))
        previous = current
    common = previous[-1]
    if common == 0:
        return 0.0
    precision, recall = common / len(candidate), common / len(reference)
    return 2 * precision * recall / (precision + recall)


class NoveltyIndex:
    """The prompts seen so far (seeds and accepted ones), answering "why is this one not new?"."""

    def __init__(self, *, rouge_l_threshold: float | None, embedding_threshold: float | None, embedder: Any = None):
        self.rouge_l_threshold = rouge_l_threshold
        self.embedding_threshold = embedding_threshold
        self.embedder = embedder if embedding_threshold is not None else None
        self._normalized: set[str] = set()
        self._words: list[list[str]] = []
        self._vectors: Any = None  # a (count, dim) float tensor of unit vectors

    def add(self, texts: list[str]) -> None:
        for text in texts:
            self._normalized.add(normalized(text))
            self._words.append(words(text))
        if self.embedder is not None and texts:
            import torch

            vectors = self.embedder.encode(texts, convert_to_tensor=True, normalize_embeddings=True).float().cpu()
            self._vectors = vectors if self._vectors is None else torch.cat([self._vectors, vectors])

    def rejection(self, text: str) -> tuple[str, float] | None:
        """(`exact` | `rouge_l` | `embedding`, score) for a prompt that is not new, else None."""
        if normalized(text) in self._normalized:
            return "exact", 1.0
        if self.rouge_l_threshold is not None:
            tokens = words(text)
            best = max((rouge_l(tokens, other) for other in self._words), default=0.0)
            if best >= self.rouge_l_threshold:
                return "rouge_l", round(best, 4)
        if self.embedder is not None and self._vectors is not None:
            vector = self.embedder.encode([text], convert_to_tensor=True, normalize_embeddings=True).float().cpu()
            best = float((self._vectors @ vector[0]).max())
            if best >= self.embedding_threshold:  # type: ignore[operator]
                return "embedding", round(best, 4)
        return None
