"""Artifacts over the API: metadata, paged rows, and downloads with the same bytes and name as the page's."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.fixtures.generate_runs import prompt_set_of, small_generate_config
from webapp.library.models import Artifact
from webapp.runs import services

pytestmark = pytest.mark.django_db


@pytest.fixture
def artifact(researcher, tmp_path):
    run = services.run_create(user=researcher, kind="generate", config=small_generate_config(prompt_set_of(2, "two")))
    rows = [{"prompt_id": f"p{index}", "responses": [f"answer {index}"]} for index in range(30)]
    jsonl = tmp_path / "generations.jsonl"
    jsonl.write_text("".join(json.dumps(row) + "\n" for row in rows))
    parquet = tmp_path / "generations.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    return services.artifact_register(
        run=run, name="generations", kind=Artifact.Kind.GENERATIONS, jsonl_path=jsonl, parquet_path=parquet
    )


def test_metadata_lists_and_filters(researcher_api, artifact):
    body = researcher_api.get(f"/api/v1/artifacts/{artifact.pk}").json()
    assert body["row_count"] == 30 and body["columns"] == ["prompt_id", "responses"]
    assert body["run"] == artifact.run_id and body["formats"] == ["jsonl", "parquet"]
    assert researcher_api.get(f"/api/v1/artifacts?run={artifact.run_id}").json()["count"] == 1
    assert researcher_api.get("/api/v1/artifacts?kind=sft").json()["count"] == 0
    assert researcher_api.get(f"/api/v1/artifacts?run={artifact.run_id + 1}").json()["count"] == 0


def test_rows_are_paged(researcher_api, artifact):
    body = researcher_api.get(f"/api/v1/artifacts/{artifact.pk}/rows?offset=25&limit=10").json()
    assert body["count"] == 30
    assert [row["prompt_id"] for row in body["items"]] == [f"p{index}" for index in range(25, 30)]


@pytest.mark.parametrize("file_format", ["jsonl", "parquet"])
def test_download_streams_the_same_bytes_under_the_same_name_as_the_page(
    researcher_api, researcher_client, artifact, file_format
):
    api = researcher_api.get(f"/api/v1/artifacts/{artifact.pk}/download?format={file_format}")
    page = researcher_client.get(f"/runs/artifacts/{artifact.pk}/download/{file_format}/")
    assert api.status_code == 200 and api.streaming
    assert b"".join(api.streaming_content) == b"".join(page.streaming_content)
    assert api["Content-Disposition"] == page["Content-Disposition"]


def test_a_missing_format_or_file_is_a_404_not_a_crash(researcher_api, artifact):
    Artifact.objects.filter(pk=artifact.pk).update(parquet_path="")
    missing_format = researcher_api.get(f"/api/v1/artifacts/{artifact.pk}/download?format=parquet")
    assert missing_format.status_code == 404 and "parquet" in missing_format.json()["detail"]
    Artifact.objects.filter(pk=artifact.pk).update(jsonl_path="/nonexistent/file.jsonl")
    assert researcher_api.get(f"/api/v1/artifacts/{artifact.pk}/rows").status_code == 404
    assert researcher_api.get(f"/api/v1/artifacts/{artifact.pk}/download").status_code == 404
    assert researcher_api.get(f"/api/v1/artifacts/{artifact.pk}/download?format=csv").status_code == 422
