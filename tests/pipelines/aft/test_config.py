"""AFT configs: the paper's defaults, the three YAML formats of the official repository, and errors that name the key."""

from __future__ import annotations

import pytest

from pipelines.aft import AftConfig, AggregationDataConfig
from pipelines.aft.prompts import AGG_TEMPLATE, aggregator_system
from pipelines.errors import InvalidConfigError

# The first release's configs/default.yaml (Linzwcs/AFT @ 6e17f15), comments and all.
FIRST_RELEASE_YAML = """\
model_name: /mnt/petrelfs/share_data/harold/llama_onp

proposal_params:
    temperature: 0.7
    top_p: 0.95
    max_tokens: 4096
    n: 5

aggregation_params:
    temperature: 0.7
    top_p: 0.95
    max_tokens: 4096
    n: 5

vllm_seed: 2019

hidden_layer: 0  # Number of aggregation layers, excluding the final layer
final_aggregation: True # Indicates whether this is the final aggregation step
"""

# The intermediate commit's configs/default.yaml (Linzwcs/AFT @ 3cfa3d9): the first release's sampling
# sections with the current code's num_aggregation.
INTERMEDIATE_YAML = """\
model_name:  /mnt/petrelfs/share_data/harold/llama_onp # path to AFT model

proposal_params:
    temperature: 0.7
    top_p: 0.95
    max_tokens: 4096
    n: 5

aggregation_params:
    temperature: 0.7
    top_p: 0.95
    max_tokens: 4096
    n: 5

vllm_seed: 2025

num_aggregation: 2  # Number of aggregation layers, excluding the final layer
"""

# The current code's configs/default.yaml (Linzwcs/AFT @ d1d4ab2: generation_params + num_aggregation).
CURRENT_YAML = """\
model_name:  Linzwcs/Llama-AFT-On-Policy # path to AFT model

generation_params:
    temperature: 0.7
    top_p: 0.95
    max_tokens: 4096
    n: 5
    final_layer_temperature: 0.7
    final_layer_top_p: 1

vllm_seed: 2025

num_aggregation: 2  # Number of aggregation layers, excluding the final layer
"""


def test_defaults_are_the_papers():
    config = AftConfig()
    for sampling in (config.proposal, config.aggregation):
        assert (sampling.temperature, sampling.top_p, sampling.max_tokens, sampling.n) == (0.7, 0.95, 4096, 5)
    assert (config.final.temperature, config.final.n) == (0.0, 1)  # the first release's greedy final layer
    assert (config.hidden_layer, config.final_aggregation, config.seed) == (0, True, 2024)
    assert AftConfig.from_dict(config.to_dict()) == config


def test_the_first_release_yaml_loads_unchanged():
    config = AftConfig.from_yaml(FIRST_RELEASE_YAML)
    assert config.model_name == "/mnt/petrelfs/share_data/harold/llama_onp"
    assert config.seed == 2019 and config.hidden_layer == 0 and config.final_aggregation
    assert [layer.name for layer in config.layers()] == ["proposals", "final aggregation"]
    assert config.generations_per_prompt() == 6


def test_the_current_yaml_counts_the_final_layer_in_num_aggregation():
    config = AftConfig.from_yaml(CURRENT_YAML)
    assert config.hidden_layer == 1 and config.seed == 2025
    assert (config.final.temperature, config.final.top_p, config.final.n) == (0.7, 1.0, 1)
    # 5 proposals, 5 hidden aggregations, 1 final: the code's 11 generations per query.
    assert config.generations_per_prompt() == 11
    assert config.cost_estimate(805)["generations"] == 805 * 11


def test_the_intermediate_yaml_is_one_hidden_layer_and_a_sampled_final_layer():
    # 3cfa3d9's MoA: range(num_aggregation - 1) hidden layers at aggregation_params, then a head from
    # aggregation_params with n = 1 and top_p = 1 (sampled at the aggregation temperature, not greedy).
    config = AftConfig.from_yaml(INTERMEDIATE_YAML)
    assert config.seed == 2025 and config.hidden_layer == 1 and config.final_aggregation
    assert [layer.name for layer in config.layers()] == ["proposals", "aggregation 1", "final aggregation"]
    assert (config.final.temperature, config.final.top_p, config.final.n, config.final.max_tokens) == (
        0.7,
        1.0,
        1,
        4096,
    )
    assert config.generations_per_prompt() == 11
    assert AftConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    ("num_aggregation", "generations"),
    [(0, 6), (1, 6), (2, 11), (3, 16)],
)
def test_num_aggregation_counts_the_final_layer_in_both_formats_that_have_it(num_aggregation, generations):
    intermediate = AftConfig.from_yaml(
        INTERMEDIATE_YAML.replace("num_aggregation: 2", f"num_aggregation: {num_aggregation}")
    )
    current = AftConfig.from_yaml(CURRENT_YAML.replace("num_aggregation: 2", f"num_aggregation: {num_aggregation}"))
    assert intermediate.generations_per_prompt() == current.generations_per_prompt() == generations


