"""Training configs, presets and the checks made before a job is queued."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipelines.errors import InvalidConfigError, InvalidInputError
from pipelines.training.config import (
    PRESETS,
    ZERO3_CONFIG_PATH,
    PreferenceConfig,
    RewardConfig,
    SFTConfig,
    apply_preset,
    estimate_memory_fits,
    validate_dataset_fields,
)


@pytest.mark.parametrize("config_class", [SFTConfig, PreferenceConfig, RewardConfig])
def test_configs_round_trip_through_json_dicts(config_class):
    config = config_class()
    assert config_class.from_dict(config.to_dict()) == config


def test_spin_defaults_follow_the_paper():
    config = PreferenceConfig(loss="spin")
    assert config.beta == 0.1
    assert config.training.learning_rate == 5e-7
    assert config.training.optimizer == "rmsprop"
    assert config.training.warmup_ratio == 0.1
    assert (config.training.max_length, config.training.max_prompt_length) == (1024, 512)


def test_reward_defaults_follow_almost():
    training = RewardConfig().training
    assert (training.learning_rate, training.weight_decay, training.lr_scheduler) == (2e-5, 0.1, "cosine")


@pytest.mark.parametrize(
    ("data", "field_name"),
    [
        ({"training": {"learning_rate": 0.5}}, "learning_rate"),
        ({"training": {"per_device_batch_size": 0}}, "per_device_batch_size"),
        ({"training": {"optimizer": "lion"}}, "optimizer"),
        ({"training": {"max_prompt_length": 2048}}, "max_prompt_length"),
        ({"training": {"lora": {"r": 0}}}, "lora.r"),
        ({"training": {"qlora": True, "adapter": "full"}}, "qlora"),
        ({"loss": "kto"}, "loss"),
        ({"beta": 0}, "beta"),
        ({"betta": 0.1}, "betta"),
    ],
)
def test_invalid_preference_settings_are_refused_naming_the_field(data, field_name):
    with pytest.raises(InvalidConfigError, match=field_name.replace(".", r"\.")):
        PreferenceConfig.from_dict(data)


def test_presets_are_data_applied_over_a_config():
    assert set(PRESETS) == {"tiny-cpu-demo", "7b-lora-1gpu", "7b-full-8gpu-zero3"}
    tiny = apply_preset(SFTConfig(), "tiny-cpu-demo").training
    assert (tiny.device, tiny.adapter, tiny.max_steps) == ("cpu", "lora", 20)
    zero3 = apply_preset(PreferenceConfig(loss="spin"), "7b-full-8gpu-zero3")
    assert zero3.training.adapter == "full"
    assert zero3.training.deepspeed_config == str(ZERO3_CONFIG_PATH)
    assert ZERO3_CONFIG_PATH.is_file()
    assert zero3.loss == "spin" and zero3.training.optimizer == "rmsprop"
    with pytest.raises(InvalidConfigError, match="unknown preset"):
        apply_preset(SFTConfig(), "70b-magic")


@pytest.mark.parametrize(
    ("kind", "columns", "message"),
    [
        ("preference", ["prompt", "rejected"], "no `chosen` field; preference training needs prompt, chosen, rejected"),
        ("preference", ["real"], "no `generated` field"),
        ("sft", ["prompt", "answer"], "no `response` field"),
        ("reward", ["text"], "no `prompt` field; reward-model training needs prompt, chosen, rejected"),
    ],
)
def test_dataset_without_the_needed_fields_is_refused_naming_the_field(kind, columns, message):
    with pytest.raises(InvalidInputError, match=message):
        validate_dataset_fields(kind, columns)


def test_dataset_layouts_are_recognised():
    assert validate_dataset_fields("sft", ["messages", "id"]) == ("messages",)
    assert validate_dataset_fields("sft", ["question", "answer", "context"]) == ("question", "answer")
    assert validate_dataset_fields("preference", ["real", "generated"]) == ("real", "generated")


def test_memory_estimate_tells_a_7b_full_run_from_a_lora_run():
    seven_billion = 7_000_000_000
    gpu_80_gib = 80 * 1024**3
    full = estimate_memory_fits(seven_billion, "bfloat16", "cuda", lora=False, available_bytes=gpu_80_gib)
    lora = estimate_memory_fits(seven_billion, "bfloat16", "cuda", lora=True, available_bytes=gpu_80_gib)
    zero3 = estimate_memory_fits(seven_billion, "bfloat16", "cuda", lora=False, available_bytes=gpu_80_gib, devices=8)
    assert not full.fits and "use LoRA" in full.message
    assert lora.fits and zero3.fits
    small = estimate_memory_fits(135_000_000, "auto", "cpu", lora=False)
    assert small.fits, small.message


def test_importing_the_training_package_does_not_import_torch():
    code = "import sys, pipelines.training, pipelines.training.config; print('torch' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "False"
