"""RL runs from the site: the form's refusals, config layering, clone and edit, and where the page is found."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from tests.fixtures.generate_runs import prompt_set_of
from webapp.library.models import Artifact
from webapp.registry.models import ModelEntry
from webapp.registry.services import model_ensure_embedded
from webapp.runs import services as run_services
from webapp.runs.clone import clone_link
from webapp.runs.models import PipelineRun
from webapp.runs.registry import run_kind
from webapp.training.rl_forms import RLRunForm, rl_run_config

pytestmark = pytest.mark.django_db


@pytest.fixture
def reward_entry(tmp_path) -> ModelEntry:
    return ModelEntry.objects.create(
        name="rm", source=ModelEntry.Source.LOCAL, path=str(tmp_path / "rm"), task=ModelEntry.Task.REWARD
    )


@pytest.fixture
def prompt_set():
    return prompt_set_of(12, "twelve")


def _post(reward: ModelEntry, prompt_set, **changes: str) -> dict:
    """What the form posts: the embedded policy against `reward` on `prompt_set`, the CPU demo, and `changes`."""
    return {
        "model": model_ensure_embedded().pk,
        "reward_model": reward.pk,
        "prompt_set": prompt_set.pk,
        "preset": "cpu-demo",
        **changes,
    }


def _form(data: dict) -> RLRunForm:
    form = RLRunForm(data)
    assert form.is_valid(), form.errors
    return form


def test_a_generation_model_as_the_reward_model_is_refused_on_its_field(reward_entry, prompt_set):
    generation = model_ensure_embedded()
    form = RLRunForm(_post(reward_entry, prompt_set, reward_model=str(generation.pk)))
    assert not form.is_valid()
    assert "Not a registered reward model" in form.errors["reward_model"][0]


def test_the_reward_model_is_required(reward_entry, prompt_set):
    data = _post(reward_entry, prompt_set)
    del data["reward_model"]
    form = RLRunForm(data)
    assert not form.is_valid() and "reward_model" in form.errors


def test_max_steps_is_the_forms_or_the_presets_and_without_either_the_run_makes_passes_over_the_prompts(
    researcher_client, reward_entry, prompt_set
):
    chosen = researcher_client.post("/training/rl/new/", _post(reward_entry, prompt_set, max_steps="5"))
    assert chosen.status_code == 302
    assert PipelineRun.objects.get().config["config"]["training"]["max_steps"] == 5
    assert rl_run_config(_form(_post(reward_entry, prompt_set)))["config"]["training"]["max_steps"] == 6  # cpu-demo
    assert rl_run_config(_form(_post(reward_entry, prompt_set, preset="")))["config"]["training"]["max_steps"] == -1
    form = RLRunForm(_post(reward_entry, prompt_set, max_steps="0"))
    assert form.is_valid()
    with pytest.raises(ValidationError, match="max_steps"):
        rl_run_config(form)


def test_prompts_come_from_exactly_one_place(reward_entry, prompt_set, tmp_path):
    data = _post(reward_entry, prompt_set)
    del data["prompt_set"]
    form = _form(data)
    with pytest.raises(ValidationError) as caught:
        rl_run_config(form)
    assert "prompt_set" in caught.value.message_dict
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps({"instruction": f"q{i}"}) + "\n" for i in range(4)))
    dataset = run_services.artifact_register(run=None, name="questions", kind=Artifact.Kind.QUERIES, jsonl_path=path)
    config = rl_run_config(_form({**data, "prompts_dataset": dataset.pk}))
    assert config["prompts_dataset_id"] == dataset.pk and config["prompt_set_id"] is None


def test_layers_are_rl_defaults_then_preset_then_the_forms_fields(reward_entry, prompt_set):
    config = rl_run_config(
        _form(
            _post(
                reward_entry,
                prompt_set,
                algorithm="rloo",
                num_generations="3",
                kl_coef="0.1",
                max_steps="2",
                extra_settings=json.dumps({"ppo": {"num_ppo_epochs": 2}, "training": {"warmup_ratio": 0.1}}),
            )
        )
    )
    settings = config["config"]
    assert settings["algorithm"] == "rloo" and settings["num_generations"] == 3 and settings["kl_coef"] == 0.1
    assert settings["training"]["max_steps"] == 2 and settings["training"]["device"] == "cpu"  # form, then preset
    assert settings["max_new_tokens"] == 32 and settings["temperature"] == 0.7  # preset, then the RL defaults
    assert settings["ppo"]["num_ppo_epochs"] == 2 and settings["training"]["warmup_ratio"] == 0.1
    assert config["effective_batch"] == "4 prompts x 3 responses = 12 rollouts a step"
    assert config["reward_model_id"] == reward_entry.pk and config["distributed"] == {"processes": 1}


def test_an_rl_setting_out_of_range_is_refused_on_its_field(reward_entry, prompt_set):
    form = _form(_post(reward_entry, prompt_set, algorithm="grpo", num_generations="1"))
    with pytest.raises(ValidationError) as caught:
        rl_run_config(form)
    assert "num_generations" in caught.value.message_dict


def test_a_7b_policy_that_cannot_fit_one_gpu_is_refused_on_the_device_field(reward_entry, prompt_set, settings):
    settings.TRAINING_GPU_MEMORY_GIB = 80
    big = ModelEntry.objects.create(
        name="big", source=ModelEntry.Source.LOCAL, path="/big", parameter_count=7_000_000_000
    )
    ModelEntry.objects.filter(pk=reward_entry.pk).update(parameter_count=7_000_000_000)
    fits = _form(_post(reward_entry, prompt_set, model=str(big.pk), preset="7b-lora-1gpu"))
    assert rl_run_config(fits)["config"]["training"]["adapter"] == "lora"
    full = _form(_post(reward_entry, prompt_set, model=str(big.pk), preset="7b-lora-1gpu", adapter="full"))
    with pytest.raises(ValidationError) as caught:
        rl_run_config(full)
    assert "Does not fit" in caught.value.message_dict["device"][0]


def test_the_kind_is_offered_on_the_training_page_and_its_form_page_lists_the_presets(researcher_client):
    page = researcher_client.get("/training/new/").content.decode()
    assert 'href="/training/rl/new/"' in page and "Train: RL from a reward model" in page
    rl_page = researcher_client.get("/training/rl/new/").content.decode()
    assert "cpu-demo" in rl_page and "7b-lora-1gpu" in rl_page
    assert "PPO is ALMoST" in rl_page and 'hx-post="/training/rl/new/estimate/"' in rl_page


def test_the_estimate_shows_what_each_step_samples(researcher_client, reward_entry, prompt_set):
    page = researcher_client.post("/training/rl/new/estimate/", _post(reward_entry, prompt_set)).content.decode()
    assert "Ready to queue" in page and "4 prompts x 1 response = 4 rollouts a step" in page


def test_the_form_queues_a_train_rl_run_on_the_gpu_queue_with_the_rl_stages(
    researcher_client, reward_entry, prompt_set
):
    response = researcher_client.post("/training/rl/new/", _post(reward_entry, prompt_set, name="rl demo"))
    assert response.status_code == 302, response.context["form"].errors
    run = PipelineRun.objects.get()
    assert (run.kind, run.queue_name, run.name) == ("train_rl", "gpu", "rl demo")
    stages = [stage.name for stage in run_kind("train_rl").stages(run.config)]
    assert stages == ["load model", "load reward model", "train", "save"]


def test_a_cloned_rl_run_queues_the_same_config(researcher_client, reward_entry, prompt_set):
    fields = _post(
        reward_entry,
        prompt_set,
        algorithm="rloo",
        num_generations="2",
        max_steps="3",
        lora_r="4",
        adapter="lora",
        extra_settings=json.dumps({"training": {"lora": {"r": 4, "alpha": 4}, "warmup_ratio": 0.2}}),
    )
    assert researcher_client.post("/training/rl/new/", fields).status_code == 302
    source = PipelineRun.objects.get()
    PipelineRun.objects.filter(pk=source.pk).update(status=PipelineRun.Status.SUCCEEDED)
    source.refresh_from_db()
    assert clone_link(source) == f"/training/rl/new/?from_run={source.pk}"
    page = researcher_client.get(clone_link(source))
    form = page.context["form"]
    assert form.is_bound and not form.errors, form.errors
    posted = {key: [str(value) for value in form.data.getlist(key)] for key in form.data}
    again = researcher_client.post(clone_link(source), posted)
    assert again.status_code == 302, again.context["form"].errors
    clone = PipelineRun.objects.exclude(pk=source.pk).get()
    assert (clone.kind, clone.config) == (source.kind, source.config)
    assert clone.config["config"]["training"]["lora"] == {
        **clone.config["config"]["training"]["lora"],
        "r": 4,
        "alpha": 4,
    }


def test_the_api_creates_an_rl_run_through_the_same_form(reward_entry, prompt_set, researcher):
    from webapp.api.services import run_create_from_fields

    model_ensure_embedded()  # the form's initial policy
    fields = {"reward_model": reward_entry.pk, "prompt_set": prompt_set.pk, "max_steps": 2}
    run = run_create_from_fields(user=researcher, kind="train_rl", fields=fields)
    assert run.kind == "train_rl" and run.config["config"]["training"]["max_steps"] == 2
    assert run.config["preset"] == "cpu-demo"  # the form's initial preset


def test_a_prompt_dataset_without_a_prompt_column_is_not_offered(tmp_path):
    path = Path(tmp_path / "pairs.jsonl")
    path.write_text(json.dumps({"chosen": "a", "rejected": "b"}) + "\n")
    run_services.artifact_register(run=None, name="pairs", kind=Artifact.Kind.PREFERENCES, jsonl_path=path)
    assert list(RLRunForm().fields["prompts_dataset"].queryset) == []


def test_the_main_knobs_are_open_the_rest_under_advanced_and_blanks_show_the_presets_values(researcher_client):
    form = RLRunForm()
    advanced = {field.name for field in form.advanced()}
    assert {"temperature", "per_device_batch_size", "device", "extra_settings"} <= advanced
    assert not advanced & {"reward_model", "algorithm", "max_steps", "kl_coef", "num_generations"}
    assert form.fields["max_steps"].widget.attrs["placeholder"] == "6"  # cpu-demo
    assert RLRunForm.preset_value_table(form)["7b-lora-1gpu"]["max_new_tokens"] == "256"
    page = researcher_client.get("/training/rl/new/").content.decode()
    assert page.count('<details class="advanced" data-advanced>') == 1  # closed: nothing differs
    assert "No reward model registered yet" in page