@pytest.mark.parametrize(
    ("yaml_text", "named"),
    [
        (INTERMEDIATE_YAML + "hidden_layer: 0\n", "hidden_layer"),
        (INTERMEDIATE_YAML + "final_aggregation: false\n", "final_aggregation"),
        (INTERMEDIATE_YAML + "final_params:\n  temperature: 0\n", "final_params"),
        (CURRENT_YAML + "final_aggregation: false\n", "final_aggregation"),
        (CURRENT_YAML + "hidden_layer: 1\n", "hidden_layer"),
        (CURRENT_YAML + "proposal_params:\n  n: 3\n", "proposal_params"),
        (CURRENT_YAML + "final_params:\n  temperature: 0\n", "final_params"),
        (
            FIRST_RELEASE_YAML.replace("final_aggregation: True", "final_aggregation: False")
            + "final_params:\n  temperature: 0.5\n",
            "final_params",
        ),
    ],
)
def test_a_key_of_another_format_or_one_the_format_ignores_is_refused_by_name(yaml_text, named):
    with pytest.raises(InvalidConfigError) as caught:
        AftConfig.from_yaml(yaml_text, source="default.yaml")
    assert str(caught.value).startswith(f"default.yaml: {named} cannot be used here")


@pytest.mark.parametrize(
    ("yaml_text", "named"),
    [
        ("generation_params:\n  n: 1000000000\n", "generation_params.n"),
        ("generation_params:\n  max_tokens: 1000000000\n", "generation_params.max_tokens"),
        ("proposal_params:\n  n: 65\n", "proposal_params.n"),
        ("aggregation_params:\n  max_tokens: 32769\n", "aggregation_params.max_tokens"),
        ("final_params:\n  temperature: 9\n", "final_params.temperature"),
        ("generation_params:\n  final_layer_temperature: 9\n", "generation_params.final_layer_temperature"),
        ("num_aggregation: 1000\n", "num_aggregation"),
        ("vllm_seed: -1\n", "vllm_seed"),
        ("seed: 99999999999\n", "seed"),
        ("batch_size: 100000\n", "batch_size"),
    ],
)
def test_every_limit_is_the_configs_own_so_a_yaml_meets_the_forms_bounds(yaml_text, named):
    with pytest.raises(InvalidConfigError) as caught:
        AftConfig.from_yaml(yaml_text, source="big.yaml")
    assert f"big.yaml: {named} must be between" in str(caught.value)


def test_limits_hold_for_a_config_built_in_code_too():
    from pipelines.llm.types import SamplingParams

    with pytest.raises(InvalidConfigError, match="proposal_params.n must be between 1 and 64"):
        AftConfig(proposal=SamplingParams(n=10**9, max_tokens=16))
    with pytest.raises(InvalidConfigError, match="aggregator.max_tokens"):
        AggregationDataConfig.from_dict({"aggregator": {"max_tokens": 10**9}})


@pytest.mark.parametrize(
    ("yaml_text", "named"),
    [
        ("proposal_params:\n  temperature: hot\n", "proposal_params.temperature"),
        ("aggregation_params:\n  top_p: 0\n", "aggregation_params.top_p"),
        ("aggregation_params:\n  n: 0\n", "aggregation_params.n"),
        ("proposal_params:\n  max_tokens: -5\n", "proposal_params.max_tokens"),
        ("proposal_params:\n  temprature: 0.5\n", "temprature"),
        ("hidden_layer: -1\n", "hidden_layer"),
        ("final_aggregation: maybe\n", "final_aggregation"),
        ("final_params:\n  n: 2\n", "final_params.n"),
        ("generation_params:\n  final_layer_top_p: 2\n", "final_layer_top_p"),
        ("seed: 1\nvllm_seed: 2\n", "vllm_seed"),
        ("layers: 3\n", "layers"),
        ("proposal_params:\n  n: 5\n bad\n", "line 3"),
    ],
)
def test_a_bad_config_is_refused_naming_the_field(yaml_text, named):
    with pytest.raises(InvalidConfigError) as caught:
        AftConfig.from_yaml(yaml_text, source="my.yaml")
    assert named in str(caught.value) and "my.yaml" in str(caught.value)


def test_single_mode_is_one_plain_sample_and_the_cost_counts_every_layer():
    baseline = AftConfig(mode="single")
    assert [(layer.role, layer.sampling.n) for layer in baseline.layers()] == [("single", 1)]
    deep = AftConfig.from_dict(
        {
            "hidden_layer": 2,
            "proposal_params": {"n": 3, "max_tokens": 10},
            "aggregation_params": {"n": 4, "max_tokens": 20},
        }
    )
    assert deep.generations_per_prompt() == 3 + 4 + 4 + 1
    assert (
        deep.max_new_tokens_per_prompt() == 3 * 10 + 2 * 4 * 20 + 20
    )  # the final layer follows aggregation's max_tokens


def test_the_aggregator_prompt_is_the_originals_byte_for_byte():
    assert AGG_TEMPLATE.startswith("You are a helpful aggregator.\nYou have been provided")
    assert AGG_TEMPLATE.endswith("accuracy and reliability.\n    \n    Responses from models:")
    assert aggregator_system(["a", "b"]) == AGG_TEMPLATE + "\n1. a\n2. b"


def test_aggregation_data_config_checks_its_fields():
    assert AggregationDataConfig.from_dict(AggregationDataConfig().to_dict()) == AggregationDataConfig()
    with pytest.raises(InvalidConfigError, match="target_rule"):
        AggregationDataConfig(target_rule="longest")
    with pytest.raises(InvalidConfigError, match="min_proposals"):
        AggregationDataConfig(min_proposals=4, max_proposals=2)
    with pytest.raises(InvalidConfigError, match="aggregator.temperature"):
        AggregationDataConfig.from_dict({"aggregator": {"temperature": -1}})
