"""Runs over the API: created through the kind's own form (same config, same refusals as the page),
listed with filters, read with progress, cancelled, resumed, their log tailed; rate limited."""

from __future__ import annotations

import json

import pytest

from tests.fixtures.generate_runs import prompt_set_of, small_generate_config
from webapp.library.models import SeedPromptSet
from webapp.registry.services import model_ensure_embedded
from webapp.runs import services
from webapp.runs.models import PipelineRun
from webapp.runs.registry import all_run_kinds

pytestmark = pytest.mark.django_db


@pytest.fixture
def prompt_set():
    return prompt_set_of(3, "three")


def _fields(prompt_set: SeedPromptSet, **changes) -> dict:
    return {
        "model": model_ensure_embedded().pk,
        "prompt_set": prompt_set.pk,
        "n": 1,
        "max_tokens": 8,
        "temperature": 0.5,
        "top_p": 0.9,
        "seed": 3,
        "batch_size": 4,
        **changes,
    }


def _create(client, body: dict, **headers):
    return client.post("/api/v1/runs", body, content_type="application/json", headers=headers)


def test_every_kind_is_listed_with_its_presets_and_whether_the_api_creates_it(researcher_api):
    kinds = {item["kind"]: item for item in researcher_api.get("/api/v1/run-kinds").json()}
    assert set(kinds) == {declaration.kind for declaration in all_run_kinds()}
    assert kinds["generate"]["created_here"] and kinds["generate"]["presets"] == []
    assert "tiny-cpu-demo" in {preset["name"] for preset in kinds["spin"]["presets"]}
    assert not kinds["evaluation"]["created_here"]


def test_a_run_created_over_the_api_has_the_config_the_page_builds(researcher_api, researcher_client, prompt_set):
    response = _create(researcher_api, {"kind": "generate", "name": "mine", "fields": _fields(prompt_set)})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "queued" and body["name"] == "mine" and body["kind_label"] == "Generate answers"
    assert body["url"].endswith(f"/runs/{body['id']}/")
    researcher_client.post("/generate/new/", {**_fields(prompt_set), "name": "page"})
    api_run, page_run = PipelineRun.objects.order_by("pk")
    assert api_run.config == page_run.config
    assert api_run.created_by == researcher_api.user


def test_fields_left_out_take_the_forms_initial_values(researcher_api, prompt_set):
    model_ensure_embedded()
    response = _create(researcher_api, {"kind": "generate", "fields": {"prompt_set": prompt_set.pk}})
    assert response.status_code == 201, response.content
    sampling = PipelineRun.objects.get().config["generate"]["sampling"]
    assert sampling["n"] == 1 and sampling["temperature"] == 0.7


def test_a_field_the_kinds_form_does_not_have_is_refused_by_name_not_dropped(researcher_api, prompt_set):
    model_ensure_embedded()
    response = _create(researcher_api, {"kind": "generate", "fields": {"prompt_set": prompt_set.pk, "max_token": 4}})
    assert response.status_code == 422, response.content
    errors = {error["field"]: error["message"] for error in response.json()["errors"]}
    assert set(errors) == {"max_token"}
    assert "generate runs have no field max_token" in errors["max_token"] and "max_tokens" in errors["max_token"]
    assert PipelineRun.objects.count() == 0


def test_refusals_name_the_form_field_with_the_pages_message_and_queue_nothing(researcher_api, prompt_set):
    empty = SeedPromptSet.objects.create(name="empty")
    response = _create(researcher_api, {"kind": "generate", "fields": _fields(empty, n=0)})
    assert response.status_code == 422
    errors = {error["field"]: error["message"] for error in response.json()["errors"]}
    assert errors["n"] == "Ensure this value is greater than or equal to 1."
    response = _create(researcher_api, {"kind": "generate", "fields": _fields(empty)})
    assert response.status_code == 422
    assert "has no prompts" in " ".join(error["message"] for error in response.json()["errors"])
    assert PipelineRun.objects.count() == 0


def test_unknown_kinds_presets_and_training_kinds_that_disagree_with_the_trainer_are_refused(
    researcher_api, prompt_set
):
    response = _create(researcher_api, {"kind": "distill", "fields": {}})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "kind"
    response = _create(researcher_api, {"kind": "generate", "preset": "fast", "fields": _fields(prompt_set)})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "preset"
    response = _create(researcher_api, {"kind": "evaluation", "fields": {}})
    assert response.status_code == 422 and "evaluation" in response.json()["detail"]
    response = _create(researcher_api, {"kind": "run", "fields": "not an object"})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "fields"
    assert PipelineRun.objects.count() == 0


def test_an_idempotency_key_queues_one_run(researcher_api, prompt_set):
    body = {"kind": "generate", "fields": _fields(prompt_set)}
    first = _create(researcher_api, body, **{"Idempotency-Key": "sweep0001"})
    again = _create(researcher_api, body, **{"Idempotency-Key": "sweep0001"})
    assert first.status_code == 201 and again.status_code == 409
    assert str(first.json()["id"]) in again.json()["detail"]
    assert PipelineRun.objects.count() == 1


