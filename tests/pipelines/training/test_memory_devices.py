"""The memory estimate counts devices the way the sharding does: DDP copies everything, ZeRO-3 splits everything."""

from __future__ import annotations

import json

import pytest

from pipelines.errors import InvalidConfigError
from pipelines.training.memory import deepspeed_zero_stage, estimate_memory_fits
from pipelines.training.presets import ZERO3_CONFIG_PATH

SEVEN_BILLION = 7_000_000_000
GPU_80_GIB = 80 * 1024**3


def _full_bf16(devices: int, zero_stage: int) -> int:
    return estimate_memory_fits(
        SEVEN_BILLION,
        "bfloat16",
        "cuda",
        lora=False,
        available_bytes=GPU_80_GIB,
        devices=devices,
        zero_stage=zero_stage,
    ).required_bytes


@pytest.mark.parametrize("devices", [1, 2, 8])
def test_plain_data_parallel_keeps_the_whole_run_on_every_device(devices):
    # bf16 weights 2 + fp32 master 4 + gradients 4 + two Adam moments 8 = 18 bytes a parameter, +25 %.
    assert _full_bf16(devices, zero_stage=0) == int(SEVEN_BILLION * 18 * 1.25)


@pytest.mark.parametrize("devices", [1, 2, 8])
def test_zero3_splits_weights_gradients_and_optimizer_state_across_the_devices(devices):
    assert _full_bf16(devices, zero_stage=3) == int(SEVEN_BILLION * 18 / devices * 1.25)


def test_zero1_and_zero2_split_only_what_they_shard():
    # ZeRO-1: optimizer state (moments + master, 12 bytes) split; ZeRO-2: gradients (4) as well.
    assert _full_bf16(8, zero_stage=1) == int(SEVEN_BILLION * (2 + 4 + 12 / 8) * 1.25)
    assert _full_bf16(8, zero_stage=2) == int(SEVEN_BILLION * (2 + 4 / 8 + 12 / 8) * 1.25)
    assert _full_bf16(8, 0) > _full_bf16(8, 1) > _full_bf16(8, 2) > _full_bf16(8, 3)


def test_a_7b_full_run_fits_80_gib_gpus_only_when_zero3_shards_it_across_enough_of_them():
    def fits(devices: int, zero_stage: int) -> bool:
        return estimate_memory_fits(
            SEVEN_BILLION,
            "bfloat16",
            "cuda",
            lora=False,
            available_bytes=GPU_80_GIB,
            devices=devices,
            zero_stage=zero_stage,
        ).fits

    assert not fits(1, 3) and fits(2, 3) and fits(8, 3)
    assert not fits(8, 0)  # eight copies of a run that does not fit one GPU still do not fit
    message = estimate_memory_fits(
        SEVEN_BILLION, "bfloat16", "cuda", lora=False, available_bytes=GPU_80_GIB, devices=8
    ).message
    assert "no sharding, 8 devices" in message and "more devices with ZeRO-3" in message
    assert (
        "ZeRO-3 across 8 devices"
        in estimate_memory_fits(
            SEVEN_BILLION, "bfloat16", "cuda", lora=False, available_bytes=GPU_80_GIB, devices=8, zero_stage=3
        ).message
    )


def test_lora_splits_its_frozen_base_only_under_zero3():
    def lora(devices: int, zero_stage: int) -> int:
        return estimate_memory_fits(
            SEVEN_BILLION,
            "bfloat16",
            "cuda",
            lora=True,
            available_bytes=GPU_80_GIB,
            devices=devices,
            zero_stage=zero_stage,
        ).required_bytes

    trainable = 0.01 * SEVEN_BILLION * 16
    assert lora(8, 0) == lora(1, 0) == int((SEVEN_BILLION * 2 + trainable) * 1.25)
    assert lora(8, 3) == int((SEVEN_BILLION * 2 / 8 + trainable) * 1.25)


def test_the_shipped_zero3_config_reads_as_stage_3_and_no_config_as_plain_data_parallel():
    assert deepspeed_zero_stage(str(ZERO3_CONFIG_PATH)) == 3
    assert deepspeed_zero_stage("") == 0


def test_a_deepspeed_config_that_cannot_be_sized_is_refused_by_name(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"zero_optimization": {"stage": 3,}\n')
    with pytest.raises(InvalidConfigError, match=r"broken.json: not JSON \(line 1\)"):
        deepspeed_zero_stage(str(broken))
    stage_five = tmp_path / "five.json"
    stage_five.write_text(json.dumps({"zero_optimization": {"stage": 5}}))
    with pytest.raises(InvalidConfigError, match="zero_optimization.stage must be one of 0, 1, 2, 3; got 5"):
        deepspeed_zero_stage(str(stage_five))
    with pytest.raises(InvalidConfigError, match="missing.json cannot be read"):
        deepspeed_zero_stage(str(tmp_path / "missing.json"))
    with pytest.raises(InvalidConfigError, match="devices must be at least 1"):
        estimate_memory_fits(SEVEN_BILLION, "bfloat16", "cuda", lora=False, available_bytes=GPU_80_GIB, devices=0)
