"""Win-rate statistics on constructed judgments whose answers are known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipelines.errors import InvalidInputError
from pipelines.evaluation import stats


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_win_rate_counts_ties_half_and_its_standard_error_is_the_sample_sem():
    summary = stats.win_rate_summary([1, 1, 0, 0.5], bootstrap_rounds=100)
    assert summary.win_rate == pytest.approx(62.5)
    # deviations from 0.625: .375, .375, -.625, -.125 -> variance .6875 / 3; sem = sqrt(.229167) / 2
    assert summary.standard_error == pytest.approx(100 * math.sqrt(0.6875 / 3) / 2)
    assert (summary.wins, summary.ties, summary.losses, summary.prompts) == (2, 1, 1, 4)
    assert summary.discrete_win_rate == pytest.approx(62.5)


def test_discrete_win_rate_counts_single_judgments_of_both_orders():
    # Two prompts: one won in both orders, one won once and tied once -> preferences 1 and 0.75.
    summary = stats.win_rate_summary([1.0, 0.75], judgment_scores=[1, 1, 1, 0.5], bootstrap_rounds=50)
    assert summary.win_rate == pytest.approx(87.5)
    assert (summary.wins, summary.ties, summary.losses) == (3, 1, 0)
    assert summary.discrete_win_rate == pytest.approx((3 + 0.5) / 4 * 100)


def test_bootstrap_interval_matches_the_normal_approximation_and_is_seeded():
    values = [1.0] * 700 + [0.0] * 300
    low, high = stats.bootstrap_interval(values, rounds=4000, seed=7)
    half_width = 1.959964 * math.sqrt(0.7 * 0.3 / 1000)
    assert low == pytest.approx(0.7 - half_width, abs=0.004)
    assert high == pytest.approx(0.7 + half_width, abs=0.004)
    assert stats.bootstrap_interval(values, rounds=4000, seed=7) == (low, high)
    assert stats.bootstrap_interval(values, rounds=4000, seed=8) != (low, high)


def test_a_unanimous_result_has_a_zero_width_interval():
    summary = stats.win_rate_summary([1.0] * 10, bootstrap_rounds=200)
    assert (summary.win_rate, summary.ci_low, summary.ci_high, summary.standard_error) == (100, 100, 100, 0)


def test_preferences_outside_zero_one_are_refused():
    with pytest.raises(InvalidInputError, match=r"\[0, 1\]"):
        stats.win_rate_summary([0.2, 1.5])


def _lengths_and_sdl(count: int, longer_share: float, seed: int = 0):
    generator = np.random.default_rng(seed)
    baseline = generator.integers(200, 400, size=count)
    longer = generator.random(count) < longer_share
    delta = np.where(longer, generator.integers(50, 400, size=count), -generator.integers(50, 400, size=count))
    candidate = baseline + delta
    return candidate, baseline, stats.standardized_length_difference(candidate, baseline)


def test_lc_win_rate_removes_a_preference_that_length_alone_explains():
    candidate, baseline, sdl = _lengths_and_sdl(200, longer_share=0.8)
    preferences = _sigmoid(0.0 + 2.0 * np.tanh(sdl))  # no model effect: length is everything
    raw = stats.win_rate_summary(preferences, bootstrap_rounds=10).win_rate
    lc = stats.length_controlled_win_rate(preferences, candidate, baseline, bootstrap_rounds=20)
    assert raw > 60, "the construction must favour the (mostly longer) candidate"
    assert lc.win_rate == pytest.approx(50, abs=1.0)
    assert lc.coefficients["length"] == pytest.approx(2.0, abs=0.1)
    assert lc.ci_low <= lc.win_rate <= lc.ci_high


def test_lc_win_rate_keeps_the_model_effect_at_equal_length():
    candidate, baseline, sdl = _lengths_and_sdl(200, longer_share=0.3, seed=1)
    preferences = _sigmoid(1.0 + 1.5 * np.tanh(sdl))
    lc = stats.length_controlled_win_rate(preferences, candidate, baseline, bootstrap_rounds=20)
    assert lc.win_rate == pytest.approx(100 * _sigmoid(1.0), abs=1.0)
    assert lc.coefficients["model"] == pytest.approx(1.0, abs=0.05)


def test_lc_win_rate_uses_the_instruction_term_when_given():
    candidate, baseline, sdl = _lengths_and_sdl(300, longer_share=0.5, seed=2)
    difficulty = np.random.default_rng(3).normal(0, 1, size=300)
    preferences = _sigmoid(0.5 + 1.0 * np.tanh(sdl) - 1.2 * difficulty)
    lc = stats.length_controlled_win_rate(
        preferences, candidate, baseline, instruction_difficulty=difficulty, bootstrap_rounds=0
    )
    assert lc.uses_instruction_difficulty
    assert lc.coefficients["instruction_difficulty"] == pytest.approx(-1.2, abs=0.05)
    assert lc.win_rate == pytest.approx(100 * np.mean(_sigmoid(0.5 - 1.2 * difficulty)), abs=0.5)


def test_lc_standard_error_is_the_bootstrap_spread_not_the_spread_of_predictions():
    # Without an instruction-difficulty term every prompt's prediction at equal length is the same,
    # so AlpacaEval's lc_standard_error (the spread of those predictions) is exactly 0 whatever the data.
    generator = np.random.default_rng(5)
    count = 200
    preferences = (generator.random(count) < 0.6).astype(float)  # independent of length
    baseline = generator.integers(200, 400, size=count)
    candidate = baseline + generator.integers(-150, 150, size=count)
    lc = stats.length_controlled_win_rate(preferences, candidate, baseline, bootstrap_rounds=100)
    plain = stats.win_rate_summary(preferences, bootstrap_rounds=100)
    assert lc.prediction_spread == pytest.approx(0.0, abs=1e-9)
    assert lc.bootstrap_rounds == 100
    # A binomial proportion of 200 prompts near 0.6: about 3.5 points; the LC rate's is of that size.
    assert 0.6 * plain.standard_error < lc.standard_error < 1.6 * plain.standard_error
    half_width = (lc.ci_high - lc.ci_low) / 2
    assert half_width == pytest.approx(1.96 * lc.standard_error, rel=0.35)
    assert lc.to_dict()["standard_error"] > 0


def test_lc_needs_two_prompts_and_reports_a_constant_outcome_as_is():
    assert math.isnan(stats.length_controlled_win_rate([1.0], [10], [20]).win_rate)
    constant = stats.length_controlled_win_rate([0.5, 0.5, 0.5], [10, 30, 5], [20, 20, 20])
    assert constant.win_rate == 50


def test_length_summary_reports_means_and_who_is_longer():
    summary = stats.length_summary([100, 300], [200, 200])
    assert summary["candidate_mean_chars"] == 200 and summary["baseline_mean_chars"] == 200
    assert summary["candidate_longer_share"] == 0.5


def test_instruction_difficulty_is_the_centred_smoothed_logit_of_the_baselines_wins():
    difficulty = stats.instruction_difficulty_from_preferences([[1, 1], [0, 0], []])
    # baseline share (0 + .5) / 3 and (2 + .5) / 3 -> -ln 5 and ln 5; unseen prompts get 0
    assert difficulty == pytest.approx([-math.log(5), math.log(5), 0.0])


def test_bradley_terry_recovers_log_odds_of_a_chain():
    comparisons = [stats.Comparison("A", "B", p, "ab") for p in (1, 1, 1, 0)]
    comparisons += [stats.Comparison("B", "C", p, "bc") for p in (1, 1, 1, 0)]
    strengths = stats.bradley_terry_strengths(comparisons, reference="C", prior_strength=0)
    assert strengths["C"] == 0
    assert strengths["B"] == pytest.approx(math.log(3), abs=1e-4)
    assert strengths["A"] == pytest.approx(2 * math.log(3), abs=1e-4)


def test_bradley_terry_leaderboard_orders_models_with_intervals_and_stays_finite_for_a_clean_sweep():
    comparisons = [stats.Comparison("iter1", "base", p, "e1") for p in (1, 1, 1, 0.5, 0, 1)]
    comparisons += [stats.Comparison("iter2", "base", 1.0, "e2") for _ in range(6)]
    board = stats.bradley_terry_leaderboard(comparisons, reference="base", bootstrap_rounds=100, seed=1)
    assert [row.contestant for row in board] == ["iter2", "iter1", "base"]
    by_name = {row.contestant: row for row in board}
    assert by_name["base"].rating == 1000 and by_name["base"].win_rate_vs_reference == 50
    for row in board:
        assert math.isfinite(row.strength) and row.ci_low <= row.rating <= row.ci_high
    assert by_name["iter1"].ci_high > by_name["iter1"].ci_low
    assert by_name["iter1"].comparisons == 6 and by_name["base"].comparisons == 12


def test_statistics_of_no_judged_prompts_are_json_safe():
    import json

    document = {
        "win_rate": stats.win_rate_summary([]).to_dict(),
        "length_controlled": stats.length_controlled_win_rate([], [], []).to_dict(),
        "lengths": stats.length_summary([], []),
    }
    assert "NaN" not in json.dumps(document)
    assert document["win_rate"]["win_rate"] is None and document["lengths"]["candidate_mean_chars"] is None
