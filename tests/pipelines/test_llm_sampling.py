"""InverseCDFSampler draws from the distribution generate's temperature + top-p warpers + multinomial define."""

from __future__ import annotations

import pytest
import torch
from transformers import TemperatureLogitsWarper, TopPLogitsWarper

from pipelines.llm.sampling import InverseCDFSampler

ROWS = 40_000


def _frequencies(sampler: InverseCDFSampler, logits: torch.Tensor, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    tokens = sampler.draw(torch.softmax(logits.repeat(ROWS, 1) / sampler.temperature, dim=-1)).squeeze(1)
    return torch.bincount(tokens, minlength=logits.shape[-1]).double() / ROWS


def _reference(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """transformers' own warpers: the probabilities `multinomial` would sample from."""
    scores = TemperatureLogitsWarper(temperature)(None, logits.clone().unsqueeze(0))
    if top_p < 1.0:
        scores = TopPLogitsWarper(top_p)(None, scores)
    return torch.softmax(scores, dim=-1).squeeze(0).double()


@pytest.mark.parametrize("temperature", [0.3, 0.7, 1.0, 1.5])
def test_without_top_p_the_frequencies_are_the_softmax_at_the_temperature(temperature):
    logits = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, -3.0])
    frequencies = _frequencies(InverseCDFSampler(temperature), logits)
    expected = _reference(logits, temperature, 1.0)
    assert torch.allclose(frequencies, expected, atol=0.01), (frequencies, expected)


@pytest.mark.parametrize("top_p", [0.5, 0.8, 0.9, 0.95])
def test_top_p_keeps_the_same_tokens_as_transformers_and_samples_them_in_proportion(top_p):
    torch.manual_seed(3)
    logits = torch.randn(50) * 2
    frequencies = _frequencies(InverseCDFSampler(0.8, top_p), logits)
    expected = _reference(logits, 0.8, top_p)
    assert set(frequencies.nonzero().flatten().tolist()) <= set(expected.nonzero().flatten().tolist())
    assert torch.allclose(frequencies, expected, atol=0.012), (frequencies, expected)


def test_a_nucleus_wider_than_the_candidates_falls_back_to_the_full_sort():
    # Flat: the 0.88 nucleus holds 18 tokens (17 hold 0.85, 18 hold 0.90; a top_p of exactly 0.90
    # would put the cut on a float rounding); the tiers are 1, 16, then the sort.
    logits = torch.zeros(20)
    frequencies = _frequencies(InverseCDFSampler(1.0, 0.88, candidates=1), logits)
    assert (frequencies > 0).sum() == 18
    assert torch.allclose(frequencies[frequencies > 0], torch.full((18,), 1 / 18, dtype=torch.float64), atol=0.01)


def test_rows_that_need_different_tiers_in_one_batch_each_get_their_own_distribution():
    torch.manual_seed(2)
    peaked, flat, middle = torch.randn(20) * 6, torch.linspace(0.0, 0.5, 20), torch.randn(20)  # no ties
    logits = torch.stack([peaked, flat, middle]).repeat(ROWS // 3, 1)
    sampler = InverseCDFSampler(1.0, 0.9, candidates=2)  # tiers 2, 32 (> 20: the sort)
    tokens = sampler.draw(torch.softmax(logits, dim=-1)).squeeze(1).view(-1, 3)
    for column, row_logits in enumerate((peaked, flat, middle)):
        frequencies = torch.bincount(tokens[:, column], minlength=20).double() / tokens.shape[0]
        assert torch.allclose(frequencies, _reference(row_logits, 1.0, 0.9), atol=0.015), column


def test_a_token_of_probability_zero_is_never_drawn_even_at_the_end_of_the_vocabulary():
    logits = torch.tensor([0.0, 1.0, float("-inf"), 0.5, float("-inf")])
    for top_p in (1.0, 0.99):
        frequencies = _frequencies(InverseCDFSampler(1.0, top_p), logits, seed=5)
        assert frequencies[2] == 0 and frequencies[4] == 0


def test_the_processor_leaves_one_finite_score_per_row_for_generates_argmax():
    torch.manual_seed(0)
    scores = torch.randn(8, 100)
    processed = InverseCDFSampler(0.7, 0.9)(None, scores)
    assert processed.shape == scores.shape
    assert torch.isfinite(processed).sum(dim=-1).tolist() == [1] * 8


def test_the_same_seed_draws_the_same_tokens():
    logits = torch.randn(4, 1000)
    draws = []
    for _ in range(2):
        torch.manual_seed(11)
        draws.append(InverseCDFSampler(1.0, 0.95)(None, logits).argmax(dim=-1))
    assert torch.equal(draws[0], draws[1])


@pytest.mark.parametrize("temperature, top_p", [(0.0, 1.0), (-1.0, 1.0), (1.0, 0.0), (1.0, 1.5)])
def test_settings_outside_their_range_are_refused_by_name(temperature, top_p):
    with pytest.raises(ValueError, match="temperature|top_p"):
        InverseCDFSampler(temperature, top_p)


@pytest.mark.parametrize("width", [1024, 1300, 3000])
def test_a_large_vocabulary_is_searched_in_two_levels_with_the_same_distribution(width):
    """Mass spread over several 256-token blocks, zeros between and at the very end (1300, 3000: padded)."""
    logits = torch.full((width,), float("-inf"))
    chosen = torch.tensor([0, 255, 256, 700, width - 2])
    logits[chosen] = torch.tensor([0.0, 1.0, -0.5, 0.7, 0.2])
    torch.manual_seed(1)
    rows = 10_000  # a std of at most 0.005 per frequency
    tokens = InverseCDFSampler(1.0).draw(torch.softmax(logits, dim=-1).repeat(rows, 1)).squeeze(1)
    frequencies = torch.bincount(tokens, minlength=width).double() / rows
    expected = torch.softmax(logits, dim=-1).double()
    assert set(frequencies.nonzero().flatten().tolist()) <= set(chosen.tolist())
    assert torch.allclose(frequencies, expected, atol=0.02), frequencies[chosen]


def test_draw_takes_unnormalized_weights_as_the_processor_hands_them():
    torch.manual_seed(4)
    logits = torch.randn(30) * 2
    weights = torch.softmax(logits, dim=-1).repeat(ROWS, 1) * 37.5
    for top_p in (1.0, 0.8):
        torch.manual_seed(0)
        tokens = InverseCDFSampler(1.0, top_p).draw(weights).squeeze(1)
        frequencies = torch.bincount(tokens, minlength=30).double() / ROWS
        assert torch.allclose(frequencies, _reference(logits, 1.0, top_p), atol=0.012), top_p


def test_the_processor_leaves_its_input_scores_unchanged():
    scores = torch.randn(3, 2000)
    before = scores.clone()
    InverseCDFSampler(0.7, 0.95)(None, scores)
    assert torch.equal(scores, before)
