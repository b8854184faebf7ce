"""AFT pages: the forms queue validated configs, refusals queue nothing, the cost preview, the run section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.fixtures.generate_runs import prompt_set_of
from webapp.library.models import Artifact, SeedPromptSet
from webapp.registry.services import model_ensure_embedded
from webapp.runs import services as run_services
from webapp.runs.models import PipelineRun

pytestmark = pytest.mark.django_db

ORIGINAL_YAML = """\
model_name: /mnt/petrelfs/share_data/harold/llama_onp

proposal_params:
    temperature: 0.7
    top_p: 0.95
    max_tokens: 64
    n: 3

aggregation_params:
    temperature: 0.7
    top_p: 0.95
    max_tokens: 64
    n: 3

vllm_seed: 2019

hidden_layer: 1  # Number of aggregation layers, excluding the final layer
final_aggregation: True # Indicates whether this is the final aggregation step
"""


@pytest.fixture
def prompt_set():
    return prompt_set_of(2, "two")


@pytest.fixture
def model():
    return model_ensure_embedded()


def _estimate_lines(estimate):
    """The estimate's lines by key."""
    return {line.key: line for line in estimate.lines}


def _fields(model, prompt_set, **overrides):
    values = {
        "model": model.pk,
        "prompt_set": prompt_set.pk,
        "mode": "aggregate",
        "n": 3,
        "hidden_layer": 1,
        "final_aggregation": "on",
        "proposal_temperature": 0.7,
        "proposal_top_p": 0.95,
        "aggregation_temperature": 0.7,
        "aggregation_top_p": 0.95,
        "final_temperature": 0.0,
        "max_tokens": 16,
        "seed": 2024,
        "batch_size": 4,
    }
    values.update(overrides)
    return {key: value for key, value in values.items() if value is not None}


def test_the_form_page_shows_the_papers_defaults(researcher_client):
    page = researcher_client.get("/aft/new/")
    assert page.status_code == 200
    html = page.content.decode()
    assert (
        'name="proposal_top_p" value="0.95"' in html
        and 'name="seed" value="2024"' in html
        and 'name="n" value="5"' in html
    )


def test_a_valid_form_queues_an_inference_run_with_the_original_keys(researcher_client, model, prompt_set):
    response = researcher_client.post("/aft/new/", _fields(model, prompt_set, name="agg"))
    run = PipelineRun.objects.get()
    assert response.status_code == 302 and response["Location"] == run.get_absolute_url()
    assert (run.kind, run.queue_name, run.name) == ("aft_inference", "gpu", "agg")
    config = run.config["aft"]
    assert config["proposal_params"] == {"temperature": 0.7, "top_p": 0.95, "max_tokens": 16, "n": 3}
    assert config["hidden_layer"] == 1 and config["final_params"]["n"] == 1 and config["seed"] == 2024
    assert run.config["model_id"] == model.pk and run.config["prompt_set_id"] == prompt_set.pk


def test_plain_sampling_is_the_same_form_in_single_mode(researcher_client, model, prompt_set):
    researcher_client.post("/aft/new/", _fields(model, prompt_set, mode="single"))
    assert PipelineRun.objects.get().config["aft"]["mode"] == "single"


def test_a_pasted_or_uploaded_yaml_in_the_original_format_replaces_the_fields(researcher_client, model, prompt_set):
    researcher_client.post("/aft/new/", _fields(model, prompt_set, yaml_config=ORIGINAL_YAML, n=9))
    pasted = PipelineRun.objects.get().config["aft"]
    assert pasted["proposal_params"]["n"] == 3 and pasted["seed"] == 2019 and pasted["hidden_layer"] == 1
    assert pasted["model_name"] == "/mnt/petrelfs/share_data/harold/llama_onp"
    upload = SimpleUploadedFile("default.yaml", ORIGINAL_YAML.replace("vllm_seed: 2019", "vllm_seed: 7").encode())
    researcher_client.post("/aft/new/", {**_fields(model, prompt_set), "yaml_file": upload})
    assert PipelineRun.objects.order_by("-pk").first().config["aft"]["seed"] == 7


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"proposal_top_p": 0}, "proposal_top_p", "proposal_params.top_p"),
        ({"n": 0}, "n", ""),
        ({"yaml_config": "proposal_params:\n  temprature: 0.5\n"}, "yaml_config", "temprature"),
        ({"yaml_config": "hidden_layer: [1\n"}, "yaml_config", "not valid YAML"),
        ({"yaml_config": "final_params:\n  n: 3\n"}, "yaml_config", "final_params.n"),
    ],
)
def test_a_refused_form_names_the_field_and_queues_nothing(
    researcher_client, model, prompt_set, overrides, field, message
):
    response = researcher_client.post("/aft/new/", _fields(model, prompt_set, **overrides))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors and message in " ".join(errors[field])
    assert PipelineRun.objects.count() == 0


