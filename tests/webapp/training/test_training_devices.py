"""The device count on the training forms: the memory check shards by it, the estimate multiplies by it, the worker uses it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from pipelines.errors import InvalidConfigError
from pipelines.training.memory import sharding_stage
from pipelines.training.presets import ZERO2_CONFIG_PATH, training_preset
from webapp.library.models import Artifact
from webapp.registry.models import ModelEntry
from webapp.registry.services import model_ensure_embedded
from webapp.runs import services as run_services
from webapp.training import services

pytestmark = pytest.mark.django_db


@pytest.fixture
def sft_artifact(tmp_path: Path) -> Artifact:
    path = tmp_path / "sft.jsonl"
    path.write_text(json.dumps({"prompt": "What is 2+2?", "response": "4."}) + "\n")
    return run_services.artifact_register(run=None, name="sft", kind=Artifact.Kind.SFT, jsonl_path=path)


@pytest.fixture
def seven_b(settings) -> ModelEntry:
    settings.TRAINING_GPU_MEMORY_GIB = 80
    return ModelEntry.objects.create(
        name="7b", source=ModelEntry.Source.LOCAL, path="/models/7b", parameter_count=7_000_000_000
    )


def test_full_training_on_many_gpus_fits_only_when_zero3_shards_it(sft_artifact, seven_b):
    full_ddp = {"adapter": "full", "device": "cuda", "dtype": "bfloat16"}
    with pytest.raises(ValidationError) as caught:
        services.training_config_build(
            trainer="sft", model=seven_b, dataset=sft_artifact, training_overrides=full_ddp, devices=8
        )
    assert "no sharding, 8 devices" in caught.value.message_dict["device"][0]
    with pytest.raises(ValidationError, match="ZeRO-3 across 1 device"):
        services.training_config_build(
            trainer="sft", model=seven_b, dataset=sft_artifact, preset="7b-full-8gpu-zero3", devices=1
        )
    for devices in (2, 8):
        config = services.training_config_build(
            trainer="sft", model=seven_b, dataset=sft_artifact, preset="7b-full-8gpu-zero3", devices=devices
        )
        assert config["effective_batch"] == f"8 per device x 1 accumulation x {devices} devices = {8 * devices}"
        assert config["distributed"] == {"processes": devices}  # what the worker launches


def test_the_estimate_shows_per_device_batch_x_accumulation_x_devices(researcher_client, sft_artifact):
    post = {"trainer": "sft", "model": model_ensure_embedded().pk, "dataset": sft_artifact.pk}
    for devices in (1, 2):
        page = researcher_client.post("/training/new/estimate/", {**post, "devices": str(devices)}).content.decode()
        line = re.search(r"(\d+) per device x (\d+) accumulation x (\d+) devices? = (\d+)", page)
        assert line is not None, page
        per_device, accumulation, shown_devices, effective = map(int, line.groups())
        assert shown_devices == devices and effective == per_device * accumulation * devices


def test_the_forms_start_from_the_training_workers_own_device_count(researcher_client, settings):
    settings.REFINERY_TRAINING_DEVICES = ["0", "1", "2"]
    for url in ("/training/new/", "/spin/new/"):
        page = researcher_client.get(url).content.decode()
        field = re.search(r'<input[^>]*name="devices"[^>]*>', page)
        assert field is not None and 'value="3"' in field.group(0), url
    settings.REFINERY_TRAINING_DEVICES = []
    settings.REFINERY_TRAINING_PROCESSES = 2
    assert services.worker_training_devices() == 2


def test_zero2_splits_less_than_zero3_and_fsdp_full_shard_sizes_like_zero3(sft_artifact, seven_b):
    """The multi-GPU presets: ZeRO-2 keeps the weights whole on each GPU, FSDP full-shard splits them as ZeRO-3."""
    for preset, stage in (("7b-full-8gpu-zero2", 2), ("7b-full-8gpu-fsdp", 3)):
        with pytest.raises(ValidationError, match=f"ZeRO-{stage} across 1 device"):
            services.training_config_build(trainer="sft", model=seven_b, dataset=sft_artifact, preset=preset, devices=1)
        config = services.training_config_build(
            trainer="sft", model=seven_b, dataset=sft_artifact, preset=preset, devices=8
        )
        assert config["distributed"] == {"processes": 8}
    fsdp = training_preset("7b-full-8gpu-fsdp").training["trainer_overrides"]
    assert sharding_stage("", fsdp) == 3
    assert sharding_stage(str(ZERO2_CONFIG_PATH), {}) == 2
    with pytest.raises(InvalidConfigError, match="choose one"):
        sharding_stage(str(ZERO2_CONFIG_PATH), fsdp)
    config = services.training_config_build(
        trainer="sft", model=seven_b, dataset=sft_artifact, preset="7b-lora-8gpu-ddp", devices=8
    )
    assert config["effective_batch"] == "8 per device x 2 accumulation x 8 devices = 128"
