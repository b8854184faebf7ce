"""RL presets: each applies to a valid config, the CPU demo stays small, and the 7B preset's memory claim holds."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pipelines.errors import InvalidConfigError
from pipelines.training.rl.config import RLConfig
from pipelines.training.rl.presets import (
    GIB,
    RL_PRESETS,
    rl_default_values,
    rl_memory_estimate,
    rl_preset,
    rl_preset_choices,
)


def _config(name: str) -> RLConfig:
    return RLConfig.from_dict(rl_preset(name).lay_over_values(rl_default_values()))


@pytest.mark.parametrize("name", [preset.name for preset in RL_PRESETS])
def test_every_preset_makes_a_valid_config_that_counts_steps(name):
    config = _config(name)
    assert config.training.max_steps > 0
    assert rl_preset(name).apply(config) == config  # applying twice changes nothing


def test_apply_lays_the_preset_over_a_config_and_keeps_what_it_does_not_set():
    start = RLConfig.from_dict({"training": {"max_steps": 50, "seed": 7}, "temperature": 0.9})
    applied = rl_preset("7b-lora-1gpu").apply(start)
    assert applied.training.max_steps == 200 and applied.training.adapter == "lora"
    assert applied.training.lora.r == 16 and applied.max_new_tokens == 256
    assert applied.training.seed == 7 and applied.temperature == 0.9


def test_the_cpu_demo_is_small_enough_for_two_cores():
    config = _config("cpu-demo")
    assert config.training.device == "cpu" and config.training.dtype == "float32"
    assert config.training.max_steps <= 10 and config.prompts_per_step <= 4
    assert config.max_new_tokens <= 32 and config.held_out_prompts <= 8
    assert config.algorithm == "ppo"
    assert "mechanics" in rl_preset("cpu-demo").description
    # LoRA, with the reference read through the policy's adapter: the worker's 2 GB budget for the 135M model
    assert config.training.adapter == "lora"
    assert rl_memory_estimate(config, 134_515_008)["total"] < 2 * GIB


def test_the_7b_preset_fits_one_80_gb_gpu_as_its_description_says():
    config = _config("7b-lora-1gpu")
    ppo = rl_memory_estimate(config, 7_000_000_000)
    rloo = rl_memory_estimate(replace(config, algorithm="rloo"), 7_000_000_000)
    assert "value_model" in ppo and "value_model" not in rloo
    assert ppo["total"] < 80e9 and rloo["total"] < ppo["total"]
    description = rl_preset("7b-lora-1gpu").description
    assert f"about {round(ppo['total'] / GIB)} GiB with PPO" in description
    assert f"about {round(rloo['total'] / GIB)} GiB with" in description


def test_full_fine_tuning_a_7b_policy_does_not_fit_one_gpu_so_there_is_no_such_preset():
    full = replace(_config("7b-lora-1gpu"), algorithm="rloo")
    full = replace(full, training=replace(full.training, adapter="full"))
    assert rl_memory_estimate(full, 7_000_000_000)["total"] > 80e9
    assert all("full" not in preset.name for preset in RL_PRESETS)


def test_the_8_gpu_preset_is_a_critic_free_lora_run_that_fits_each_gpu():
    """A process group is for RLOO and GRPO (PPO trains in one process); each rank holds every model."""
    config = _config("7b-lora-8gpu-rloo")
    assert config.algorithm == "rloo" and config.training.adapter == "lora" and config.training.device == "cuda"
    assert rl_memory_estimate(config, 7_000_000_000)["total"] < 80e9


def test_an_unknown_preset_is_refused_on_the_preset_field_listing_the_known_ones():
    with pytest.raises(InvalidConfigError) as caught:
        rl_preset("7b-full-8gpu")
    assert caught.value.field == "preset" and "cpu-demo" in str(caught.value)
    assert [name for name, _ in rl_preset_choices()] == [preset.name for preset in RL_PRESETS]
