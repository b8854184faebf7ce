"""Training datasets imported as artifacts: the trainers' layouts, streamed to JSONL + parquet, all or nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from webapp.library import services
from webapp.library.models import Artifact
from webapp.library.parsers.reading import ImportProblem

pytestmark = pytest.mark.django_db


@pytest.fixture
def artifact_root(settings, tmp_path):
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    return settings.ARTIFACT_ROOT


def _lines(*rows) -> str:
    return "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows)


def test_an_sft_dataset_becomes_an_artifact_in_jsonl_and_parquet(write_file, artifact_root):
    rows = [{"prompt": f"q{i}", "response": f"a{i}", "source": "mine"} for i in range(5)]
    path = write_file(_lines(*rows), "upload.tmp")
    artifact = services.dataset_import(
        name="qa", purpose="sft", uploaded_file_path=path, original_name="qa.jsonl", batch_size=2
    )
    assert artifact.kind == Artifact.Kind.SFT and artifact.run is None and artifact.row_count == 5
    assert artifact.columns == ["prompt", "response", "source"]
    assert pq.read_table(artifact.parquet_path).to_pylist() == rows
    assert [json.loads(line) for line in Path(artifact.jsonl_path).read_text().splitlines()] == rows


def test_chat_messages_and_spin_rows_are_accepted(write_file, artifact_root):
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    sft = services.dataset_import(
        name="chat",
        purpose="sft",
        uploaded_file_path=write_file(_lines({"messages": messages}), "a.tmp"),
        original_name="chat.jsonl",
    )
    spin = services.dataset_import(
        name="spin",
        purpose="preference",
        uploaded_file_path=write_file(_lines({"real": messages, "generated": messages}), "b.tmp"),
        original_name="spin.jsonl",
    )
    assert sft.row_count == 1 and spin.kind == Artifact.Kind.PREFERENCES


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (_lines({"prompt": "q", "chosen": "a"}), 'pairs.jsonl, line 1: missing the "rejected" field'),
        (
            _lines({"prompt": "q", "chosen": "a", "rejected": "b"}, {"prompt": "q", "chosen": "a"}),
            'pairs.jsonl, line 2: missing the "rejected" field',
        ),
        (_lines({"prompt": "q", "chosen": "a", "rejected": "b"}, "{broken"), "pairs.jsonl, line 2: not valid JSON"),
        (_lines({"prompt": "q", "chosen": "", "rejected": "b"}), 'pairs.jsonl, line 1: the "chosen" field is empty'),
        (
            _lines({"prompt": "q", "chosen": 3, "rejected": "b"}),
            'line 1: the "chosen" field must be text or a list of chat messages',
        ),
        (_lines({"prompt": "q", "chosen": [{"role": "user"}], "rejected": "b"}), 'message 1 of "chosen"'),
        ("", "pairs.jsonl: the file is empty"),
    ],
)
def test_bad_rows_name_file_line_and_field_and_import_nothing(write_file, artifact_root, content, expected):
    path = write_file(content, "upload.tmp")
    with pytest.raises(ImportProblem) as caught:
        services.dataset_import(
            name="pairs", purpose="preference", uploaded_file_path=path, original_name="pairs.jsonl"
        )
    assert expected in str(caught.value)
    assert Artifact.objects.count() == 0
    datasets_dir = artifact_root / "datasets"
    assert not datasets_dir.exists() or not any(datasets_dir.iterdir()), "partly written files were left behind"


def test_a_field_that_changes_type_between_batches_is_refused(write_file, artifact_root):
    rows = [{"prompt": "q", "response": "a", "score": 1}, {"prompt": "q", "response": "a", "score": "high"}]
    path = write_file(_lines(*rows), "upload.tmp")
    with pytest.raises(ImportProblem, match="rows 2-2 change a field's type"):
        services.dataset_import(name="x", purpose="sft", uploaded_file_path=path, original_name="x.jsonl", batch_size=1)
    assert Artifact.objects.count() == 0


def test_the_upload_page_imports_and_redirects_to_the_dataset(researcher_client, artifact_root, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("qa.jsonl", _lines({"question": "q", "answer": "a"}).encode())
    response = researcher_client.post("/library/datasets/upload/", {"name": "qa", "purpose": "sft", "file": upload})
    artifact = Artifact.objects.get()
    assert response.status_code == 302 and response["Location"] == artifact.get_absolute_url()
    listing = researcher_client.get("/library/datasets/").content.decode()
    assert "qa" in listing and "imported" in listing

    bad = SimpleUploadedFile("bad.jsonl", _lines({"question": "q"}).encode())
    response = researcher_client.post("/library/datasets/upload/", {"name": "bad", "purpose": "sft", "file": bad})
    assert response.status_code == 400
    assert "bad.jsonl, line 1: missing the" in response.content.decode()
    assert Artifact.objects.count() == 1
