"""Training runs from the site: config layering, presets, and every refusal made before anything is queued."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from webapp.registry.models import ModelEntry
from webapp.registry.services import model_ensure_embedded
from webapp.runs import services as run_services
from webapp.runs.models import Artifact, PipelineRun
from webapp.training import services

pytestmark = pytest.mark.django_db


def _artifact(tmp_path: Path, name: str, rows: list[dict]) -> Artifact:
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return run_services.artifact_register(run=None, name=name, kind=Artifact.Kind.SFT, jsonl_path=path)


@pytest.fixture
def sft_artifact(tmp_path):
    return _artifact(tmp_path, "sft", [{"prompt": "What is 2+2?", "response": "4."}] * 3)


@pytest.fixture
def pairs_artifact(tmp_path):
    return _artifact(tmp_path, "pairs", [{"prompt": "2+2?", "chosen": "4.", "rejected": "7."}] * 3)


def test_a_dataset_without_the_trainers_fields_is_refused_naming_the_missing_field(sft_artifact):
    with pytest.raises(ValidationError) as caught:
        services.training_config_build(trainer="preference", model=model_ensure_embedded(), dataset=sft_artifact)
    assert "dataset" in caught.value.message_dict
    message = caught.value.message_dict["dataset"][0]
    assert "`chosen`" in message and "sft" in message
    assert PipelineRun.objects.count() == 0


def test_layers_are_paper_defaults_then_preset_then_the_forms_fields(pairs_artifact):
    plain = services.training_config_build(trainer="preference", model=model_ensure_embedded(), dataset=pairs_artifact)
    assert plain["config"]["training"]["learning_rate"] == 5e-7  # SPIN/DPO default
    assert plain["config"]["training"]["optimizer"] == "rmsprop" and plain["config"]["beta"] == 0.1

    tuned = services.training_config_build(
        trainer="preference",
        model=model_ensure_embedded(),
        dataset=pairs_artifact,
        preset="tiny-cpu-demo",
        training_overrides={"max_steps": 3, "lora": {"r": 4}},
        method_options={"loss": "spin", "beta": 0.2, "eval_fraction": None},
    )
    training = tuned["config"]["training"]
    assert training["device"] == "cpu" and training["save_steps"] == 10  # from the preset
    assert training["max_steps"] == 3 and training["lora"]["r"] == 4  # from the form
    assert training["lora"]["alpha"] == 16  # the preset's alpha survives a rank-only override
    assert tuned["config"]["loss"] == "spin" and tuned["config"]["beta"] == 0.2


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"learning_rate": 0.5}, "learning_rate"),
        ({"per_device_batch_size": 0}, "per_device_batch_size"),
        ({"max_prompt_length": 600, "max_length": 512}, "max_prompt_length"),
        ({"warmup_steps": 3}, "warmup_steps"),
    ],
)
def test_out_of_range_settings_are_refused_with_the_field_named(sft_artifact, overrides, fragment):
    with pytest.raises(ValidationError, match=fragment):
        services.training_config_build(
            trainer="sft", model=model_ensure_embedded(), dataset=sft_artifact, training_overrides=overrides
        )


def test_a_model_that_cannot_fit_the_device_is_refused(sft_artifact, settings):
    settings.TRAINING_GPU_MEMORY_GIB = 80
    seven_b = ModelEntry.objects.create(name="7b", source=ModelEntry.Source.LOCAL, path="/models/7b", parameter_count=7_000_000_000)
    with pytest.raises(ValidationError) as caught:
        services.training_config_build(
            trainer="sft", model=seven_b, dataset=sft_artifact,
            training_overrides={"adapter": "full", "device": "cuda", "dtype": "bfloat16"},
        )
    assert "Does not fit" in caught.value.message_dict["device"][0]
    # The same model fits eight GPUs under ZeRO-3, and one GPU with LoRA.
    services.training_config_build(trainer="sft", model=seven_b, dataset=sft_artifact, preset="7b-full-8gpu-zero3", devices=8)
    services.training_config_build(trainer="sft", model=seven_b, dataset=sft_artifact, preset="7b-lora-1gpu")
    with pytest.raises(ValidationError, match="CPU training is for models up to"):
        services.training_config_build(trainer="sft", model=seven_b, dataset=sft_artifact, preset="tiny-cpu-demo")


def test_endpoints_and_reward_models_cannot_be_fine_tuned(sft_artifact):
    endpoint = ModelEntry.objects.create(
        name="remote", backend=ModelEntry.Backend.OPENAI, source=ModelEntry.Source.ENDPOINT, base_url="http://x/v1"
    )
    reward = ModelEntry.objects.create(name="rm", source=ModelEntry.Source.RUN, path="/x", task=ModelEntry.Task.REWARD)
    for model in (endpoint, reward):
        with pytest.raises(ValidationError) as caught:
            services.training_config_build(trainer="sft", model=model, dataset=sft_artifact)
        assert "model" in caught.value.message_dict


def test_the_form_queues_a_training_run_on_the_gpu_queue(researcher_client, sft_artifact):
    model = model_ensure_embedded()
    response = researcher_client.post(
        "/training/new/",
        {"trainer": "sft", "model": model.pk, "dataset": sft_artifact.pk, "preset": "tiny-cpu-demo",
         "max_steps": "4", "devices": "1", "lora_r": "4", "name": "tiny sft"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    run = PipelineRun.objects.get()
    assert response["Location"] == run.get_absolute_url()
    assert run.kind == PipelineRun.Kind.TRAIN_SFT and run.queue_name == "gpu" and run.name == "tiny sft"
    assert run.config["config"]["training"]["max_steps"] == 4
    assert run.config["dataset_artifact_id"] == sft_artifact.pk and run.config["model_id"] == model.pk


def test_the_form_shows_the_missing_field_and_queues_nothing(researcher_client, sft_artifact):
    response = researcher_client.post(
        "/training/new/",
        {"trainer": "reward", "model": model_ensure_embedded().pk, "dataset": sft_artifact.pk, "devices": "1"},
    )
    assert response.status_code == 400
    assert "no `chosen` field" in response.content.decode()
    assert PipelineRun.objects.count() == 0


def test_the_preview_shows_the_resolved_config(researcher_client, pairs_artifact):
    query = {"trainer": "preference", "model": model_ensure_embedded().pk, "dataset": pairs_artifact.pk,
             "preset": "tiny-cpu-demo", "loss": "spin", "devices": "1"}
    page = researcher_client.get("/training/new/preview/", query).content.decode()
    assert "Ready to queue" in page and "&quot;spin&quot;" in page
    page = researcher_client.get("/training/new/preview/", {**query, "beta": "-1"}).content.decode()
    assert "Ready to queue" not in page and "beta" in page.lower()


def test_the_form_page_lists_the_presets(researcher_client):
    page = researcher_client.get("/training/new/").content.decode()
    for preset in ("tiny-cpu-demo", "7b-lora-1gpu", "7b-full-8gpu-zero3"):
        assert preset in page
