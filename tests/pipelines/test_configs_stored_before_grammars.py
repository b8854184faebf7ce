"""A run stored before constrained output and CST grounding existed resumes as it started.

Its stored config has no `constrained_output` / `min_split_grounding`; reading it must not switch
the grammar and the grounding filter on halfway through the run. A config written now names both.
"""

from __future__ import annotations

from pipelines.almost.config import AlmostConfig, ResponseConfiguration
from pipelines.augcon.config import AugConConfig


def _without(data: dict, *keys: str) -> dict:
    return {key: value for key, value in data.items() if key not in keys}


def test_an_augcon_config_stored_before_grammars_stays_unconstrained_and_keeps_every_split():
    current = AugConConfig()
    assert current.constrained_output is True and current.min_split_grounding == 0.5
    assert AugConConfig.from_dict(current.to_dict()) == current
    stored = _without(current.to_dict(), "constrained_output", "min_split_grounding")
    old = AugConConfig.from_dict(stored)
    assert old.constrained_output is False and old.min_split_grounding == 0.0


def test_an_almost_config_stored_before_grammars_parses_its_query_lines_from_free_text():
    data = AlmostConfig(
        configurations=[ResponseConfiguration("tiny", 2, "hhh"), ResponseConfiguration("tiny", 1, "hhh")]
    ).to_dict()
    assert data["prompt_generation"]["constrained_output"] is True
    assert AlmostConfig.from_dict(data).prompt_generation.constrained_output is True
    data["prompt_generation"] = _without(data["prompt_generation"], "constrained_output")
    assert AlmostConfig.from_dict(data).prompt_generation.constrained_output is False
