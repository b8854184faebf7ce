"""SPIN from the site: the preset and the form's fields layered over the paper's defaults; refusals queue nothing."""
from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError

from webapp.registry.services import model_ensure_embedded
from webapp.runs import services as run_services
from webapp.runs.models import Artifact, PipelineRun
from webapp.spin import services

pytestmark = pytest.mark.django_db


def _artifact(tmp_path, name, rows):
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return run_services.artifact_register(run=None, name=name, kind=Artifact.Kind.SFT, jsonl_path=path)


@pytest.fixture
def sft(tmp_path):
    return _artifact(tmp_path, "qa", [{"question": f"q{i}?", "answer": f"a{i}."} for i in range(10)])


def test_the_paper_defaults_and_the_tiny_preset(sft):
    paper = services.spin_config_build(model=model_ensure_embedded(), dataset=sft, preset="")["spin"]
    assert paper["training"]["loss"] == "spin" and paper["training"]["beta"] == 0.1
    assert paper["training"]["training"]["learning_rate"] == 5e-7 and paper["generation"]["max_tokens"] == 256
    tiny = services.spin_config_build(
        model=model_ensure_embedded(), dataset=sft, preset="tiny-cpu-demo", iterations=3, max_new_tokens=20,
        training_overrides={"max_steps": 5}, beta=0.3,
    )["spin"]
    assert tiny["iterations"] == 3 and tiny["generation"]["max_tokens"] == 20
    assert tiny["training"]["training"]["max_steps"] == 5 and tiny["training"]["beta"] == 0.3
    assert tiny["training"]["training"]["device"] == "cpu"


def test_a_preference_dataset_is_refused_naming_what_spin_needs(tmp_path):
    pairs = _artifact(tmp_path, "pairs", [{"prompt": "p", "chosen": "a", "rejected": "b"}])
    with pytest.raises(ValidationError) as caught:
        services.spin_config_build(model=model_ensure_embedded(), dataset=pairs)
    assert "`response`" in caught.value.message_dict["dataset"][0]


def test_the_form_previews_the_cost_then_queues(researcher_client, sft):
    fields = {"model": model_ensure_embedded().pk, "dataset": sft.pk, "preset": "tiny-cpu-demo", "iterations": "2",
              "max_prompts": "4", "mix_previous": "on", "devices": "1"}
    preview = researcher_client.post("/spin/new/", {**fields, "preview": "1"})
    assert preview.status_code == 200 and PipelineRun.objects.count() == 0
    page = preview.content.decode()
    assert "generations" in page and "<td class=\"num\">8</td>" in page  # 4 prompts x 2 iterations

    response = researcher_client.post("/spin/new/", fields)
    run = PipelineRun.objects.get()
    assert response.status_code == 302 and response["Location"] == run.get_absolute_url()
    assert run.kind == PipelineRun.Kind.SPIN and run.config["spin"]["max_prompts"] == 4


def test_bad_settings_are_shown_and_nothing_is_queued(researcher_client, sft):
    response = researcher_client.post(
        "/spin/new/", {"model": model_ensure_embedded().pk, "dataset": sft.pk, "preset": "tiny-cpu-demo",
                       "iterations": "2", "learning_rate": "0.5", "devices": "1"},
    )
    assert response.status_code == 400 and "learning_rate" in response.content.decode()
    assert PipelineRun.objects.count() == 0
