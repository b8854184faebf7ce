"""The library and the model registry over the API: uploads through the pages' forms, import services
and size limits (multipart, refusals naming the file and line, nothing saved); lists, gets, rubrics;
models with their lineage; registering an endpoint under the page's policy."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from webapp.api.tokens import token_create
from webapp.library.models import Artifact, Corpus, FewShotSet, Rubric, SeedPromptSet
from webapp.registry.models import ModelEntry
from webapp.registry.services import model_ensure_embedded

pytestmark = pytest.mark.django_db


def _jsonl(*rows: dict) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def test_a_corpus_upload_imports_and_is_listed(researcher_api):
    files = [
        SimpleUploadedFile("a.jsonl", _jsonl({"text": "first document"}, {"text": "second"})),
        SimpleUploadedFile("b.txt", b"a third document"),
    ]
    response = researcher_api.post("/api/v1/corpora", {"name": "news", "description": "d", "file": files})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "news" and body["document_count"] == 3
    assert researcher_api.get(f"/api/v1/corpora/{body['id']}").json()["document_count"] == 3
    assert [item["name"] for item in researcher_api.get("/api/v1/corpora").json()["items"]] == ["news"]


def test_a_refused_upload_names_the_file_and_line_and_saves_nothing(researcher_api):
    bad = SimpleUploadedFile("bad.jsonl", b'{"text": "fine"}\n[1, 2]\n')
    response = researcher_api.post("/api/v1/corpora", {"name": "broken", "file": bad})
    assert response.status_code == 422
    messages = " ".join(error["message"] for error in response.json()["errors"])
    assert "bad.jsonl" in messages and "line 2" in messages
    missing = researcher_api.post("/api/v1/corpora", {"file": SimpleUploadedFile("a.txt", b"x")})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "name"
    assert not Corpus.objects.exists()


def test_uploads_over_the_size_limit_are_413_and_json_bodies_are_415(researcher_api, settings):
    settings.LIBRARY_MAX_UPLOAD_BYTES = 100
    big = SimpleUploadedFile("big.txt", b"x" * 5000)
    response = researcher_api.post("/api/v1/seed-prompt-sets", {"name": "big", "file": big})
    assert response.status_code == 413 and "over the limit of 100 bytes" in response.json()["detail"]
    not_multipart = researcher_api.post("/api/v1/seed-prompt-sets", {"name": "x"}, content_type="application/json")
    assert not_multipart.status_code == 415
    assert not SeedPromptSet.objects.exists()


def test_seed_few_shot_and_dataset_uploads(researcher_api, settings, tmp_path):
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    seeds = researcher_api.post(
        "/api/v1/seed-prompt-sets", {"name": "seeds", "file": SimpleUploadedFile("s.txt", b"one\ntwo\n")}
    )
    assert seeds.status_code == 201 and seeds.json()["prompt_count"] == 2
    shots = researcher_api.post(
        "/api/v1/few-shot-sets",
        {
            "name": "qa",
            "kind": "qa",
            "file": SimpleUploadedFile("q.jsonl", _jsonl({"context": "c", "question": "q", "answer": "a"})),
        },
    )
    assert shots.status_code == 201 and shots.json()["example_count"] == 1
    dataset = researcher_api.post(
        "/api/v1/datasets",
        {
            "name": "sft",
            "purpose": "sft",
            "file": SimpleUploadedFile("d.jsonl", _jsonl({"prompt": "p", "response": "r"})),
        },
    )
    assert dataset.status_code == 201 and dataset.json()["row_count"] == 1 and dataset.json()["run"] is None
    assert researcher_api.get(f"/api/v1/datasets/{dataset.json()['id']}").json()["name"] == "sft"
    assert researcher_api.get("/api/v1/few-shot-sets").json()["count"] == 1
    assert FewShotSet.objects.count() == 1 and Artifact.objects.count() == 1


def test_uploads_are_rate_limited_per_token(researcher_api, settings):
    settings.REFINERY_API_UPLOAD_RATE = "1/min"
    first = researcher_api.post("/api/v1/seed-prompt-sets", {"name": "a", "file": SimpleUploadedFile("a.txt", b"x\n")})
    second = researcher_api.post("/api/v1/seed-prompt-sets", {"name": "b", "file": SimpleUploadedFile("b.txt", b"y\n")})
    assert first.status_code == 201 and second.status_code == 429 and int(second["Retry-After"]) >= 1
    assert SeedPromptSet.objects.count() == 1


def test_rubrics_are_created_with_the_pages_rules(researcher_api):
    created = researcher_api.post(
        "/api/v1/rubrics", {"name": "helpful", "criteria": "correct first"}, content_type="application/json"
    )
    assert created.status_code == 201 and created.json()["configurations"] == []
    duplicate = researcher_api.post("/api/v1/rubrics", {"name": "helpful"}, content_type="application/json")
    assert duplicate.status_code == 422 and duplicate.json()["errors"][0]["field"] == "name"
    assert researcher_api.get(f"/api/v1/rubrics/{created.json()['id']}").json()["criteria"] == "correct first"
    assert Rubric.objects.count() == 1


def test_models_list_get_and_lineage(researcher_api):
    base = model_ensure_embedded()
    child = ModelEntry.objects.create(name="sft-1", path="/nowhere", parent=base, source=ModelEntry.Source.RUN)
    grandchild = ModelEntry.objects.create(name="spin-1", path="/nowhere", parent=child, source=ModelEntry.Source.RUN)
    assert researcher_api.get("/api/v1/models").json()["count"] == 3
    assert researcher_api.get(f"/api/v1/models/{child.pk}").json()["parent"] == base.pk
    lineage = researcher_api.get(f"/api/v1/models/{child.pk}/lineage").json()
    assert lineage["ancestors"] == [{"id": base.pk, "name": base.name}]
    assert lineage["descendants"] == [{"id": grandchild.pk, "name": "spin-1", "parent": child.pk, "depth": 1}]
    assert researcher_api.get("/api/v1/models/999999/lineage").status_code == 404


def test_registering_an_endpoint_follows_the_pages_policy(researcher_api, settings):
    settings.REFINERY_ENDPOINT_ALLOW_PRIVATE = False
    refused = researcher_api.post(
        "/api/v1/models",
        {"name": "meta", "base_url": "http://169.254.169.254/v1", "served_model_name": "m"},
        content_type="application/json",
    )
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "base_url"
    bad_key = researcher_api.post(
        "/api/v1/models",
        {"name": "k", "base_url": "https://example.org/v1", "served_model_name": "m", "api_key_env": "HOME"},
        content_type="application/json",
    )
    assert bad_key.status_code == 422 and bad_key.json()["errors"][0]["field"] == "api_key_env"
    assert not ModelEntry.objects.filter(source=ModelEntry.Source.ENDPOINT).exists()


def test_a_token_user_is_recorded_as_the_uploader(researcher):
    from django.test import Client

    client = Client(headers={"Authorization": f"Bearer {token_create(user=researcher, name='x').secret}"})
    client.post("/api/v1/seed-prompt-sets", {"name": "mine", "file": SimpleUploadedFile("m.txt", b"p\n")})
    assert SeedPromptSet.objects.get().created_by == researcher


def test_a_browser_session_uploads_with_its_csrf_token_and_is_refused_without(researcher, settings):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(researcher)
    browser.get("/account/tokens/")
    upload = {"name": "mine", "file": SimpleUploadedFile("m.txt", b"p\n")}
    refused = browser.post("/api/v1/seed-prompt-sets", upload)
    assert refused.status_code == 403 and not SeedPromptSet.objects.exists()
    upload["file"].seek(0)
    accepted = browser.post(
        "/api/v1/seed-prompt-sets", upload, headers={"X-CSRFToken": browser.cookies["csrftoken"].value}
    )
    assert accepted.status_code == 201, accepted.content
    settings.LIBRARY_MAX_UPLOAD_BYTES = 10
    big = {"name": "big", "file": SimpleUploadedFile("big.txt", b"x" * 1000)}
    too_large = browser.post(
        "/api/v1/seed-prompt-sets", big, headers={"X-CSRFToken": browser.cookies["csrftoken"].value}
    )
    assert too_large.status_code == 413 and SeedPromptSet.objects.count() == 1