@pytest.mark.parametrize(
    ("yaml_text", "key"),
    [
        ("generation_params:\n  n: 1000000000\nnum_aggregation: 2\n", "generation_params.n"),
        ("generation_params:\n  max_tokens: 1000000000\nnum_aggregation: 2\n", "generation_params.max_tokens"),
        ("proposal_params:\n  n: 1000000000\n", "proposal_params.n"),
        ("vllm_seed: -3\n", "vllm_seed"),
    ],
)
def test_a_yaml_beyond_the_forms_bounds_is_refused_naming_the_key_and_nothing_is_queued(
    researcher_client, model, prompt_set, yaml_text, key
):
    upload = SimpleUploadedFile("huge.yaml", yaml_text.encode())
    response = researcher_client.post("/aft/new/", {**_fields(model, prompt_set), "yaml_file": upload})
    assert response.status_code == 400
    message = " ".join(response.context["form"].errors["yaml_config"])
    assert message.startswith(f"huge.yaml: {key} must be between")
    assert PipelineRun.objects.count() == 0


def test_the_intermediate_yaml_queues_its_sampled_final_layer(researcher_client, model, prompt_set):
    intermediate = ORIGINAL_YAML.replace(
        "hidden_layer: 1  # Number of aggregation layers, excluding the final layer\n", ""
    )
    intermediate = intermediate.replace(
        "final_aggregation: True # Indicates whether this is the final aggregation step\n", "num_aggregation: 2\n"
    )
    estimate = researcher_client.post(
        "/aft/new/estimate/", _fields(model, prompt_set, yaml_config=intermediate)
    ).context["estimate"]
    lines = _estimate_lines(estimate)
    assert lines["generations-per-prompt"].value == 3 + 3 + 1
    final = lines["layer-2"]
    assert (final.label, final.value, final.note) == ("final aggregation", "1 × ≤64 tokens", "T 0.7, top_p 1.0")
    researcher_client.post("/aft/new/", _fields(model, prompt_set, yaml_config=intermediate))
    config = PipelineRun.objects.get().config["aft"]
    assert config["hidden_layer"] == 1 and config["final_params"] == {
        "temperature": 0.7,
        "top_p": 1.0,
        "max_tokens": 64,
        "n": 1,
    }


def test_without_a_final_layer_the_form_sends_no_final_params(researcher_client, model, prompt_set):
    fields = _fields(model, prompt_set)
    del fields["final_aggregation"]
    researcher_client.post("/aft/new/", fields)
    assert PipelineRun.objects.get().config["aft"]["final_aggregation"] is False


def test_an_empty_prompt_set_is_refused(researcher_client, model):
    empty = SeedPromptSet.objects.create(name="empty")
    response = researcher_client.post("/aft/new/", _fields(model, empty))
    assert response.status_code == 400 and "has no prompts" in response.content.decode()
    assert PipelineRun.objects.count() == 0