def test_run_creation_is_rate_limited_per_token_with_retry_after(researcher_api, token_client, prompt_set, settings):
    settings.REFINERY_API_RUN_CREATE_RATE = "2/hour"
    body = {"kind": "generate", "fields": _fields(prompt_set)}
    assert [_create(researcher_api, body).status_code for _ in range(3)] == [201, 201, 429]
    refused = _create(researcher_api, body)
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0 and refused.json()["detail"]
    assert _create(token_client("researcher"), body).status_code == 201  # another token has its own budget


def test_list_filters_by_status_and_kind_and_pages(researcher_api, researcher, prompt_set):
    runs = [
        services.run_create(user=researcher, kind="generate", config=small_generate_config(prompt_set))
        for _ in range(3)
    ]
    services.run_request_cancel(run=runs[0])
    page = researcher_api.get("/api/v1/runs?status=queued&limit=1&offset=1").json()
    assert page["count"] == 2 and [item["id"] for item in page["items"]] == [runs[1].pk]
    assert researcher_api.get("/api/v1/runs?kind=spin").json()["count"] == 0
    assert researcher_api.get("/api/v1/runs?status=cancelled").json()["items"][0]["id"] == runs[0].pk
    assert researcher_api.get("/api/v1/runs?status=bogus").status_code == 422
    assert researcher_api.get("/api/v1/runs?limit=0").status_code == 422


def test_a_page_of_runs_costs_the_same_queries_whatever_its_length(
    researcher_api, researcher, prompt_set, django_assert_max_num_queries
):
    config = small_generate_config(prompt_set)
    for _ in range(10):
        services.run_create(user=researcher, kind="generate", config=config)
    with django_assert_max_num_queries(8):
        assert researcher_api.get("/api/v1/runs?limit=10").json()["count"] == 10


def test_get_shows_progress_and_the_log_tail(researcher_api, researcher, prompt_set):
    run = services.run_create(user=researcher, kind="generate", config=small_generate_config(prompt_set))
    PipelineRun.objects.filter(pk=run.pk).update(
        status="running",
        stage="generate",
        progress_done=1,
        progress_total=4,
        eta_seconds=9.5,
        log_tail="\n".join(f"line {index}" for index in range(10)),
    )
    body = researcher_api.get(f"/api/v1/runs/{run.pk}").json()
    assert body["stage"] == "generate"
    # The run page's whole-run figure: generate's plan weighs its batches 10 and the export 0.2.
    assert body["progress"] == {
        "done": 1, "total": 4, "fraction": pytest.approx(0.25 * 10 / 10.2), "eta_seconds": 9.5,
        "stage_number": 1, "stage_count": 2,
    }  # fmt: skip
    assert researcher_api.get(f"/api/v1/runs/{run.pk}/log?tail=2").json() == {"lines": ["line 8", "line 9"]}
    assert researcher_api.get("/api/v1/runs/999999").status_code == 404


def test_cancel_and_resume_follow_the_run_state_rules(researcher_api, researcher, prompt_set):
    run = services.run_create(user=researcher, kind="generate", config=small_generate_config(prompt_set))
    cancelled = researcher_api.post(f"/api/v1/runs/{run.pk}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = researcher_api.post(f"/api/v1/runs/{run.pk}/cancel")
    assert again.status_code == 409 and again.json()["detail"]
    resumed = researcher_api.post(f"/api/v1/runs/{run.pk}/resume")
    assert resumed.status_code == 200 and resumed.json()["status"] == "queued"
    assert researcher_api.post(f"/api/v1/runs/{run.pk}/resume").status_code == 409


def test_a_body_that_is_not_json_is_a_400_in_the_error_shape(researcher_api):
    response = researcher_api.post("/api/v1/runs", "{not json", content_type="application/json")
    assert response.status_code == 400 and response.json()["errors"] == [] and response.json()["detail"]


@pytest.mark.parametrize("declaration", [kind for kind in all_run_kinds() if kind.form], ids=lambda kind: kind.kind)
def test_every_kinds_form_and_builder_refuse_a_bare_request_by_its_own_fields(researcher_api, declaration):
    from django.utils.module_loading import import_string

    form_fields = set(import_string(declaration.form).base_fields)
    assert callable(import_string(declaration.config_build))
    response = _create(researcher_api, {"kind": declaration.kind, "fields": {}})
    assert response.status_code == 422, response.content
    named = {error["field"] for error in response.json()["errors"]} - {None}
    assert named and named <= form_fields, f"{declaration.kind}: {named - form_fields} are not its form's fields"
    assert PipelineRun.objects.count() == 0


def test_a_training_run_is_created_as_the_kind_its_trainer_makes(researcher_api, tmp_path):
    from webapp.runs.services import artifact_register

    path = tmp_path / "sft.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"p{i}", "response": f"r{i}"}) + "\n" for i in range(4)))
    dataset = artifact_register(run=None, name="sft", kind="sft", jsonl_path=path)
    fields = {"trainer": "sft", "model": model_ensure_embedded().pk, "dataset": dataset.pk}
    created = _create(researcher_api, {"kind": "train_sft", "fields": fields})
    assert created.status_code == 201, created.content
    assert created.json()["kind"] == "train_sft" and PipelineRun.objects.get().config["trainer"] == "sft"
    mismatched = _create(researcher_api, {"kind": "train_reward", "fields": fields})
    assert mismatched.status_code == 422 and "'train_sft' run, not a 'train_reward'" in mismatched.json()["detail"]
    assert PipelineRun.objects.count() == 1
