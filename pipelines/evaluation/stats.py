"""Win-rate statistics: win rate with ties as half, its standard error and bootstrap interval, AlpacaEval 2's
length-controlled win rate, length statistics, and a Bradley-Terry leaderboard over several models.

Units. Every statistic treats the *prompt* as the unit of sampling: one prompt's two judgments (both
orders) are not independent draws, so a prompt contributes one preference `p` in [0, 1] (the mean of
the candidate's scores over its parsed judgments: win 1, tie 0.5, loss 0). Standard errors and
bootstrap intervals resample prompts.

The length-controlled win rate follows `alpaca_eval/metrics/glm_winrate.py` (alpaca-eval 0.6.6):
a logistic GLM without intercept whose columns are tanh(std_delta_len), an instruction-difficulty
column and a constant "model" column, fitted with L1 `LogisticRegressionCV` (liblinear, 5-fold
GroupKFold, random_state 123) on continuous preferences (each row duplicated with labels 1 and 0,
weighted p and 1 - p), scored by the continuous log loss. The win rate is the mean predicted
preference with the length term at zero. Its standard error and interval come from a bootstrap over
prompts that refits the GLM each round (AlpacaEval reports the spread of the fitted per-prompt
predictions instead, which is 0 without an instruction-difficulty term; see `LengthControlledSummary`). Two parts of the reference need AlpacaEval's own data and
are not reproduced: the "gamed baseline" rows (its verbose/concise GPT-4 baselines, weight lambda/2)
and the precomputed instruction difficulty of its 805 instructions; here the difficulty is an
optional per-prompt input (see `instruction_difficulty_from_preferences`), and without it the term is
left out (AlpacaEval's `length_controlled_minimal` shape).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from pipelines.errors import InvalidInputError

DEFAULT_BOOTSTRAP_ROUNDS = 2000
DEFAULT_CONFIDENCE = 0.95
GLM_SPLITS = 5
GLM_RANDOM_STATE = 123
GLM_CS = 10


def _as_preferences(preferences: Sequence[float], what: str = "preferences") -> np.ndarray:
    values = np.asarray(preferences, dtype=float)
    if values.ndim != 1:
        raise InvalidInputError(f"{what}: expected a flat list of numbers")
    if values.size and (np.isnan(values).any() or values.min() < 0 or values.max() > 1):
        raise InvalidInputError(f"{what}: every preference must be a number in [0, 1] (1 = candidate wins)")
    return values


def judgment_score(verdict_for_candidate: str) -> float:
    """A single judgment from the candidate's side: win 1, tie 0.5, loss 0."""
    scores = {"win": 1.0, "tie": 0.5, "loss": 0.0}
    if verdict_for_candidate not in scores:
        raise InvalidInputError(f"verdict {verdict_for_candidate!r} is not one of win, tie, loss")
    return scores[verdict_for_candidate]


def standard_error(values: Sequence[float]) -> float:
    """Standard error of the mean (sample standard deviation, ddof=1, over sqrt(n)); 0 for fewer than 2 values."""
    array = np.asarray(values, dtype=float)
    if array.size < 2:
        return 0.0
    return float(array.std(ddof=1) / math.sqrt(array.size))