def test_the_cost_estimate_counts_every_generation_and_token(researcher_client, model, prompt_set):
    page = researcher_client.post("/aft/new/estimate/", _fields(model, prompt_set, hidden_layer=1, n=3, max_tokens=16))
    lines = _estimate_lines(page.context["estimate"])
    assert lines["generations-per-prompt"].value == 3 + 3 + 1 and lines["generations"].value == 14
    assert lines["max-new-tokens"].value == 2 * 7 * 16 and lines["single-sample-max-new-tokens"].value == "32 tokens"
    assert [lines[f"layer-{i}"].label for i in range(3)] == ["proposals", "aggregation 1", "final aggregation"]
    assert lines["layer-2"].note == "greedy"
    html = page.content.decode()
    assert '<tr data-key="generations"><th>Generations in all</th><td class="num">14<' in html
    assert "7 generations per answer, against 1 for plain sampling." in html
    # The estimate is asked for by hx-post (the shared partial), never by GET.
    assert researcher_client.get("/aft/new/estimate/", _fields(model, prompt_set)).status_code == 405
    refused = researcher_client.post("/aft/new/estimate/", _fields(model, prompt_set, yaml_config="hidden_layer: -2\n"))
    assert refused.context["estimate"] is None and "hidden_layer" in refused.content.decode()
    assert PipelineRun.objects.count() == 0  # estimating queues nothing


def test_the_estimate_warns_that_greedy_layers_give_the_aggregator_identical_drafts(
    researcher_client, model, prompt_set
):
    greedy = _fields(model, prompt_set, proposal_temperature=0.0, aggregation_temperature=0.0)
    page = researcher_client.post("/aft/new/estimate/", greedy).content.decode()
    assert "samples identical: proposal (3 samples), aggregation (3 samples)" in page
    assert "Ready to queue, but read the warning above first." in page
    sampled = researcher_client.post("/aft/new/estimate/", _fields(model, prompt_set)).content.decode()
    single = researcher_client.post("/aft/new/estimate/", {**greedy, "mode": "single"}).content.decode()
    assert "identical" not in sampled and "identical" not in single  # plain sampling is one sample a prompt


def test_the_form_page_asks_for_the_estimate_by_hx_post(researcher_client):
    page = researcher_client.get("/aft/new/").content.decode()
    assert 'hx-post="/aft/new/estimate/"' in page and "Choose a model and a prompt set" in page


def test_form_help_text_comes_from_the_config_field_docs():
    from pipelines.aft.config import AftConfig, AggregationDataConfig
    from pipelines.common.config_docs import config_field_docs
    from webapp.aft.forms import AftInferenceForm, AggregationDataForm

    inference, data = AftInferenceForm(), AggregationDataForm()
    assert inference.fields["hidden_layer"].help_text == config_field_docs(AftConfig)["hidden_layer"]
    assert data.fields["plain_rows"].help_text == config_field_docs(AggregationDataConfig)["plain_rows"]
    assert inference.fields["seed"].help_text == "Paper: 2024; empty for random."  # the form's own wins


def _artifact(tmp_path: Path, name: str, rows: list[dict]) -> Artifact:
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return run_services.artifact_register(run=None, name=name, kind=Artifact.Kind.GENERATIONS, jsonl_path=path)


def test_aggregation_data_form_queues_a_run_and_refuses_what_cannot_run(researcher_client, tmp_path, model):
    pairs = _artifact(tmp_path, "pairs", [{"prompt": "2+2?", "chosen": "4.", "rejected": "5."}] * 2)
    generations = _artifact(tmp_path, "gen", [{"prompt": "2+2?", "responses": ["4.", "5.", "four"]}])
    plain = _artifact(tmp_path, "plain", [{"prompt": "2+2?", "response": "4."}])
    base = {
        "max_proposals": 5,
        "min_proposals": 1,
        "seed": 2024,
        "max_examples": 0,
        "max_tokens": 32,
        "aggregator_temperature": 0,
    }

    refusals = [
        ({"source": generations.pk, "target_rule": "aggregator"}, "model"),  # the aggregator needs a model
        ({"source": generations.pk, "target_rule": "best_response"}, "target_rule"),  # nothing ranks the responses
        ({"source": plain.pk, "target_rule": "best_response"}, "source"),  # one response per prompt
        ({"source": pairs.pk, "target_rule": "best_response", "min_proposals": 3, "max_proposals": 2}, "min_proposals"),
    ]
    for values, field in refusals:
        response = researcher_client.post("/aft/data/new/", {**base, **values})
        assert response.status_code == 400 and field in response.context["form"].errors, (
            values,
            response.context["form"].errors,
        )
    assert PipelineRun.objects.count() == 0

    response = researcher_client.post(
        "/aft/data/new/", {**base, "source": pairs.pk, "target_rule": "best_response", "plain_rows": "on"}
    )
    run = PipelineRun.objects.get()
    assert response.status_code == 302 and run.kind == "aft_data" and run.queue_name == "default"
    assert run.config["data"]["target_rule"] == "best_response" and run.config["data"]["plain_rows"] is True
    assert run.config["model_id"] is None

    researcher_client.post(
        "/aft/data/new/", {**base, "source": generations.pk, "target_rule": "aggregator", "model": model.pk}
    )
    with_model = PipelineRun.objects.order_by("-pk").first()
    assert with_model.config["model_id"] == model.pk and with_model.queue_name == "gpu"
    assert with_model.config["data"]["aggregator"] == {"temperature": 0.0, "top_p": 1.0, "max_tokens": 32, "n": 1}


