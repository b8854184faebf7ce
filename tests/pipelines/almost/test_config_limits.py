"""ALMoST's config holds every limit: a dict or YAML is refused past the form's bounds, and the original's
768-token rule for Faithful configurations is the config's own default, not only the web form's."""

from __future__ import annotations

import pytest
import yaml

from pipelines.almost.config import MAX_CONFIGURATIONS, AlmostConfig, ResponseConfiguration
from pipelines.errors import InvalidConfigError

RUBRIC = [{"model": "big", "shots": 3, "prompt": "hhh"}, {"model": "small", "shots": 1, "prompt": "hhh"}]

PAST_THE_LIMITS = [
    ({"prompt_generation": {"num_generation": 10**9}}, "prompt_generation.num_generation"),
    ({"prompt_generation": {"num_generation": "100"}}, "prompt_generation.num_generation"),
    ({"prompt_generation": {"max_chars": 10**9}}, "prompt_generation.max_chars"),
    ({"prompt_generation": {"seed": 10**12}}, "prompt_generation.seed"),
    ({"response_generation": {"seed": -1}}, "response_generation.seed"),
    ({"response_generation": {"temperature": "1.0"}}, "response_generation.temperature"),
    ({"rmsp": {"n": 10**9}}, "rmsp.n"),
    ({"rmsp": {"seed": 2**40}}, "rmsp.seed"),
    ({"rmsp": {"enabled": "false"}}, "rmsp.enabled"),
    ({"comparisons": {"filters": {"empty": "false"}}}, "comparisons.filters.empty"),
    ({"comparisons": {"one_pair_per_chosen": 0}}, "comparisons.one_pair_per_chosen"),
    ({"configurations": [{**RUBRIC[0], "max_tokens": 10**9}, RUBRIC[1]]}, "max_tokens"),
    ({"configurations": [{**RUBRIC[0], "shots": 2.5}, RUBRIC[1]]}, "shots"),
    ({"configurations": [{"model": f"m{index}", "shots": 0} for index in range(MAX_CONFIGURATIONS + 1)]}, "at most 32"),
]


@pytest.mark.parametrize(("values", "named"), PAST_THE_LIMITS, ids=[named for _, named in PAST_THE_LIMITS])
def test_a_value_past_the_limits_is_refused_naming_it_from_a_dict_and_from_yaml(values, named):
    data = {"configurations": RUBRIC, **values}
    with pytest.raises(InvalidConfigError, match=named):
        AlmostConfig.from_dict(data)
    with pytest.raises(InvalidConfigError, match=named):
        AlmostConfig.from_dict(yaml.safe_load(yaml.safe_dump(data)))


def test_faithful_configurations_get_768_new_tokens_and_others_384_in_the_config_itself():
    assert ResponseConfiguration("big", 3, "faithful").max_tokens == 768
    assert ResponseConfiguration("big", 3, "hhh").max_tokens == 384
    assert ResponseConfiguration("big", 0).max_tokens == 384
    assert ResponseConfiguration("big", 3, "faithful", max_tokens=100).max_tokens == 100  # an explicit value wins
    config = AlmostConfig.from_dict({"configurations": [{"model": "big", "shots": 3, "prompt": "faithful"}, RUBRIC[1]]})
    assert [configuration.max_tokens for configuration in config.configurations] == [768, 384]
    assert AlmostConfig.from_dict(config.to_dict()) == config
