"""How much of a Context-Split-Tree sub-context comes from its parent: ROUGE-L recall against the parent.

The CST prompt asks the model to divide a context into two sub-contexts, "adjusting each one where
needed so that it can be read and understood on its own". A small model often writes instead a
sentence that appears nowhere in the parent, and every question asked below it is then about
invented text. Grounding is the share of the sub-context's words that appear in the parent in the
same order: the longest common subsequence of their words over the sub-context's word count
(ROUGE-L recall with the parent as the reference, on `rouge.tokenize`'s lower-cased words). A
verbatim split scores 1.0; a split rewritten for coherence (a pronoun replaced by its noun, a
clause joined) keeps most words in order and scores high; an invented sentence scores near the
share of common words it happens to share.
"""

from __future__ import annotations

from pipelines.augcon.rouge import lcs_length, tokenize


def split_grounding(sub_context: str, parent_context: str) -> float:
    """Share of `sub_context`'s words found in order in `parent_context`, in [0, 1] (0 for no words)."""
    sub_words = tokenize(sub_context)
    if not sub_words:
        return 0.0
    return lcs_length(sub_words, tokenize(parent_context)) / len(sub_words)