def test_the_run_page_shows_a_prompts_layers_and_the_data_run_links_to_training(
    researcher_client, researcher, model, prompt_set, tiny_model_dir, settings, tmp_path
):
    """A real (tiny-model) AFT output in the run directory, shown by the run page and the prompt view."""
    from pipelines.aft import AftConfig, AftInputs, run_aft
    from pipelines.common.progress import RecordingProgress
    from pipelines.common.store import RunStore
    from pipelines.llm.loader import LocalBackends
    from pipelines.llm.transformers_backend import TransformersBackend
    from webapp.aft import services
    from workers.kinds.prompts import snapshot_prompt_set

    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    aft = AftConfig.from_dict(
        {
            "proposal_params": {"n": 3, "max_tokens": 3},
            "aggregation_params": {"n": 3, "max_tokens": 3},
            "hidden_layer": 1,
        }
    )
    run = run_services.run_create(kind="aft_inference", 
        user=researcher, config=services.inference_config_build(model=model, prompt_set=prompt_set, aft=aft)
    )
    assert "No finished prompt yet" in researcher_client.get(run.get_absolute_url()).content.decode()
    assert not run_services.run_directory(run).exists()  # viewing a queued run creates nothing

    store = RunStore(run_services.run_directory(run))
    snapshot_prompt_set(prompt_set_id=run.config["prompt_set_id"], store=store)
    backend = TransformersBackend(tiny_model_dir, device="cpu", torch_threads=1)
    try:
        backends = LocalBackends(tmp_path / "models", given={"tiny": backend})
        run_aft(aft, AftInputs(model={"path": "tiny"}), backends, store, RecordingProgress())
    finally:
        backend.close()
    rows = list(store.read_jsonl("aggregations.jsonl"))
    page = researcher_client.get(run.get_absolute_url()).content.decode()
    assert page.count('class="aft-layer"') == 3
    assert (
        'data-layer="proposals"' in page
        and 'data-layer="aggregation 1"' in page
        and 'data-layer="final aggregation"' in page
    )
    assert 'id="aft-layer-costs"' in page and "Responses from models:" in page

    second = researcher_client.get(
        f"/aft/runs/{run.pk}/prompt/", {"prompt_id": rows[1]["prompt_id"]}, HTTP_HX_REQUEST="true"
    )
    html = second.content.decode()
    assert (
        second.status_code == 200 and "<html" not in html and f"<strong>Prompt {rows[1]['prompt_id']}</strong>" in html
    )
    assert researcher_client.get(f"/aft/runs/{run.pk}/prompt/", {"prompt_id": "nope"}).status_code == 200

    data_run = PipelineRun.objects.create(
        kind="aft_data", config={"data": {"target_rule": "best_response"}}
    )
    path = tmp_path / "sft.jsonl"
    path.write_text(
        json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}) + "\n"
    )
    artifact = run_services.artifact_register(
        run=data_run, name="aggregation sft", kind=Artifact.Kind.SFT, jsonl_path=path
    )
    data_page = researcher_client.get(data_run.get_absolute_url()).content.decode()
    assert f'href="/training/new/?dataset={artifact.pk}&amp;trainer=sft&amp;preset=aft-aggregation"' in data_page
    # The link opens the training form on the preset that sizes the lengths from the data.
    training_page = researcher_client.get(
        "/training/new/", {"dataset": artifact.pk, "trainer": "sft", "preset": "aft-aggregation"}
    ).content.decode()
    assert '<option value="aft-aggregation" selected>' in training_page
