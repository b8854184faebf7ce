"""SPIN from the site: the preset and the form's fields layered over the paper's defaults; refusals queue nothing."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError

from pipelines.errors import InvalidConfigError
from webapp.library.models import Artifact
from webapp.registry.services import model_ensure_embedded
from webapp.runs import services as run_services
from webapp.runs.models import PipelineRun
from webapp.spin import services

pytestmark = pytest.mark.django_db


def _artifact(tmp_path, name, rows):
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return run_services.artifact_register(run=None, name=name, kind=Artifact.Kind.SFT, jsonl_path=path)


@pytest.fixture
def sft(tmp_path):
    return _artifact(tmp_path, "qa", [{"question": f"q{i}?", "answer": f"a{i}."} for i in range(10)])


def _form_post(dataset: Artifact, **changes: str) -> dict:
    """What the form posts: the embedded model on `dataset`, the tiny preset, two iterations on one device, and `changes`."""
    return {
        "model": model_ensure_embedded().pk,
        "dataset": dataset.pk,
        "preset": "tiny-cpu-demo",
        "iterations": "2",
        "conversation_turn": "first",
        "devices": "1",
        **changes,
    }


def test_the_paper_defaults_and_the_tiny_preset(sft):
    paper = services.spin_config_build(model=model_ensure_embedded(), dataset=sft, preset="")["spin"]
    assert paper["training"]["loss"] == "spin" and paper["training"]["beta"] == 0.1
    assert paper["training"]["training"]["learning_rate"] == 5e-7 and paper["generation"]["max_tokens"] == 256
    # The paper's settings are the paper's: every weight trained, RMSprop, 8 per device x 8 steps = 64 on one device.
    args = paper["training"]["training"]
    assert (args["adapter"], args["optimizer"]) == ("full", "rmsprop")
    assert (args["per_device_batch_size"], args["gradient_accumulation_steps"]) == (8, 8)
    assert paper["conversation_turn"] == "first"
    tiny = services.spin_config_build(
        model=model_ensure_embedded(),
        dataset=sft,
        preset="tiny-cpu-demo",
        iterations=3,
        max_new_tokens=20,
        training_overrides={"max_steps": 5},
        beta=0.3,
    )["spin"]
    assert tiny["iterations"] == 3 and tiny["generation"]["max_tokens"] == 20
    assert tiny["training"]["training"]["max_steps"] == 5 and tiny["training"]["beta"] == 0.3
    assert tiny["training"]["training"]["device"] == "cpu"


def test_a_preference_dataset_is_refused_naming_what_spin_needs(tmp_path):
    pairs = _artifact(tmp_path, "pairs", [{"prompt": "p", "chosen": "a", "rejected": "b"}])
    with pytest.raises(ValidationError) as caught:
        services.spin_config_build(model=model_ensure_embedded(), dataset=pairs)
    assert "`response`" in caught.value.message_dict["dataset"][0]


def _estimate_figures(response) -> dict:
    """The estimate partial's figures by key, as the page shows them."""
    assert response.status_code == 200
    return {line.key: line.value for line in response.context["estimate"].lines}


def test_the_form_estimates_the_cost_then_queues(researcher_client, sft):
    fields = _form_post(sft, max_prompts="4", mix_previous="on")
    estimate = researcher_client.post("/spin/estimate/", fields)
    assert estimate.status_code == 200 and PipelineRun.objects.count() == 0
    page = estimate.content.decode()
    assert '<tr data-key="generations"><th>Generations</th><td class="num">8</td>' in page  # 4 prompts x 2 iterations
    # The form asks for its estimate itself, on every change (the one shared estimate partial).
    form_page = researcher_client.get("/spin/new/").content.decode()
    assert 'hx-post="/spin/estimate/"' in form_page and 'id="spin-estimate"' in form_page

    response = researcher_client.post("/spin/new/", fields)
    run = PipelineRun.objects.get()
    assert response.status_code == 302 and response["Location"] == run.get_absolute_url()
    assert run.kind == "spin" and run.config["spin"]["max_prompts"] == 4


def test_bad_settings_are_shown_and_nothing_is_queued(researcher_client, sft):
    fields = _form_post(sft, learning_rate="0.5")
    response = researcher_client.post("/spin/new/", fields)
    assert response.status_code == 400 and "learning_rate" in response.content.decode()
    assert PipelineRun.objects.count() == 0
    # The estimate shows the same refusal instead of figures.
    estimate = researcher_client.post("/spin/estimate/", fields)
    assert estimate.context["estimate"] is None and "learning_rate" in estimate.content.decode()


