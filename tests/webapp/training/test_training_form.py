"""Training runs from the site: config layering, presets, and every refusal made before anything is queued."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from webapp.library.models import Artifact
from webapp.registry.models import ModelEntry
from webapp.registry.services import model_ensure_embedded
from webapp.runs import services as run_services
from webapp.runs.models import PipelineRun
from webapp.training import services

from .tokenizer_models import tokenizer_model

pytestmark = pytest.mark.django_db


def _artifact(tmp_path: Path, name: str, rows: list[dict]) -> Artifact:
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return run_services.artifact_register(run=None, name=name, kind=Artifact.Kind.SFT, jsonl_path=path)


@pytest.fixture
def sft_artifact(tmp_path):
    return _artifact(tmp_path, "sft", [{"prompt": "What is 2+2?", "response": "4."}] * 3)


def _form_post(dataset: Artifact, trainer: str = "sft", model: ModelEntry | None = None, **changes: str) -> dict:
    """What the form posts: `trainer` on `dataset` with `model` (the embedded one by default), one device, and `changes`."""
    return {
        "trainer": trainer,
        "model": (model or model_ensure_embedded()).pk,
        "dataset": dataset.pk,
        "devices": "1",
        **changes,
    }


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
    seven_b = ModelEntry.objects.create(
        name="7b", source=ModelEntry.Source.LOCAL, path="/models/7b", parameter_count=7_000_000_000
    )
    with pytest.raises(ValidationError) as caught:
        services.training_config_build(
            trainer="sft",
            model=seven_b,
            dataset=sft_artifact,
            training_overrides={"adapter": "full", "device": "cuda", "dtype": "bfloat16"},
        )
    assert "Does not fit" in caught.value.message_dict["device"][0]
    # The same model fits eight GPUs under ZeRO-3, and one GPU with LoRA.
    services.training_config_build(
        trainer="sft", model=seven_b, dataset=sft_artifact, preset="7b-full-8gpu-zero3", devices=8
    )
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
        _form_post(sft_artifact, model=model, preset="tiny-cpu-demo", max_steps="4", lora_r="4", name="tiny sft"),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    run = PipelineRun.objects.get()
    assert response["Location"] == run.get_absolute_url()
    assert run.kind == "train_sft" and run.queue_name == "gpu" and run.name == "tiny sft"
    assert run.config["config"]["training"]["max_steps"] == 4
    assert run.config["dataset_artifact_id"] == sft_artifact.pk and run.config["model_id"] == model.pk


def test_a_repeated_submission_queues_one_run_and_goes_to_it(researcher_client, sft_artifact):
    form = _form_post(sft_artifact, preset="tiny-cpu-demo", submission_key="a1b2c3d4e5f60718293a4b5c6d7e8f90")
    first = researcher_client.post("/training/new/", form)
    again = researcher_client.post("/training/new/", form)
    run = PipelineRun.objects.get()
    assert first.status_code == again.status_code == 302
    assert first["Location"] == again["Location"] == run.get_absolute_url()


def test_the_form_posts_itself_to_the_estimate_as_it_changes(researcher_client):
    page = researcher_client.get("/training/new/").content.decode()
    assert 'hx-post="/training/new/estimate/"' in page and 'hx-target="#training-estimate"' in page
    assert "Change a field to see the resolved settings." in page
    assert "Peak learning rate after warmup." in page  # help text from TrainingArgs' docstrings
    assert researcher_client.get("/training/new/estimate/").status_code == 405


def test_the_form_shows_the_missing_field_and_queues_nothing(researcher_client, sft_artifact):
    response = researcher_client.post("/training/new/", _form_post(sft_artifact, trainer="reward"))
    assert response.status_code == 400
    assert "no `chosen` field" in response.content.decode()
    assert PipelineRun.objects.count() == 0


def test_the_estimate_shows_the_resolved_config(researcher_client, pairs_artifact):
    query = _form_post(pairs_artifact, trainer="preference", preset="tiny-cpu-demo", loss="spin")
    page = researcher_client.post("/training/new/estimate/", query).content.decode()
    assert "Ready to queue" in page and "&quot;spin&quot;" in page
    page = researcher_client.post("/training/new/estimate/", {**query, "beta": "-1"}).content.decode()
    assert "Ready to queue" not in page and "beta" in page.lower()


def test_the_form_page_lists_the_presets(researcher_client):
    page = researcher_client.get("/training/new/").content.decode()
    for preset in ("tiny-cpu-demo", "7b-lora-1gpu", "7b-full-8gpu-zero3"):
        assert preset in page


@pytest.fixture
def tiny_entry(tiny_model_dir) -> ModelEntry:
    return ModelEntry.objects.create(name="tiny", source=ModelEntry.Source.LOCAL, path=str(tiny_model_dir))


@pytest.fixture
def aggregation_artifact(tmp_path):
    from pipelines.aft.data import aggregation_row

    rows = []
    for number in range(3):
        drafts = [f"Draft {index}: " + " ".join(f"reason{word}" for word in range(60)) for index in range(5)]
        example = {"prompt_id": f"g{number}", "prompt": f"Question {number}?", "proposals": drafts}
        rows.append(aggregation_row(example, f"Synthesis {number}.", "aggregator", "test"))
    return _artifact(tmp_path, "aggregation", rows)


def test_the_estimate_measures_token_lengths_and_proposes_lengths_that_fit(
    researcher_client, tiny_entry, aggregation_artifact
):
    query = _form_post(aggregation_artifact, model=tiny_entry, preset="tiny-cpu-demo")
    page = researcher_client.post("/training/new/estimate/", query).content.decode()
    assert "Ready to queue" in page
    assert "3 rows over the limits" in page and "they will be cut (counted in the run summary)" in page
    assert "Lengths that fit every row: max_prompt_length" in page
    refused = researcher_client.post("/training/new/estimate/", {**query, "over_length": "refuse"}).content.decode()
    assert "the run will refuse to start" in refused


def test_the_aggregation_preset_sizes_the_lengths_from_the_dataset(tiny_entry, aggregation_artifact, pairs_artifact):
    config = services.training_config_build(
        trainer="sft", model=tiny_entry, dataset=aggregation_artifact, preset="aft-aggregation"
    )
    training = config["config"]["training"]
    preview = services.training_length_preview(config=config, model=tiny_entry, dataset=aggregation_artifact)
    assert preview["rows_over"] == 0, preview["message"]
    assert training["max_prompt_length"] >= preview["summary"]["longest_prompt_tokens"] > 384
    assert training["max_length"] >= preview["summary"]["longest_example_tokens"]
    with pytest.raises(ValidationError, match="preset 'aft-aggregation' is for sft training"):
        services.training_config_build(
            trainer="reward", model=tiny_entry, dataset=pairs_artifact, preset="aft-aggregation"
        )


@pytest.mark.parametrize(
    "extra",
    ["[" * 100_000 + "]" * 100_000, json.dumps({"trainer_overrides": {"a": {"b": {"c": {"d": {"e": 1}}}}}})],
)
def test_deeply_nested_extra_settings_are_a_form_error_not_a_500(researcher_client, sft_artifact, extra):
    form = _form_post(sft_artifact, extra_settings=extra)
    response = researcher_client.post("/training/new/", form)
    assert response.status_code == 400
    assert "Nested too deeply" in response.content.decode()
    assert PipelineRun.objects.count() == 0
    estimate = researcher_client.post("/training/new/estimate/", form)
    assert estimate.status_code == 200 and "Nested too deeply" in estimate.content.decode()


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"max_steps": 10**12}, "max_steps must be -1"),
        ({"num_epochs": 10**9}, "num_epochs must be at most 1000"),
        ({"seed": -5}, "seed must be between 0 and"),
        ({"max_steps": "lots"}, "max_steps must be a whole number"),
    ],
)
def test_limits_are_the_configs_so_the_json_box_cannot_bypass_them(researcher_client, sft_artifact, extra, fragment):
    response = researcher_client.post("/training/new/", _form_post(sft_artifact, extra_settings=json.dumps(extra)))
    assert response.status_code == 400
    assert fragment in response.content.decode()
    assert PipelineRun.objects.count() == 0


def test_fine_tune_from_augcon_opens_augcons_own_sft_settings(researcher_client, tmp_path):
    from django.template.loader import render_to_string

    artifact = _artifact(tmp_path, "augcon-sft", [{"question": "Q?", "answer": "A.", "context": "C."}] * 3)
    link = render_to_string("augcon/partials/_run_section.html", {"augcon_sft": artifact})
    href = next(part for part in link.split('"') if part.startswith("/training/new/?"))
    assert "preset=augcon-sft" in href
    page = researcher_client.get(href.replace("&amp;", "&")).content.decode()
    assert '<option value="augcon-sft" selected>' in page
    response = researcher_client.post("/training/new/", _form_post(artifact, preset="augcon-sft"))
    assert response.status_code == 302, response.content.decode()[:3000]
    config = PipelineRun.objects.get().config["config"]
    training = config["training"]
    assert (training["learning_rate"], training["num_epochs"], training["per_device_batch_size"]) == (5e-5, 4.0, 4)
    assert (training["lora"]["r"], training["lora"]["alpha"], training["weight_decay"]) == (32, 32, 0.01)
    assert training["trainer_overrides"] == {"warmup_steps": 50} and training["lr_scheduler"] == "constant_with_warmup"
    assert config["completion_only_loss"] is False and config["include_context"] is False


def test_reward_model_defaults_step_on_128_pairs_shown_per_device_accumulation_devices(
    researcher_client, pairs_artifact
):
    one = services.training_config_build(trainer="reward", model=model_ensure_embedded(), dataset=pairs_artifact)
    assert one["effective_batch"] == "4 per device x 32 accumulation x 1 device = 128"
    assert one["config"]["training"]["adapter"] == "full"
    four = services.training_config_build(
        trainer="reward", model=model_ensure_embedded(), dataset=pairs_artifact, devices=4
    )
    assert four["effective_batch"] == "4 per device x 8 accumulation x 4 devices = 128"
    page = researcher_client.post(
        "/training/new/estimate/", _form_post(pairs_artifact, trainer="reward")
    ).content.decode()
    assert "4 per device x 32 accumulation x 1 device = 128" in page
    form_page = researcher_client.get("/training/new/").content.decode()
    assert "Ours: the papers train on every pair" in form_page


def test_the_prompt_format_follows_the_models_tokenizer_and_a_missing_chat_template_is_refused(
    researcher_client, tmp_path, embedded_model_dir, sft_artifact
):
    base = tokenizer_model(embedded_model_dir, tmp_path / "base", "Base-135M", chat_template=False)
    instruct = tokenizer_model(embedded_model_dir, tmp_path / "instruct", "Instruct-135M", chat_template=True)
    blank_base = services.training_config_build(trainer="sft", model=base, dataset=sft_artifact)
    blank_instruct = services.training_config_build(trainer="sft", model=instruct, dataset=sft_artifact)
    assert blank_base["config"]["training"]["prompt_format"] == "raw_assistant"
    assert blank_instruct["config"]["training"]["prompt_format"] == "chat_template"

    form = _form_post(sft_artifact, model=base, preset="tiny-cpu-demo")
    refused = researcher_client.post("/training/new/", {**form, "prompt_format": "chat_template"})
    assert refused.status_code == 400
    errors = refused.context["form"].errors["prompt_format"]  # on the field, shown beside it
    assert "Base-135M's tokenizer has no chat template" in errors[0] and "raw_assistant" in errors[0]
    assert PipelineRun.objects.count() == 0
    queued = researcher_client.post("/training/new/", form)
    assert queued.status_code == 302
    assert PipelineRun.objects.get().config["config"]["training"]["prompt_format"] == "raw_assistant"
