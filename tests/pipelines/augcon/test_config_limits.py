"""Every numeric limit of AugCon's config lives in its validation: a dict or YAML is refused past the form's bounds."""

from __future__ import annotations

import pytest
import yaml

from pipelines.augcon.config import AugConConfig
from pipelines.errors import InvalidConfigError

PAST_THE_LIMITS = [
    ("max_length", 10**9),
    ("min_length", 10**9),
    ("character_per_piece", 10**9),
    ("min_paragraph_length", 10**9),
    ("max_chunks_per_document", 10**9),
    ("min_question_length", 10**9),
    ("min_scorer_pairs", 10**9),
    ("question_max_tokens", 10**9),
    ("answer_max_tokens", 10**9),
    ("negatives_per_variant", 10**9),
    ("seed", 10**12),
    ("seed", -1),
    ("answer_temperature", "0.2"),
    ("judge_temperature", 7),
    ("length_scale", True),
    ("question_top_p", "1"),
]


@pytest.mark.parametrize(
    ("name", "value"), PAST_THE_LIMITS, ids=[f"{name}={value!r}" for name, value in PAST_THE_LIMITS]
)
def test_a_value_past_the_limits_is_refused_naming_the_field_from_a_dict_and_from_yaml(name, value):
    with pytest.raises(InvalidConfigError, match=rf"^{name} must be"):
        AugConConfig.from_dict({name: value})
    with pytest.raises(InvalidConfigError, match=rf"^{name} must be"):
        AugConConfig.from_dict(yaml.safe_load(yaml.safe_dump({name: value})))


def test_the_bounds_themselves_are_accepted():
    config = AugConConfig.from_dict(
        {"seed": 2**32 - 1, "max_length": 1_000_000, "answer_temperature": 0, "judge_temperature": 2}
    )
    assert (config.seed, config.max_length) == (2**32 - 1, 1_000_000)
