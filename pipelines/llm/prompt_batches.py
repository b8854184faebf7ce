"""Lay out a batch of tokenized prompts so their common prefix can be computed once.

Why: the prompts of one call usually open the same way: the chat template's system prompt, a
method's instructions, ALMoST's few-shot demonstrations. Run through the model once, that prefix's
keys and values serve every row. The rows are laid out as

    [shared prefix][padding][rest of the prompt]

so the prefix sits at the same positions in every row and each prompt still ends at the last
column, where decoding starts. The attention mask hides the padding in the middle; position ids
come from the mask (`cumsum - 1`), as `generate` computes them, so every token keeps the position
it has in its unpadded prompt. Without a prefix worth sharing this is plain left padding.
"""

from __future__ import annotations

import torch

MIN_SHARED_TOKENS = 8
"""A shorter common prefix is left to the batched prefill: its separate forward pass (one row, a few
tokens) costs about what it would save."""


def shared_prefix_length(token_lists: list[list[int]], minimum: int = MIN_SHARED_TOKENS) -> int:
    """Tokens every prompt of the batch starts with, keeping at least one token of each prompt after it.

    The last token of every prompt must stay out of the prefix: it is the one `generate` feeds to
    start decoding. 0 when there is a single prompt or the common part is shorter than `minimum`.
    """
    if len(token_lists) < 2:
        return 0
    shortest = min(len(tokens) for tokens in token_lists)
    length = 0
    for column in zip(*token_lists, strict=False):
        if length >= shortest - 1 or any(token != column[0] for token in column):
            break
        length += 1
    return length if length >= minimum else 0


def pad_behind_prefix(
    token_lists: list[list[int]], shared: int, pad_token_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """`(input_ids, attention_mask)`: each row is the shared prefix, padding, then the rest of its prompt.

    With `shared=0` this is left padding. All rows have the same width; the mask is 0 exactly on
    the padding.
    """
    width = max(len(tokens) for tokens in token_lists)
    input_ids = torch.full((len(token_lists), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(token_lists), width), dtype=torch.long)
    for row, tokens in enumerate(token_lists):
        rest = len(tokens) - shared
        input_ids[row, :shared] = torch.tensor(tokens[:shared], dtype=torch.long)
        input_ids[row, width - rest :] = torch.tensor(tokens[shared:], dtype=torch.long)
        attention_mask[row, :shared] = 1
        attention_mask[row, width - rest :] = 1
    return input_ids, attention_mask


def positions_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Each token's position in its unpadded prompt (padding gets 0), the way `generate` derives them."""
    return (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)


def plan_batches(
    order: list[int],
    lengths: list[int],
    *,
    samples: int,
    max_rows: int,
    max_new_tokens: int,
    cache_positions_budget: int | None = None,
) -> list[list[int]]:
    """Split prompts (indices, longest first) into batches of at most `max_rows` sequences (prompts x samples).

    With `cache_positions_budget` (rows x positions the KV cache may hold at once, from the memory
    budget), a batch of long prompts gets fewer rows: each row holds its batch's longest prompt
    plus `max_new_tokens` positions. Every batch has at least one prompt.
    """
    per_batch = max(1, max_rows // samples)
    batches: list[list[int]] = []
    start = 0
    while start < len(order):
        count = per_batch
        if cache_positions_budget is not None:
            positions_per_row = lengths[order[start]] + max_new_tokens
            count = max(1, min(count, cache_positions_budget // (samples * positions_per_row)))
        batches.append(order[start : start + count])
        start += count
    return batches