def bootstrap_interval(
    values: Sequence[float],
    *,
    rounds: int = DEFAULT_BOOTSTRAP_ROUNDS,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean: resample the values with replacement `rounds` times.

    Seeded, so the same judgments always give the same interval.
    """
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        return (math.nan, math.nan)
    if rounds < 1:
        raise InvalidInputError(f"bootstrap rounds must be at least 1, got {rounds}")
    generator = np.random.default_rng(seed)
    indices = generator.integers(0, array.size, size=(rounds, array.size))
    means = array[indices].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


@dataclass
class WinRateSummary:
    """A candidate's win rate against the baseline, in percent, with its uncertainty."""

    win_rate: float
    """Mean per-prompt preference x 100 (ties count half)."""
    standard_error: float
    """Standard error of `win_rate` over prompts, in percentage points."""
    ci_low: float
    ci_high: float
    """Bootstrap percentile interval of `win_rate` (resampling prompts)."""
    confidence: float
    prompts: int
    """Prompts with at least one parsed judgment (the statistics' n)."""
    wins: int = 0
    ties: int = 0
    losses: int = 0
    """Counts of single judgments (each order is one judgment)."""
    discrete_win_rate: float = math.nan
    """(wins + ties / 2) / judgments x 100 over single judgments (AlpacaEval's discrete win rate)."""

    def to_dict(self) -> dict[str, Any]:
        return _rounded(asdict(self))


def win_rate_summary(
    preferences: Sequence[float],
    *,
    judgment_scores: Sequence[float] | None = None,
    bootstrap_rounds: int = DEFAULT_BOOTSTRAP_ROUNDS,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
) -> WinRateSummary:
    """Win rate of per-prompt preferences (1 = candidate better, 0.5 = tie, 0 = baseline better).

    `judgment_scores` are the single judgments behind them (1, 0.5, 0), for the win/tie/loss counts
    and the discrete win rate; without them the preferences are counted as judgments.
    """
    values = _as_preferences(preferences)
    singles = _as_preferences(judgment_scores if judgment_scores is not None else preferences, "judgment scores")
    if values.size == 0:
        return WinRateSummary(math.nan, math.nan, math.nan, math.nan, confidence, 0)
    low, high = bootstrap_interval(values, rounds=bootstrap_rounds, seed=seed, confidence=confidence)
    wins = int((singles > 0.5).sum())
    losses = int((singles < 0.5).sum())
    ties = int((singles == 0.5).sum())
    return WinRateSummary(
        win_rate=float(values.mean() * 100),
        standard_error=standard_error(values) * 100,
        ci_low=low * 100,
        ci_high=high * 100,
        confidence=confidence,
        prompts=int(values.size),
        wins=wins,
        ties=ties,
        losses=losses,
        discrete_win_rate=(wins + ties / 2) / singles.size * 100 if singles.size else math.nan,
    )


# --- position bias --------------------------------------------------------------------------------

POSITION_BIAS_THRESHOLD = 0.8
"""Above this share of decided judgments for one position, the result page warns that the judge is
choosing a position rather than an answer (both orders then cancel into ~50% whatever the answers)."""


def position_bias(verdicts: Sequence[str], *, threshold: float = POSITION_BIAS_THRESHOLD) -> dict[str, Any]:
    """How often the judge chose each position among its decided judgments (A or B; ties left out).

    `same_position_share` is the larger of the first- and second-position shares; `warning` is set
    when it exceeds `threshold`. Verdicts are as the judge gave them: A = the answer shown first.
    """
    first = sum(1 for verdict in verdicts if verdict == "A")
    second = sum(1 for verdict in verdicts if verdict == "B")
    decided = first + second
    if not decided:
        return {
            "decided": 0,
            "first_share": None,
            "same_position_share": None,
            "favoured": None,
            "threshold": threshold,
            "warning": False,
        }
    share = max(first, second) / decided
    return _rounded(
        {
            "decided": decided,
            "first_share": first / decided,
            "same_position_share": share,
            "favoured": "first" if first >= second else "second",
            "threshold": threshold,
            "warning": share > threshold,
        }
    )


# --- length ---------------------------------------------------------------------------------------


def length_summary(candidate_lengths: Sequence[int], baseline_lengths: Sequence[int]) -> dict[str, float]:
    """Average answer lengths in characters (what the LC GLM uses) and how often the candidate is longer."""
    candidate = np.asarray(candidate_lengths, dtype=float)
    baseline = np.asarray(baseline_lengths, dtype=float)
    if candidate.size == 0:
        return {"candidate_mean_chars": None, "baseline_mean_chars": None, "candidate_longer_share": None}
    return _rounded(
        {
            "candidate_mean_chars": float(candidate.mean()),
            "baseline_mean_chars": float(baseline.mean()),
            "candidate_median_chars": float(np.median(candidate)),
            "baseline_median_chars": float(np.median(baseline)),
            "mean_length_difference": float((candidate - baseline).mean()),
            "candidate_longer_share": float((candidate > baseline).mean()),
        }
    )


def standardized_length_difference(candidate_lengths: Sequence[int], baseline_lengths: Sequence[int]) -> np.ndarray:
    """(len_candidate - len_baseline) / std of that difference (ddof=1), as AlpacaEval's std_delta_len.

    AlpacaEval computes baseline minus model; the sign only flips the fitted coefficient, and the
    reported win rate sets the term to zero. When every difference is the same the term cannot be
    told from the model term, so it is zero.
    """
    delta = np.asarray(candidate_lengths, dtype=float) - np.asarray(baseline_lengths, dtype=float)
    spread = delta.std(ddof=1) if delta.size > 1 else 0.0
    if not spread or not np.isfinite(spread):
        return np.zeros_like(delta)
    return delta / spread


# --- length-controlled win rate --------------------------------------------------------------------


@dataclass
class LengthControlledSummary:
    """AlpacaEval 2's length-controlled win rate of one candidate, in percent."""

    win_rate: float
    """Mean predicted preference with the length term at zero, x 100."""
    standard_error: float
    """Bootstrap standard error: the standard deviation (ddof=1) of the LC win rate over the bootstrap
    resamples (prompts resampled, the GLM refitted each round). AlpacaEval's own `lc_standard_error`
    is the spread of the fitted per-prompt predictions, which measures how much the instruction-difficulty
    term varies between prompts, not how uncertain the win rate is (without that term it is exactly 0);
    it is kept as `prediction_spread`."""
    ci_low: float
    ci_high: float
    """Bootstrap interval: prompts resampled, the GLM refitted at the C chosen on the full data."""
    bootstrap_rounds: int = 0
    """Resamples behind `standard_error`, `ci_low` and `ci_high` (0: none, the uncertainty is unknown)."""
    prediction_spread: float = math.nan
    """AlpacaEval's `lc_standard_error`: standard error of the per-prompt predictions (not an uncertainty)."""
    coefficients: dict[str, float] = field(default_factory=dict)
    """Fitted weights: model (constant), length (tanh(std_delta_len)), instruction_difficulty."""
    regularization_c: float = math.nan
    uses_instruction_difficulty: bool = False
    prompts: int = 0
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return _rounded(asdict(self))


def glm_design(std_delta_len: np.ndarray, instruction_difficulty: np.ndarray | None) -> tuple[np.ndarray, list[str]]:
    """Columns of the GLM, in the reference formula's order: length, instruction difficulty, model."""
    columns = [np.tanh(std_delta_len)]
    names = ["length"]
    if instruction_difficulty is not None:
        columns.append(np.asarray(instruction_difficulty, dtype=float))
        names.append("instruction_difficulty")
    columns.append(np.ones_like(std_delta_len))
    names.append("model")
    return np.column_stack(columns), names


def fit_preference_glm(
    design: np.ndarray, preferences: np.ndarray, *, n_splits: int = GLM_SPLITS, fixed_c: float | None = None
):  # type: ignore[no-untyped-def]
    """Fit the L1 logistic GLM on continuous preferences, as the reference's `fit_LogisticRegressionCV`.

    Each row appears twice, labelled 1 (weight p) and 0 (weight 1 - p), so the fit maximizes the
    expected log likelihood of the continuous preference; cross-validation keeps both copies of a
    row in one fold (groups) and scores the continuous log loss. With `fixed_c` the fit is a plain
    `LogisticRegression` at that C (used for bootstrap refits).
    """
    import sklearn
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.metrics import make_scorer
    from sklearn.model_selection import GroupKFold

    rows = design.shape[0]
    features = np.vstack([design, design])
    labels = np.concatenate([np.ones(rows, dtype=int), np.zeros(rows, dtype=int)])
    true_probability = np.concatenate([preferences, 1 - preferences])
    groups = np.concatenate([np.arange(rows), np.arange(rows)])
    common = {"solver": "liblinear", "fit_intercept": False, "random_state": GLM_RANDOM_STATE}
    with warnings.catch_warnings(), sklearn.config_context(enable_metadata_routing=True):
        warnings.simplefilter("ignore", FutureWarning)
        if fixed_c is not None:
            model = LogisticRegression(C=fixed_c, l1_ratio=1.0, **common)
            model.set_fit_request(sample_weight=True)
            model.fit(features, labels, sample_weight=true_probability)
            return model
        scorer = make_scorer(
            _continuous_log_loss, response_method="predict_proba", greater_is_better=False
        ).set_score_request(true_prob=True)
        model = LogisticRegressionCV(
            Cs=GLM_CS, cv=GroupKFold(n_splits=n_splits), scoring=scorer, penalty="l1", **common
        )
        model.set_fit_request(sample_weight=True)
        model.fit(features, labels, sample_weight=true_probability, groups=groups, true_prob=true_probability)
    return model


def _continuous_log_loss(y_true: np.ndarray, y_pred: np.ndarray, true_prob: np.ndarray) -> float:
    """Log loss against the continuous preference each duplicated row stands for (the reference's scorer)."""
    target = np.where(y_true == 1, true_prob, 1 - true_prob)
    predicted = np.clip(y_pred, 1e-15, 1 - 1e-15)
    return float(-np.mean(target * np.log(predicted) + (1 - target) * np.log(1 - predicted)))


def length_controlled_win_rate(
    preferences: Sequence[float],
    candidate_lengths: Sequence[int],
    baseline_lengths: Sequence[int],
    *,
    instruction_difficulty: Sequence[float] | None = None,
    bootstrap_rounds: int = 200,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
) -> LengthControlledSummary:
    """The win rate the candidate would have if its answers were as long as the baseline's.

    Needs at least 2 prompts; cross-validation uses min(5, prompts) folds.
    """
    values = _as_preferences(preferences)
    count = values.size
    if not len(candidate_lengths) == len(baseline_lengths) == count:
        raise InvalidInputError(
            "length-controlled win rate: preferences and both length lists must have one entry per prompt"
        )
    difficulty = None
    if instruction_difficulty is not None:
        difficulty = np.asarray(instruction_difficulty, dtype=float)
        if difficulty.size != count or not np.isfinite(difficulty).all():
            raise InvalidInputError("instruction_difficulty: needs one finite number per prompt")
    if count < 2:
        return LengthControlledSummary(
            math.nan, math.nan, math.nan, math.nan, prompts=count, note="needs at least 2 judged prompts"
        )
    if np.all(values == values[0]):
        # Every prompt the same outcome: the GLM's best fit is that constant, whatever the lengths.
        constant = float(values[0] * 100)
        return LengthControlledSummary(
            constant,
            0.0,
            constant,
            constant,
            prompts=count,
            uses_instruction_difficulty=difficulty is not None,
            prediction_spread=0.0,
            note="every prompt has the same preference: every resample would be the same, so the uncertainty is 0",
        )
    std_delta_len = standardized_length_difference(candidate_lengths, baseline_lengths)
    design, names = glm_design(std_delta_len, difficulty)
    model = fit_preference_glm(design, values, n_splits=min(GLM_SPLITS, count))
    at_equal_length = design.copy()
    at_equal_length[:, 0] = 0.0  # tanh(0): no length difference
    predicted = model.predict_proba(at_equal_length)[:, 1]
    chosen_c = float(np.ravel(model.C_)[0])

    generator = np.random.default_rng(seed)
    estimates = []
    for _ in range(max(0, bootstrap_rounds)):
        sample = generator.integers(0, count, size=count)
        if np.all(values[sample] == values[sample][0]):
            estimates.append(float(values[sample][0]))
            continue
        refit = fit_preference_glm(design[sample], values[sample], fixed_c=chosen_c)
        estimates.append(float(refit.predict_proba(at_equal_length[sample])[:, 1].mean()))
    tail = (1 - confidence) / 2
    low, high = np.quantile(estimates, [tail, 1 - tail]) if estimates else (math.nan, math.nan)
    spread = float(np.std(estimates, ddof=1)) if len(estimates) > 1 else math.nan
    return LengthControlledSummary(
        win_rate=float(predicted.mean() * 100),
        standard_error=spread * 100,
        ci_low=float(low) * 100,
        ci_high=float(high) * 100,
        bootstrap_rounds=len(estimates),
        prediction_spread=standard_error(predicted) * 100,
        coefficients={name: float(weight) for name, weight in zip(names, model.coef_[0], strict=True)},
        regularization_c=chosen_c,
        uses_instruction_difficulty=difficulty is not None,
        prompts=count,
    )


def instruction_difficulty_from_preferences(preferences_by_prompt: Sequence[Sequence[float]]) -> np.ndarray:
    """A per-prompt difficulty from other models' preferences on the same prompts against the same baseline.

    AlpacaEval's difficulty is a per-instruction effect fitted over its whole leaderboard; ours is
    the logit of how often the baseline beat the *other* models on that prompt, smoothed by one
    half-win ((losses + 0.5) / (n + 1)) and centred. Prompts no other model saw get 0.
    """
    difficulties = []
    for others in preferences_by_prompt:
        scores = np.asarray(others, dtype=float)
        if scores.size == 0:
            difficulties.append(math.nan)
            continue
        baseline_share = ((1 - scores).sum() + 0.5) / (scores.size + 1)
        difficulties.append(math.log(baseline_share / (1 - baseline_share)))
    array = np.asarray(difficulties, dtype=float)
    known = np.isfinite(array)
    if known.any():
        array[known] -= array[known].mean()
    array[~known] = 0.0
    return array


# --- Bradley-Terry leaderboard -----------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """One prompt's outcome between two contestants: `preference` = how much `first` won (0..1)."""

    first: str
    second: str
    preference: float
    group: str = ""
    """Which evaluation it came from; bootstrap resamples within groups."""


@dataclass
class LeaderboardRow:
    contestant: str
    strength: float
    """Bradley-Terry log-strength, the reference contestant at 0."""
    rating: float
    """Elo-like: 1000 + 400 * strength / ln 10."""
    ci_low: float
    ci_high: float
    """Bootstrap interval of `rating`."""
    win_rate_vs_reference: float
    """sigma(strength) x 100: the modelled win rate against the reference contestant."""
    comparisons: int

    def to_dict(self) -> dict[str, Any]:
        return _rounded(asdict(self))


def bradley_terry_strengths(
    comparisons: Sequence[Comparison], *, reference: str | None = None, prior_strength: float = 0.01
) -> dict[str, float]:
    """Maximum (penalized) likelihood Bradley-Terry strengths: P(i beats j) = sigma(s_i - s_j).

    Ties count as half a win (the preference is a continuous target). `prior_strength` is an L2
    penalty on the strengths: it keeps a model that won every comparison finite and separate
    components of the comparison graph anchored near 0; 0 gives the plain maximum likelihood.
    The reference contestant (default: the most compared one) is shifted to 0.
    """
    from scipy.optimize import minimize

    if not comparisons:
        return {}
    names = sorted({c.first for c in comparisons} | {c.second for c in comparisons})
    position = {name: index for index, name in enumerate(names)}
    first = np.array([position[c.first] for c in comparisons])
    second = np.array([position[c.second] for c in comparisons])
    target = _as_preferences([c.preference for c in comparisons], "comparison preferences")

    def objective(strengths: np.ndarray) -> tuple[float, np.ndarray]:
        margin = strengths[first] - strengths[second]
        log_p = -np.logaddexp(0, -margin)
        log_not_p = -np.logaddexp(0, margin)
        loss = -np.sum(target * log_p + (1 - target) * log_not_p) + prior_strength * np.sum(strengths**2)
        residual = np.exp(log_p) - target
        gradient = np.zeros_like(strengths)
        np.add.at(gradient, first, residual)
        np.add.at(gradient, second, -residual)
        return float(loss), gradient + 2 * prior_strength * strengths

    result = minimize(
        objective, np.zeros(len(names)), jac=True, method="L-BFGS-B", options={"maxiter": 1000, "gtol": 1e-10}
    )
    strengths = result.x
    if reference is None:
        counts = np.bincount(np.concatenate([first, second]), minlength=len(names))
        reference = names[int(np.argmax(counts))]
    if reference not in position:
        raise InvalidInputError(f"reference contestant {reference!r} has no comparisons")
    strengths = strengths - strengths[position[reference]]
    return {name: float(strengths[position[name]]) for name in names}


def bradley_terry_leaderboard(
    comparisons: Sequence[Comparison],
    *,
    reference: str | None = None,
    bootstrap_rounds: int = 200,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
    prior_strength: float = 0.01,
) -> list[LeaderboardRow]:
    """Rank contestants by Bradley-Terry strength with bootstrap intervals, strongest first.

    The bootstrap resamples comparisons within each group (evaluation), so every pair keeps its
    number of prompts and the graph its shape.
    """
    if not comparisons:
        return []
    counts: dict[str, int] = {}
    for comparison in comparisons:
        counts[comparison.first] = counts.get(comparison.first, 0) + 1
        counts[comparison.second] = counts.get(comparison.second, 0) + 1
    if reference is None:
        reference = max(sorted(counts), key=lambda name: counts[name])
    point = bradley_terry_strengths(comparisons, reference=reference, prior_strength=prior_strength)
    groups: dict[str, list[int]] = {}
    for index, comparison in enumerate(comparisons):
        groups.setdefault(comparison.group, []).append(index)
    generator = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {name: [] for name in point}
    for _ in range(max(0, bootstrap_rounds)):
        chosen: list[Comparison] = []
        for members in groups.values():
            picks = generator.integers(0, len(members), size=len(members))
            chosen.extend(comparisons[members[pick]] for pick in picks)
        refit = bradley_terry_strengths(chosen, reference=reference, prior_strength=prior_strength)
        for name in samples:
            samples[name].append(refit.get(name, math.nan))
    tail = (1 - confidence) / 2
    rows = []
    for name, strength in point.items():
        drawn = np.asarray([value for value in samples[name] if np.isfinite(value)])
        low, high = np.quantile(drawn, [tail, 1 - tail]) if drawn.size else (math.nan, math.nan)
        rows.append(
            LeaderboardRow(
                contestant=name,
                strength=strength,
                rating=_elo(strength),
                ci_low=_elo(float(low)),
                ci_high=_elo(float(high)),
                win_rate_vs_reference=100 / (1 + math.exp(-strength)),
                comparisons=counts[name],
            )
        )
    rows.sort(key=lambda row: row.strength, reverse=True)
    return rows


def _elo(strength: float) -> float:
    return 1000 + 400 * strength / math.log(10)


def _rounded(values: dict[str, Any], digits: int = 6) -> dict[str, Any]:
    """Floats rounded for JSON; NaN becomes None (JSON has no NaN)."""
    rounded: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            rounded[key] = _rounded(value, digits)
        elif isinstance(value, float):
            rounded[key] = None if not math.isfinite(value) else round(value, digits)
        else:
            rounded[key] = value
    return rounded
