"""Training configs, presets and the checks made before a job is queued."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipelines.errors import InvalidConfigError, InvalidInputError
from pipelines.training.arguments import accumulation_for_effective_batch, effective_batch, effective_batch_text
from pipelines.training.config import PreferenceConfig, RewardConfig, SFTConfig
from pipelines.training.layouts import validate_dataset_fields
from pipelines.training.memory import estimate_memory_fits
from pipelines.training.presets import TRAINING_PRESETS, ZERO3_CONFIG_PATH, TrainingPreset, training_preset


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
    assert (training.num_epochs, training.warmup_ratio, training.max_length) == (1.0, 0.03, 1024)
    # ALMoST steps on 128 pairs (4 x 8 x 4 GPUs) and fine-tunes every weight.
    assert effective_batch(training) == 128
    assert effective_batch_text(training) == "4 per device x 32 accumulation x 1 device = 128"
    assert training.adapter == "full"
    assert accumulation_for_effective_batch(128, 4, 4) == 8
    with pytest.raises(InvalidConfigError, match="effective batch of 128"):
        accumulation_for_effective_batch(128, 3, 1)


@pytest.mark.parametrize(
    ("training", "fragment"),
    [
        ({"max_steps": 10**12}, "max_steps must be -1 .run num_epochs. or between 1 and 10000000"),
        ({"num_epochs": 1e9}, "num_epochs must be at most 1000"),
        ({"seed": -1}, "seed must be between 0 and 4294967295"),
        ({"seed": 2**40}, "seed must be between 0"),
        ({"max_steps": "many"}, "training.max_steps must be a whole number"),
        ({"learning_rate": "fast"}, "training.learning_rate must be a number"),
        ({"qlora": "yes"}, "training.qlora must be true or false"),
        ({"lora": {"r": "8"}}, "lora.r must be a whole number"),
        ({"over_length": "squeeze"}, "over_length must be one of cut, refuse, drop"),
        ({"prompt_format": "alpaca"}, "prompt_format must be one of chat_template, raw_assistant"),
        (
            {"trainer_overrides": {"num_train_epochs": 1e9}},
            "trainer_overrides.num_train_epochs is set from training.num_epochs",
        ),
        ({"trainer_overrides": {"seed": -3}}, "trainer_overrides.seed is set from training.seed"),
        (
            {"trainer_overrides": {"warmup_steps": 10**12}},
            "trainer_overrides.warmup_steps must be a whole number between",
        ),
        ({"save_steps": 10**12}, "save_steps must be between 1 and"),
    ],
)
def test_training_limits_live_in_the_config_so_yaml_and_json_cannot_bypass_them(training, fragment):
    for config_class in (SFTConfig, PreferenceConfig, RewardConfig):
        with pytest.raises(InvalidConfigError, match=fragment):
            config_class.from_dict({"training": training})


def test_the_augcon_sft_preset_is_augcons_finetune_settings():
    config = training_preset("augcon-sft").apply(SFTConfig())
    training = config.training
    assert (training.learning_rate, training.num_epochs, training.per_device_batch_size) == (5e-5, 4.0, 4)
    assert (training.weight_decay, training.trainer_overrides, training.lr_scheduler) == (
        0.01,
        {"warmup_steps": 50},
        "constant_with_warmup",
    )
    assert (training.adapter, training.lora.r, training.lora.alpha, training.qlora) == ("lora", 32, 32, False)
    assert config.completion_only_loss is False  # finetune.py: labels = every input id
    qlora = training_preset("augcon-sft-qlora").apply(SFTConfig())
    assert qlora.training.qlora and qlora.training.device == "cuda"
    with pytest.raises(InvalidConfigError, match="preset 'augcon-sft' is for sft training, not reward"):
        training_preset("augcon-sft").apply(RewardConfig())


def test_preference_training_switches_policy_dropout_off_by_default():
    assert PreferenceConfig().disable_dropout is True


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
    names = {preset.name for preset in TRAINING_PRESETS}
    assert {"tiny-cpu-demo", "7b-lora-1gpu", "7b-full-8gpu-zero3", "augcon-sft", "aft-aggregation"} <= names
    assert all(isinstance(preset, TrainingPreset) and preset.description for preset in TRAINING_PRESETS)
    tiny = training_preset("tiny-cpu-demo").apply(SFTConfig()).training
    assert (tiny.device, tiny.adapter, tiny.max_steps) == ("cpu", "lora", 20)
    zero3 = training_preset("7b-full-8gpu-zero3").apply(PreferenceConfig(loss="spin"))
    assert zero3.training.adapter == "full"
    assert zero3.training.deepspeed_config == str(ZERO3_CONFIG_PATH)
    assert ZERO3_CONFIG_PATH.is_file()
    assert zero3.loss == "spin" and zero3.training.optimizer == "rmsprop"
    with pytest.raises(InvalidConfigError, match="unknown preset") as refused:
        training_preset("70b-magic")
    assert refused.value.field == "preset"


def test_only_the_aggregation_preset_is_sized_from_the_data_and_sft_only_presets_say_so():
    assert [preset.name for preset in TRAINING_PRESETS if preset.sized_from_data] == ["aft-aggregation"]
    sft_only = {preset.name for preset in TRAINING_PRESETS if preset.trainers == ("sft",)}
    assert sft_only == {"augcon-sft", "augcon-sft-qlora", "aft-aggregation"}


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
    zero3 = estimate_memory_fits(
        seven_billion, "bfloat16", "cuda", lora=False, available_bytes=gpu_80_gib, devices=8, zero_stage=3
    )
    assert not full.fits and "use LoRA" in full.message
    assert lora.fits and zero3.fits
    small = estimate_memory_fits(135_000_000, "auto", "cpu", lora=False)
    assert small.fits, small.message


def test_importing_the_training_package_does_not_import_torch():
    code = (
        "import sys, pipelines.training, pipelines.training.arguments, pipelines.training.config, "
        "pipelines.training.presets, "
        "pipelines.training.layouts, pipelines.training.memory, pipelines.training.result; "
        "print('torch' in sys.modules)"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "False"
