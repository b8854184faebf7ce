"""Curating an artifact: the per-user draft, filtered pages, save as a new artifact with lineage, who may curate."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from webapp.library import curation
from webapp.library.models import Artifact, CurationDraft
from webapp.runs.services import artifact_register

pytestmark = pytest.mark.django_db


@pytest.fixture
def artifact_root(settings, tmp_path):
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    return settings.ARTIFACT_ROOT


def _artifact(tmp_path: Path, rows: list[dict], *, name: str = "answers", kind: str = Artifact.Kind.SFT) -> Artifact:
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return artifact_register(run=None, name=name, kind=kind, jsonl_path=path)


def _rows(count: int) -> list[dict]:
    topics = ["cooking", "gardening", "chess"]
    return [
        {"prompt": f"Question {index} about {topics[index % 3]}", "response": f"Answer {index}", "score": index % 2}
        for index in range(count)
    ]


def _read(path: str) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def answers(tmp_path) -> Artifact:
    return _artifact(tmp_path, _rows(6))


def test_the_draft_keeps_drops_flags_and_edits_on_the_server_per_user(answers, researcher, make_user):
    curation.curation_row_mark(artifact=answers, user=researcher, row_index=1, action="drop")
    curation.curation_row_mark(artifact=answers, user=researcher, row_index=4, action="flag")
    curation.curation_row_edit(artifact=answers, user=researcher, row_index=2, values={"response": "Better\r\nanswer"})

    draft = CurationDraft.objects.get(artifact=answers, user=researcher)  # a reload reads it from the database
    assert draft.dropped_rows == [1] and draft.flagged_rows == [4]
    assert draft.edited_values == {"2": {"response": "Better\nanswer"}}
    other = make_user("researcher")
    assert curation.curation_draft(artifact=answers, user=other).is_empty  # drafts are per user

    curation.curation_row_mark(artifact=answers, user=researcher, row_index=1, action="restore")
    curation.curation_row_mark(artifact=answers, user=researcher, row_index=4, action="unflag")
    curation.curation_row_edit(artifact=answers, user=researcher, row_index=2, values={"response": "Answer 2"})
    assert not CurationDraft.objects.filter(artifact=answers, user=researcher).exists()  # back to the artifact


def test_bad_row_actions_are_refused_by_name_and_change_nothing(answers, researcher):
    with pytest.raises(ValidationError, match="Row 7 does not exist: “answers” has 6 rows"):
        curation.curation_row_mark(artifact=answers, user=researcher, row_index=6, action="drop")
    with pytest.raises(ValidationError, match="“score” of row 1 is not a text field"):
        curation.curation_row_edit(artifact=answers, user=researcher, row_index=0, values={"score": "5"})
    with pytest.raises(ValidationError, match="“explode” is not a row action"):
        curation.curation_row_mark(artifact=answers, user=researcher, row_index=0, action="explode")
    assert not CurationDraft.objects.exists()


def test_pages_search_text_filter_a_column_and_show_a_status(tmp_path, researcher):
    artifact = _artifact(tmp_path, _rows(60))
    curation.curation_row_mark(artifact=artifact, user=researcher, row_index=3, action="drop")
    curation.curation_row_edit(
        artifact=artifact, user=researcher, row_index=5, values={"response": "Use a cast-iron pan"}
    )
    draft = curation.curation_draft(artifact=artifact, user=researcher)

    def page(number=1, **params):
        filters = curation.RowFilters.from_params(params, columns=artifact.columns)
        return curation.curation_page(artifact=artifact, draft=draft, filters=filters, page_number=number)

    everything = page(2)
    assert [row.number for row in everything.rows] == list(range(26, 51)) and everything.match_count == 60
    chess = page(q="CHESS question")  # every word, any text field, case ignored
    assert chess.match_count == 20 and all("chess" in row.cells[0].text for row in chess.rows)
    assert [row.index for row in page(q="cast-iron").rows] == [5]  # search reads the edited text
    odd = page(2, column="score", value="1")  # a filtered page: the 26th odd row onwards
    assert odd.match_count == 30 and [row.index for row in odd.rows] == list(range(51, 60, 2))
    past_the_end = page(9, column="score", value="1")  # the pager shows the last page instead
    assert past_the_end.page.number == 2 and past_the_end.rows == odd.rows
    assert [row.index for row in page(show="dropped").rows] == [3] and page(show="kept").match_count == 59
    edited = page(show="edited").rows
    assert [(row.index, row.cells[1].text, row.cells[1].edited) for row in edited] == [(5, "Use a cast-iron pan", True)]
    with pytest.raises(ValidationError, match="“nope” is not a column of this artifact"):
        page(column="nope", value="x")


def test_save_as_new_writes_the_kept_rows_with_edits_and_lineage_and_leaves_the_parent_alone(
    answers, researcher, artifact_root
):
    parent_bytes = hashlib.sha256(Path(answers.jsonl_path).read_bytes()).hexdigest()
    curation.curation_row_mark(artifact=answers, user=researcher, row_index=0, action="drop")
    curation.curation_row_mark(artifact=answers, user=researcher, row_index=3, action="flag")
    curation.curation_row_edit(artifact=answers, user=researcher, row_index=2, values={"response": "A *better* answer"})

    child = curation.curation_save(artifact=answers, user=researcher, name="answers, cleaned")

    expected = _rows(6)[1:]
    expected[1]["response"] = "A *better* answer"
    assert _read(child.jsonl_path) == expected and pq.read_table(child.parquet_path).to_pylist() == expected
    assert (child.row_count, child.kind, child.columns, child.run) == (5, answers.kind, answers.columns, None)
    assert child.parent == answers and child.created_by == researcher
    assert child.curation["dropped_rows"] == [0] and child.curation["flagged_rows"] == [3]
    assert child.curation["edited_values"] == {"2": {"response": "A *better* answer"}}
    assert child.curation["curated_by"] == researcher.username and child.curation["parent_name"] == "answers"
    assert Path(child.jsonl_path).is_relative_to(artifact_root)
    answers.refresh_from_db()
    assert hashlib.sha256(Path(answers.jsonl_path).read_bytes()).hexdigest() == parent_bytes
    assert answers.row_count == 6 and answers.parent is None
    assert not CurationDraft.objects.exists()  # saved: the draft is done


@pytest.mark.parametrize(
    ("prepare", "name", "message"),
    [
        (lambda artifact, user: None, "new", "Nothing to save: drop or edit a row first"),
        (
            lambda artifact, user: curation.curation_row_mark(artifact=artifact, user=user, row_index=0, action="flag"),
            "new",
            "flags alone change no data",
        ),
        (
            lambda artifact, user: [
                curation.curation_row_mark(artifact=artifact, user=user, row_index=index, action="drop")
                for index in range(6)
            ],
            "new",
            "Every row is dropped",
        ),
        (
            lambda artifact, user: curation.curation_row_mark(artifact=artifact, user=user, row_index=0, action="drop"),
            "answers",
            "A dataset named “answers” already exists",
        ),
        (
            lambda artifact, user: curation.curation_row_mark(artifact=artifact, user=user, row_index=0, action="drop"),
            "  ",
            "Give the new artifact a name",
        ),
    ],
)
def test_saving_is_refused_by_name_and_writes_nothing(answers, researcher, artifact_root, prepare, name, message):
    prepare(answers, researcher)
    with pytest.raises(ValidationError, match=message):
        curation.curation_save(artifact=answers, user=researcher, name=name)
    assert Artifact.objects.count() == 1
    assert not (artifact_root / "datasets").exists() or not any((artifact_root / "datasets").iterdir())


def test_saving_streams_the_rows_so_memory_holds_one_batch(tmp_path, researcher, artifact_root):
    row_text = "x" * 4000
    rows = [{"prompt": f"q{index}", "response": row_text} for index in range(5000)]  # about 20 MB of JSONL
    artifact = _artifact(tmp_path, rows, name="big")
    curation.curation_row_mark(artifact=artifact, user=researcher, row_index=4999, action="drop")
    # A small save first, so the modules and caches loaded on first use are not counted.
    warm_up = _artifact(tmp_path, rows[:3], name="small")
    curation.curation_row_mark(artifact=warm_up, user=researcher, row_index=0, action="drop")
    curation.curation_save(artifact=warm_up, user=researcher, name="small, trimmed")
    tracemalloc.start()
    try:
        child = curation.curation_save(artifact=artifact, user=researcher, name="big, trimmed")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert child.row_count == 4999
    assert peak < 8 * 1024**2, f"saving held {peak / 1024**2:.1f} MiB: the rows were not streamed"


def test_annotators_may_not_curate(answers, annotator, researcher):
    curation.curation_row_mark(artifact=answers, user=researcher, row_index=0, action="drop")
    for action in (
        lambda: curation.curation_row_mark(artifact=answers, user=annotator, row_index=0, action="drop"),
        lambda: curation.curation_row_edit(artifact=answers, user=annotator, row_index=0, values={"response": "x"}),
        lambda: curation.curation_save(artifact=answers, user=annotator, name="mine"),
        lambda: curation.curation_discard(artifact=answers, user=annotator),
    ):
        with pytest.raises(PermissionDenied):
            action()
    assert not CurationDraft.objects.filter(user=annotator).exists() and Artifact.objects.count() == 1


def test_annotators_are_refused_the_viewer_and_every_curation_endpoint(client, answers, annotator):
    client.force_login(annotator)
    base = f"/runs/artifacts/{answers.pk}"
    assert client.get(f"{base}/").status_code == 403
    assert client.get(f"{base}/rows/0/edit/").status_code == 403
    for path in ("rows/0/drop/", "rows/0/edit/", "curation/save/", "curation/discard/"):
        assert client.post(f"{base}/{path}", {"response": "x", "name": "mine"}).status_code == 403, path
    assert not CurationDraft.objects.exists() and Artifact.objects.count() == 1
