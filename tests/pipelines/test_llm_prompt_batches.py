"""Prompt batches: the common prefix of a batch, and rows laid out as prefix, padding, rest of the prompt."""

from __future__ import annotations

import torch

from pipelines.llm.prompt_batches import pad_behind_prefix, plan_batches, positions_from_mask, shared_prefix_length

PREFIX = list(range(100, 110))  # 10 tokens


def test_shared_prefix_is_the_common_start_and_leaves_every_prompt_its_last_token():
    assert shared_prefix_length([PREFIX + [1, 2, 3], PREFIX + [1, 5], PREFIX + [1]]) == 10
    # The shortest prompt is all prefix: its last token stays out, for generate to feed.
    assert shared_prefix_length([PREFIX, PREFIX + [7, 8]]) == 9
    assert shared_prefix_length([PREFIX + [1], PREFIX + [1]]) == 10


def test_no_shared_prefix_for_one_prompt_or_a_short_common_start():
    assert shared_prefix_length([PREFIX + [1, 2]]) == 0
    assert shared_prefix_length([[1, 2, 3, 4, 5, 6, 7, 9], [1, 2, 3, 4, 5, 6, 7, 8, 9]]) == 0  # 7 < 8 tokens
    assert shared_prefix_length([[1, 2, 3, 4, 5, 6, 7, 9], [1, 2, 3, 4, 5, 6, 7, 8, 9]], minimum=3) == 7
    assert shared_prefix_length([[5] + PREFIX, [6] + PREFIX]) == 0


def test_rows_are_prefix_then_padding_then_the_rest_and_positions_skip_the_padding():
    prompts = [PREFIX + [1, 2, 3], PREFIX + [4]]
    input_ids, mask = pad_behind_prefix(prompts, 10, pad_token_id=0)
    assert input_ids.tolist() == [PREFIX + [1, 2, 3], PREFIX + [0, 0, 4]]
    assert mask.tolist() == [[1] * 13, [1] * 10 + [0, 0, 1]]
    # The last token of the short prompt is its 11th: position 10, as in the unpadded prompt.
    assert positions_from_mask(mask).tolist() == [list(range(13)), list(range(10)) + [0, 0, 10]]
    assert input_ids.dtype == mask.dtype == torch.long


def test_without_a_shared_prefix_rows_are_left_padded():
    input_ids, mask = pad_behind_prefix([[1, 2, 3], [4]], 0, pad_token_id=9)
    assert input_ids.tolist() == [[1, 2, 3], [9, 9, 4]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]


def test_batches_hold_at_most_max_rows_sequences_counting_samples():
    order, lengths = [0, 1, 2, 3, 4], [10, 9, 8, 7, 6]
    assert plan_batches(order, lengths, samples=1, max_rows=2, max_new_tokens=4) == [[0, 1], [2, 3], [4]]
    assert plan_batches(order, lengths, samples=3, max_rows=8, max_new_tokens=4) == [[0, 1], [2, 3], [4]]
    assert plan_batches(order, lengths, samples=16, max_rows=8, max_new_tokens=4) == [[0], [1], [2], [3], [4]]


def test_a_cache_budget_gives_batches_of_long_prompts_fewer_rows():
    order, lengths = [0, 1, 2, 3, 4, 5], [96, 90, 30, 20, 10, 8]
    # 2 samples x (96 + 4) positions per prompt: a 450-position budget holds 2 long prompts (400);
    # the short ones (2 x (30 + 4) = 68 each) fit 6 at a time, capped by max_rows=8 -> 4 prompts.
    batches = plan_batches(order, lengths, samples=2, max_rows=8, max_new_tokens=4, cache_positions_budget=450)
    assert batches == [[0, 1], [2, 3, 4, 5]]
    # A prompt alone over budget still runs, alone.
    assert plan_batches([0, 1], [500, 5], samples=1, max_rows=8, max_new_tokens=4, cache_positions_budget=100) == [
        [0],
        [1],
    ]