def test_the_paper_batch_of_64_is_split_over_the_devices_and_shown_and_a_split_that_cannot_reach_it_is_refused(sft):
    on_eight = services.spin_config_build(model=model_ensure_embedded(), dataset=sft, preset="", devices=8)
    args = on_eight["spin"]["training"]["training"]
    assert (args["per_device_batch_size"], args["gradient_accumulation_steps"]) == (8, 1)
    summary = services.training_summary(on_eight)
    assert summary["effective batch"].startswith("8 per device × 1 accumulation × 8 devices = 64")
    assert summary["adapter"] == "full fine-tuning (the paper's)"
    with pytest.raises(InvalidConfigError, match="cannot be split over 3 devices") as caught:
        services.spin_config_build(model=model_ensure_embedded(), dataset=sft, preset="", devices=3)
    assert caught.value.field == "devices"


def test_the_lora_option_is_labelled_ours_and_trains_at_a_rate_that_moves_an_adapter(researcher_client, sft):
    lora = services.spin_config_build(model=model_ensure_embedded(), dataset=sft, preset="lora")
    args = lora["spin"]["training"]["training"]
    assert args["adapter"] == "lora" and args["learning_rate"] == 5e-6
    summary = services.training_summary(lora)
    assert "ours" in summary["adapter"] and summary["learning rate per iteration"] == "5e-06, 5e-06"
    page = researcher_client.get("/spin/new/").content.decode()
    assert "the paper&#x27;s settings: full fine-tuning, RMSprop, lr 5e-7, effective batch 64" in page
    assert "LoRA r16 at lr 5e-6 (ours" in page and "tiny CPU demo (ours)" in page
    # Help text comes from SpinConfig's field docs, written once beside the field.
    assert "Rounds of self-play; the paper reports iterations 0 to 3" in page
    with pytest.raises(InvalidConfigError) as caught:
        services.spin_config_build(model=model_ensure_embedded(), dataset=sft, preset="huge")
    assert caught.value.field == "preset"


def test_the_estimate_shows_how_the_paper_preset_trains(researcher_client, sft):
    fields = _form_post(sft, preset="", iterations="4", mix_previous="on")
    page = researcher_client.post("/spin/estimate/", fields)
    assert page.context["estimate"] is not None, page.context["form"].errors
    estimate = _estimate_figures(page)
    assert estimate["effective batch"].startswith("8 per device × 8 accumulation × 1 device = 64")
    assert estimate["learning rate per iteration"] == "5e-07, 5e-07, 1e-07, 1e-07"
    assert estimate["beta per iteration"] == "0.1, 0.1, 0.1, 5"
    assert PipelineRun.objects.count() == 0


def test_the_turn_mode_is_a_form_field_and_every_reply_counts_in_the_estimate(researcher_client, tmp_path):
    conversation = [
        {"role": "user", "content": "Capital of Austria?"},
        {"role": "assistant", "content": "Vienna."},
        {"role": "user", "content": "Population?"},
        {"role": "assistant", "content": "About 2.1 million."},
    ]
    chat = _artifact(tmp_path, "chat", [{"messages": conversation}] * 3)
    fields = _form_post(chat, iterations="1", conversation_turn="every")
    estimate = _estimate_figures(researcher_client.post("/spin/estimate/", fields))
    assert estimate["prompts"] == 6 and estimate["prompt turn"] == "every"
    researcher_client.post("/spin/new/", fields)
    assert PipelineRun.objects.get().config["spin"]["conversation_turn"] == "every"


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"iterations": "1000"}, "iterations"),
        ({"max_new_tokens": "1000000000"}, "max_new_tokens"),
        ({"devices": "3", "preset": ""}, "devices"),
        ({"conversation_turn": "second"}, "conversation_turn"),
    ],
)
def test_out_of_bounds_settings_are_refused_naming_the_field_and_nothing_is_queued(
    researcher_client, sft, overrides, named
):
    response = researcher_client.post("/spin/new/", _form_post(sft, **overrides))
    assert response.status_code == 400 and named in response.context["form"].errors
    assert PipelineRun.objects.count() == 0


def test_a_config_beyond_spins_bounds_is_refused_by_the_service_too(sft):
    with pytest.raises(InvalidConfigError, match="max_tokens must be between 1 and 32768"):
        services.spin_config_build(model=model_ensure_embedded(), dataset=sft, max_new_tokens=10**9)
    with pytest.raises(InvalidConfigError, match="num_epochs"):
        services.spin_config_build(model=model_ensure_embedded(), dataset=sft, training_overrides={"num_epochs": 10**7})
