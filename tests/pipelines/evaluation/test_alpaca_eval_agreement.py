"""Our win rate and LC win rate against the reference implementation in the PyPI package alpaca-eval (0.6.6).

alpaca-eval is a test dependency only (`pip install alpaca-eval==0.6.6`, with python-dotenv, fire and
patsy). Its GLM downloads two files from the HF hub: `df_gamed.csv` (the instruction difficulty of
its 805 instructions and the annotations of two "gamed" GPT-4 baselines) and, for `predict_winrate`,
`instruction_difficulty.csv`. Nothing is downloaded here: `hf_hub_download` is pointed at a local
`df_gamed.csv` holding our synthetic instruction difficulties, and the comparison uses the GLMs that
need nothing else (`length_controlled_noreg`, `length_controlled_minimal`). The default
`length_controlled_v1` adds AlpacaEval's own gamed-baseline rows with weight lambda/2; we have no
such rows, so that regularization is neither implemented nor compared.
"""

from __future__ import annotations

import importlib
import sys
import types

import numpy as np
import pandas as pd
import pytest

from pipelines.evaluation import stats


def _import_glm_winrate():
    """alpaca_eval's GLM module, or a skip naming why it cannot be imported.

    alpaca-eval 0.6.6 imports `pkg_resources`, which setuptools >= 81 no longer ships; it uses only
    `parse_version` and `get_distribution(...).version`, so a two-function stand-in is enough.
    """
    if "pkg_resources" not in sys.modules and importlib.util.find_spec("pkg_resources") is None:
        from importlib import metadata

        from packaging.version import parse

        shim = types.ModuleType("pkg_resources")
        shim.parse_version = parse
        shim.get_distribution = lambda name: types.SimpleNamespace(version=metadata.version(name))
        sys.modules["pkg_resources"] = shim
    try:
        return importlib.import_module("alpaca_eval.metrics.glm_winrate")
    except ImportError as error:
        pytest.skip(f"alpaca-eval is not importable ({error}); pip install alpaca-eval==0.6.6 python-dotenv fire patsy")


def _annotations(count: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Synthetic AlpacaEval annotations: baseline = output_1, model = output_2, preference 1 (baseline) .. 2 (model)."""
    generator = np.random.default_rng(seed)
    baseline_lengths = generator.integers(100, 900, size=count)
    model_lengths = np.maximum(1, baseline_lengths + generator.integers(-300, 700, size=count))
    difficulty = generator.normal(0, 1, size=count)
    delta = (model_lengths - baseline_lengths) / np.std(model_lengths - baseline_lengths, ddof=1)
    probability = 1 / (1 + np.exp(-(0.3 + 1.2 * np.tanh(delta) - 0.8 * difficulty)))
    draws = generator.random(count)
    preference = np.where(draws < probability, 2.0, 1.0)
    preference[generator.random(count) < 0.1] = 1.5  # some draws
    continuous = generator.random(count) < 0.2  # and some continuous (logprob-style) preferences
    preference[continuous] = 1 + probability[continuous]
    frame = pd.DataFrame(
        {
            "index": np.arange(count),
            "output_1": ["b" * int(n) for n in baseline_lengths],
            "output_2": ["m" * int(n) for n in model_lengths],
            "preference": preference,
            "generator_1": "baseline",
            "generator_2": "model",
            "annotator": "synthetic",
        }
    )
    return frame, difficulty


@pytest.fixture
def glm_winrate(monkeypatch, tmp_path):
    module = _import_glm_winrate()

    def local_hf_hub_download(*, filename, **_kwargs):
        path = tmp_path / filename
        assert path.exists(), f"the test did not provide {filename}"
        return str(path)

    monkeypatch.setattr(module, "hf_hub_download", local_hf_hub_download)
    yield module
    import sklearn

    sklearn.set_config(enable_metadata_routing=False)  # the reference turns it on globally


def _write_difficulty(tmp_path, difficulty: np.ndarray) -> None:
    # `df_gamed.csv` as the reference reads it: rows per (gamed model, instruction); we give only
    # the instruction difficulties, as rows of a "gamed" model that the no-reg GLMs never fit on.
    pd.DataFrame(
        {
            "model": "unused",
            "index": np.arange(difficulty.size),
            "instruction_difficulty": difficulty,
            "preference": 0.5,
            "std_delta_len": 0.0,
            "not_gamed_baseline": False,
        }
    ).to_csv(tmp_path / "df_gamed.csv", index=False)


@pytest.mark.parametrize("seed", [0, 1])
def test_lc_win_rate_with_the_instruction_term_agrees_with_alpaca_eval(glm_winrate, tmp_path, seed):
    annotations, difficulty = _annotations(120, seed)
    _write_difficulty(tmp_path, difficulty)
    reference = glm_winrate.get_length_controlled_winrate(
        annotations.copy(), glm_name="length_controlled_noreg", save_weights_dir=None, is_warn_extreme_changes=False
    )
    preferences = annotations["preference"].to_numpy() - 1
    ours = stats.length_controlled_win_rate(
        preferences,
        annotations["output_2"].str.len().to_numpy(),
        annotations["output_1"].str.len().to_numpy(),
        instruction_difficulty=difficulty,
        bootstrap_rounds=0,
    )
    assert ours.win_rate == pytest.approx(reference["length_controlled_winrate"], abs=1e-3)
    # AlpacaEval's lc_standard_error is our prediction_spread (our standard_error is the bootstrap's).
    assert ours.prediction_spread == pytest.approx(reference["lc_standard_error"], abs=1e-3)
    plain = stats.win_rate_summary(preferences, bootstrap_rounds=10)
    assert plain.win_rate == pytest.approx(reference["win_rate"], abs=1e-9)
    assert plain.standard_error == pytest.approx(reference["standard_error"], abs=1e-9)


def test_lc_win_rate_without_the_instruction_term_agrees_with_alpaca_evals_minimal_glm(glm_winrate, tmp_path):
    annotations, difficulty = _annotations(90, seed=5)
    _write_difficulty(tmp_path, difficulty)
    reference = glm_winrate.get_length_controlled_winrate(
        annotations.copy(), glm_name="length_controlled_minimal", save_weights_dir=None, is_warn_extreme_changes=False
    )
    ours = stats.length_controlled_win_rate(
        annotations["preference"].to_numpy() - 1,
        annotations["output_2"].str.len().to_numpy(),
        annotations["output_1"].str.len().to_numpy(),
        bootstrap_rounds=0,
    )
    assert ours.win_rate == pytest.approx(reference["length_controlled_winrate"], abs=1e-3)


def test_discrete_win_rate_agrees_with_alpaca_eval_on_wins_losses_and_draws(glm_winrate):
    from alpaca_eval.metrics.winrate import get_winrate

    preference = pd.Series([2.0, 2.0, 1.0, 1.5, 2.0, 1.0, 1.5, 2.0])
    reference = get_winrate(pd.DataFrame({"preference": preference}))
    ours = stats.win_rate_summary(preference.to_numpy() - 1, bootstrap_rounds=10)
    assert ours.discrete_win_rate == pytest.approx(reference["discrete_win_rate"])
    assert (ours.wins, ours.losses, ours.ties) == (reference["n_wins"], reference["n_wins_base"], reference["n_draws"])
