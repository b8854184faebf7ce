"""AFT configs: the paper's defaults, both YAML formats of the official repository, and errors that name the field."""
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

# The current code's configs/default.yaml (generation_params + num_aggregation).
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
    deep = AftConfig.from_dict({"hidden_layer": 2, "proposal_params": {"n": 3, "max_tokens": 10}, "aggregation_params": {"n": 4, "max_tokens": 20}})
    assert deep.generations_per_prompt() == 3 + 4 + 4 + 1
    assert deep.max_new_tokens_per_prompt() == 3 * 10 + 2 * 4 * 20 + 20  # the final layer follows aggregation's max_tokens


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
