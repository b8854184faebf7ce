"""Hostile uploads and input (issue 17): zip bombs, oversized documents, NUL characters, duplicates,
deeply nested JSON, spreadsheet formulas in CSV exports, and the evaluation prompt import's upload path."""

from __future__ import annotations

import csv
import html
import io
import json
import os
import subprocess
import sys
import tracemalloc
import uuid
import zipfile
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from webapp.library import services
from webapp.library.forms import RubricForm
from webapp.library.models import Corpus, Document, FewShotExample, FewShotSet, SeedPrompt, SeedPromptSet
from webapp.library.parsers.reading import ImportProblem

from .conftest import parquet_bytes, zip_bytes

pytestmark = pytest.mark.django_db

REPOSITORY_ROOT = Path(__file__).resolve().parents[3]


def _row_counts() -> tuple[int, ...]:
    models = (Corpus, Document, SeedPromptSet, SeedPrompt, FewShotSet, FewShotExample)
    return tuple(
        model.all_objects.count() if hasattr(model, "all_objects") else model.objects.count() for model in models
    )


def _page(response) -> str:
    return html.unescape(response.content.decode())


def _bomb_zip(entry: str = "bomb.txt", unpacked_bytes: int = 20_000_000) -> bytes:
    """A real zip of a few KB whose one text entry unpacks to `unpacked_bytes` of repeated text."""
    buffer = io.BytesIO()
    line = b"all work and no play makes a dull import\n"
    with (
        zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open(entry, "w") as out,
    ):
        for _ in range(unpacked_bytes // len(line)):
            out.write(line)
    return buffer.getvalue()


def _import_traced(**arguments) -> tuple[BaseException | None, int]:
    """Run corpus_import under tracemalloc: (the exception it raised or None, peak Python allocation)."""
    tracemalloc.start()
    raised = None
    try:
        services.corpus_import(**arguments)
    except (ImportProblem, ValidationError) as error:
        raised = error
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return raised, peak


# ---------------------------------------------------------------- item 1: zip bombs and document size


def test_zip_bomb_is_refused_naming_its_entry_without_unpacking_it(write_file, researcher):
    unpacked = 20_000_000
    content = _bomb_zip(unpacked_bytes=unpacked)
    assert len(content) < unpacked / 200  # a real bomb: far smaller than what it unpacks to
    raised, peak = _import_traced(
        name="Bomb", uploaded_file_path=write_file(content), original_name="bomb.zip", user=researcher
    )
    assert isinstance(raised, ImportProblem)
    assert str(raised).startswith(f"bomb.zip:bomb.txt: unpacks to {(unpacked // 41) * 41:,} bytes from ")
    assert "LIBRARY_MAX_COMPRESSION_RATIO" in str(raised)
    assert peak < unpacked / 20, f"peak Python allocations {peak:,} bytes for a {unpacked:,}-byte entry"
    assert _row_counts() == (0, 0, 0, 0, 0, 0)


def test_archive_entry_over_the_document_cap_is_refused_with_its_name_and_size(write_file, researcher, settings):
    settings.LIBRARY_MAX_DOCUMENT_BYTES = 1_000_000
    settings.LIBRARY_MAX_COMPRESSION_RATIO = 1e9  # only the per-document cap is under test here
    content = _bomb_zip("chapters/huge.txt", unpacked_bytes=12_000_000)
    raised, peak = _import_traced(
        name="Huge", uploaded_file_path=write_file(content), original_name="book.zip", user=researcher
    )
    unpacked = (12_000_000 // 41) * 41  # whole 41-byte lines
    assert str(raised) == (
        f"book.zip:chapters/huge.txt: the document is {unpacked:,} bytes, over the per-document limit of "
        "1,000,000 bytes (LIBRARY_MAX_DOCUMENT_BYTES)"
    )
    assert peak < 2_000_000
    assert not Corpus.all_objects.exists()


def test_archive_over_the_unpacked_budget_is_refused(write_file, researcher, settings):
    settings.LIBRARY_MAX_UPLOAD_BYTES = 5_000_000
    settings.LIBRARY_MAX_COMPRESSION_RATIO = 1e9
    content = zip_bytes([(f"part-{index}.txt", "x" * 2_000_000) for index in range(3)])
    with pytest.raises(
        ImportProblem, match=r"^parts.zip: the archive unpacks to 6,000,000 bytes, over the limit of 5,000,000 bytes$"
    ):
        services.corpus_import(
            name="Parts", uploaded_file_path=write_file(content), original_name="parts.zip", user=researcher
        )


def test_text_file_over_the_document_cap_is_refused_before_it_is_read(write_file, researcher, settings):
    settings.LIBRARY_MAX_DOCUMENT_BYTES = 1000
    with pytest.raises(ImportProblem) as raised:
        services.corpus_import(
            name="T", uploaded_file_path=write_file("x" * 1500), original_name="essay.txt", user=researcher
        )
    assert str(raised.value) == (
        "essay.txt: the document is 1,500 bytes, over the per-document limit of 1,000 bytes (LIBRARY_MAX_DOCUMENT_BYTES)"
    )


def test_jsonl_line_over_the_document_cap_is_refused_with_its_line_and_size_in_bounded_memory(
    write_file, researcher, settings
):
    settings.LIBRARY_MAX_DOCUMENT_BYTES = 1_000_000
    huge_line = json.dumps({"text": "y" * 8_000_000}) + "\n"
    content = json.dumps({"text": "fine"}) + "\n" + huge_line
    raised, peak = _import_traced(
        name="Lines", uploaded_file_path=write_file(content), original_name="corpus.jsonl", user=researcher
    )
    assert str(raised) == (
        f"corpus.jsonl, line 2: the line is {len(huge_line):,} bytes, over the per-document limit of 1,000,000 bytes "
        "(LIBRARY_MAX_DOCUMENT_BYTES)"
    )
    assert peak < 4_000_000, f"peak {peak:,} bytes reading an {len(huge_line):,}-byte line"


def test_parquet_cell_over_the_document_cap_is_refused_with_its_row(write_file, researcher, settings):
    settings.LIBRARY_MAX_DOCUMENT_BYTES = 1000
    content = parquet_bytes({"text": ["short", "z" * 2000]})
    with pytest.raises(
        ImportProblem, match=r"^table.parquet, row 2: the document is 2,000 bytes, over the per-document limit"
    ):
        services.corpus_import(
            name="P", uploaded_file_path=write_file(content), original_name="table.parquet", user=researcher
        )


def test_zip_bomb_upload_is_a_400_naming_the_entry(researcher_client: Client):
    upload = SimpleUploadedFile("bomb.zip", _bomb_zip(unpacked_bytes=5_000_000))
    response = researcher_client.post(reverse("library:corpus-upload"), {"name": "Bomb", "file": upload})
    assert response.status_code == 400
    assert f"bomb.zip:bomb.txt: unpacks to {(5_000_000 // 41) * 41:,} bytes" in _page(response)
    assert not Corpus.all_objects.exists()


def test_document_page_shows_an_excerpt_and_the_download_has_the_whole_text(
    researcher_client: Client, researcher, tmp_path
):
    text = "Opening words. " + "middle " * 20_000 + "TAIL-MARKER"
    path = tmp_path / "long.jsonl"
    path.write_text(json.dumps({"title": "Long", "text": text}) + "\n")
    corpus = services.corpus_import(
        name="Long", uploaded_file_path=path, original_name="long.jsonl", user=researcher
    ).corpus
    document = corpus.documents.get()

    page = _page(researcher_client.get(reverse("library:document-detail", args=[document.pk])))
    assert "Opening words." in page
    assert "TAIL-MARKER" not in page
    assert f"{len(text)} characters" in page
    assert reverse("library:document-download", args=[document.pk]) in page
    assert len(page) < 60_000

    response = researcher_client.get(reverse("library:document-download", args=[document.pk]))
    assert response["Content-Disposition"] == f'attachment; filename="document-{document.pk}.txt"'
    assert b"".join(response.streaming_content).decode("utf-8") == text


def test_download_streams_a_text_longer_than_one_piece(researcher, tmp_path):
    from webapp.library import selectors

    text = "é" * 2500 + "end"
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"text": text}) + "\n")
    document = services.corpus_import(
        name="D", uploaded_file_path=path, original_name="d.jsonl", user=researcher
    ).corpus.documents.get()
    pieces = list(selectors.document_text_pieces(document, piece_characters=1000))
    assert [len(piece) for piece in pieces] == [1000, 1000, 503]
    assert "".join(pieces) == text


# ---------------------------------------------------------------- item 7: NUL characters


NUL_UPLOADS = [
    pytest.param(
        "corpus.jsonl",
        b'{"text": "fine"}\n{"text": "bad \\u0000 byte"}\n',
        'corpus.jsonl, line 2: the "text" field contains a NUL character',
        id="jsonl-text",
    ),
    pytest.param(
        "corpus.jsonl",
        b'{"text": "fine", "origin": {"path": ["a", "b\\u0000"]}}\n',
        'corpus.jsonl, line 1: the "origin" field contains a NUL character',
        id="jsonl-meta",
    ),
    pytest.param(
        "essay.txt", b"one\ntwo\nthree \x00 four\n", "essay.txt, line 3: the text contains a NUL character", id="txt"
    ),
    pytest.param(
        "docs.zip",
        zip_bytes([("a.txt", "fine"), ("b.txt", "x\n\x00")]),
        "docs.zip:b.txt, line 2: the text contains a NUL character",
        id="zip-entry",
    ),
    pytest.param(
        "table.parquet",
        parquet_bytes({"text": ["ok", "no\x00pe"]}),
        'table.parquet, row 2: the "text" field contains a NUL character',
        id="parquet",
    ),
]


@pytest.mark.parametrize(("original_name", "content", "message"), NUL_UPLOADS)
def test_nul_character_in_a_corpus_is_refused_with_file_and_line(
    write_file, researcher, original_name, content, message
):
    with pytest.raises(ImportProblem) as raised:
        services.corpus_import(
            name="N", uploaded_file_path=write_file(content), original_name=original_name, user=researcher
        )
    assert str(raised.value).startswith(message)
    assert _row_counts() == (0, 0, 0, 0, 0, 0)


def test_nul_character_in_seed_prompts_and_few_shot_examples_is_refused(write_file, researcher):
    with pytest.raises(ImportProblem, match=r"^seeds.txt, line 2: the text contains a NUL character"):
        services.seed_prompt_set_import(
            name="S", uploaded_file_path=write_file(b"first\nsec\x00ond\n"), original_name="seeds.txt", user=researcher
        )
    qa = json.dumps({"context": "c", "question": "q\u0000", "answer": "a"}) + "\n"
    with pytest.raises(ImportProblem, match=r'^qa.jsonl, line 1: the "question" field contains a NUL character'):
        services.few_shot_set_import(
            name="Q", uploaded_file_path=write_file(qa), original_name="qa.jsonl", user=researcher
        )
    with pytest.raises(ImportProblem, match=r"^demo.txt, line 4: the text contains a NUL character"):
        services.few_shot_set_import(
            name="D",
            kind=FewShotSet.Kind.DEMONSTRATION,
            uploaded_file_path=write_file("Preamble.\n\n-----\nHuman: \x00\n"),
            original_name="demo.txt",
            user=researcher,
        )
    assert _row_counts() == (0, 0, 0, 0, 0, 0)


def test_nul_character_upload_is_a_400_not_a_500(researcher_client: Client):
    upload = SimpleUploadedFile("corpus.jsonl", b'{"text": "a\\u0000b"}\n')
    response = researcher_client.post(reverse("library:corpus-upload"), {"name": "N", "file": upload})
    assert response.status_code == 400
    assert 'corpus.jsonl, line 1: the "text" field contains a NUL character' in _page(response)


# ---------------------------------------------------------------- item 7: duplicates


def _duplicates_file(write_file) -> Path:
    texts = ["alpha", "beta", "alpha", "gamma", "beta", "alpha"]
    return write_file("".join(json.dumps({"text": text}) + "\n" for text in texts), "dups.jsonl")


def test_duplicate_documents_are_counted_and_kept_by_default(write_file, researcher):
    result = services.corpus_import(
        name="D", uploaded_file_path=_duplicates_file(write_file), original_name="dups.jsonl", user=researcher
    )
    assert (result.added_documents, result.duplicate_documents, result.duplicates_dropped) == (6, 3, False)
    assert result.corpus.document_count == 6


def test_duplicate_documents_can_be_dropped(write_file, researcher):
    result = services.corpus_import(
        name="D",
        uploaded_file_path=_duplicates_file(write_file),
        original_name="dups.jsonl",
        user=researcher,
        drop_duplicates=True,
    )
    assert (result.added_documents, result.duplicate_documents) == (3, 3)
    assert list(result.corpus.documents.values_list("position", "text", "source")) == [
        (0, "alpha", "dups.jsonl, line 1"),
        (1, "beta", "dups.jsonl, line 2"),
        (2, "gamma", "dups.jsonl, line 4"),
    ]
    corpus = result.corpus
    appended = services.corpus_append(
        corpus=corpus,
        uploaded_file_path=_duplicates_file(write_file),
        original_name="again.jsonl",
        drop_duplicates=True,
    )
    assert (appended.added_documents, appended.duplicate_documents, corpus.document_count) == (3, 3, 6)


def test_the_result_page_reports_duplicates(researcher_client: Client):
    content = b'{"text": "same"}\n{"text": "same"}\n{"text": "other"}\n'
    response = researcher_client.post(
        reverse("library:corpus-upload"),
        {"name": "Dups", "file": SimpleUploadedFile("dups.jsonl", content), "drop_duplicates": "on"},
        follow=True,
    )
    page = _page(response)
    assert (
        "Added 2 documents from dups.jsonl to “Dups”. 1 duplicate document (same text as an earlier one) dropped."
        in page
    )
    kept = researcher_client.post(
        reverse("library:corpus-upload"),
        {"name": "Kept", "file": SimpleUploadedFile("dups.jsonl", content)},
        follow=True,
    )
    assert (
        "Added 3 documents from dups.jsonl to “Kept”. 1 duplicate document (same text as an earlier one) kept."
        in _page(kept)
    )


# ---------------------------------------------------------------- item 6: deeply nested rubric configurations


@pytest.mark.parametrize("depth", [40, 200_000])
def test_deeply_nested_rubric_configurations_are_a_form_error(depth):
    # The JSON form is the API's (the rubric page edits configurations with the structured editor).
    nested = "[" * depth + '"x"' + "]" * depth
    form = RubricForm({"name": "Deep", "configurations": nested})
    assert not form.is_valid()
    assert form.errors["configurations"] == [
        "The JSON is nested more than 32 levels deep; give a flat list of strings or simple objects."
    ]


def test_deeply_nested_configurations_are_refused_by_the_service_too(researcher):
    nested: list = ["x"]
    for _ in range(40):
        nested = [nested]
    with pytest.raises(ValidationError) as raised:
        services.rubric_create(name="Deep", user=researcher, configurations=[{"a": nested}])
    assert "configurations" in raised.value.message_dict


def test_deeply_nested_configurations_posted_to_the_edit_page_change_nothing(researcher_client: Client, researcher):
    rubric = services.rubric_create(name="R", user=researcher, configurations=["big"])
    nested = "[" * 100_000 + "]" * 100_000
    response = researcher_client.post(
        reverse("library:rubric-edit", args=[rubric.pk]), {"name": "R", "configurations": nested}
    )
    assert response.status_code == 400  # no rubric editor rows were posted: refused, not a 500
    rubric.refresh_from_db()
    assert rubric.configurations == ["big"]


# ---------------------------------------------------------------- item 7: CSV exports


def test_spreadsheet_formulas_are_escaped_in_csv_cells():
    from webapp.core.spreadsheet import spreadsheet_safe

    assert [
        spreadsheet_safe(value) for value in ("=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx", "plain", -2.5, 3, None)
    ] == [
        "'=1+1",
        "'+1",
        "'-2",
        "'@SUM(A1)",
        "'\tx",
        "'\rx",
        "plain",
        -2.5,
        3,
        None,
    ]


def test_annotation_csv_export_escapes_formulas(researcher, researcher_client: Client, make_user, tmp_path):
    from webapp.annotation import services as annotation_services
    from webapp.library.models import Rubric
    from webapp.runs.services import artifact_register

    rows = [{"prompt": '=HYPERLINK("http://evil.example","click")', "chosen": "@SUM(1)", "rejected": "+1"}]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    artifact = artifact_register(run=None, name=f"pairs-{uuid.uuid4().hex[:6]}", kind="comparisons", jsonl_path=path)
    rubric = Rubric.objects.create(name="Helpful")
    annotator = make_user("annotator", username="=cmd|'/C calc'!A0")
    campaign = annotation_services.campaign_create(
        user=researcher,
        name="Formulas",
        artifact=artifact,
        rubric=rubric,
        assignees=[annotator],
        sample_size=1,
        overlap=1,
        flags=[],
        seed=1,
    )
    item = annotation_services.assignment_next(campaign=campaign, annotator=annotator)
    annotation_services.judgment_submit(
        campaign=campaign,
        annotator=annotator,
        item_id=item.pk,
        choice="tie",
        submission_key=uuid.uuid4().hex,
        comment="-5+3",
    )
    response = researcher_client.get(reverse("annotation:export", args=[campaign.pk, "csv"]))
    exported = next(csv.DictReader(io.StringIO(response.content.decode())))
    assert exported["prompt"] == "'" + rows[0]["prompt"]
    assert exported["annotator"] == "'=cmd|'/C calc'!A0"
    assert exported["comment"] == "'-5+3"
    assert {exported["response_a"], exported["response_b"]} == {"'@SUM(1)", "'+1"}


# ---------------------------------------------------------------- item 7: the evaluation prompt import


def test_evaluation_prompt_import_accepts_a_byte_order_mark(tmp_path):
    from webapp.evaluation import services as evaluation_services

    path = tmp_path / "upload"
    path.write_bytes(b'\xef\xbb\xbf{"prompt": "Say hi."}\n{"instruction": "Say bye."}\n')
    assert evaluation_services.parse_imported_prompts(path, file_name="prompts.jsonl") == ["Say hi.", "Say bye."]


def test_evaluation_prompt_import_refuses_nul_and_names_the_line(tmp_path):
    from webapp.evaluation import services as evaluation_services

    path = tmp_path / "upload"
    path.write_bytes(b'{"prompt": "ok"}\n{"prompt": "a\\u0000b"}\n')
    with pytest.raises(ValidationError) as raised:
        evaluation_services.parse_imported_prompts(path, file_name="prompts.jsonl")
    assert raised.value.message_dict["prompts_file"][0].startswith(
        'prompts.jsonl, line 2: the "prompt" field contains a NUL character'
    )


def test_evaluation_prompt_file_over_the_limit_is_cut_off_while_it_streams_in(researcher_client: Client, monkeypatch):
    from webapp.evaluation import services as evaluation_services

    monkeypatch.setattr(evaluation_services, "MAX_PROMPT_FILE_BYTES", 1000)
    upload = SimpleUploadedFile("prompts.jsonl", b'{"prompt": "p"}\n' * 500)
    response = researcher_client.post(reverse("evaluation:new"), {"name": "big", "prompts_file": upload})
    assert response.status_code == 400
    assert response.context["form"].errors["prompts_file"] == [
        "prompts.jsonl: the file is over the limit of 1,000 bytes"
    ]


def test_evaluation_prompt_upload_declared_too_large_is_refused_before_reading(researcher_client: Client, monkeypatch):
    from webapp.evaluation import services as evaluation_services

    monkeypatch.setattr(evaluation_services, "MAX_PROMPT_FILE_BYTES", 1000)
    response = researcher_client.post(
        reverse("evaluation:new"),
        {"name": "big", "prompts_file": SimpleUploadedFile("p.jsonl", b"x")},
        CONTENT_LENGTH=str(5 << 20),
    )
    assert response.status_code == 400
    assert "The upload: the file is 5,242,880 bytes, over the limit of 1,000 bytes" in _page(response)


# ---------------------------------------------------------------- item 7: the tests' own artifact root


def test_the_test_session_has_its_own_artifact_root_which_subprocesses_inherit():
    live_root = (REPOSITORY_ROOT / "var" / "artifacts").resolve()
    root = Path(django_settings.ARTIFACT_ROOT).resolve()
    assert not root.is_relative_to(REPOSITORY_ROOT), f"tests write into {root}"
    assert root != live_root
    assert Path(django_settings.MEDIA_ROOT).resolve().is_relative_to(root)
    assert os.environ["ARTIFACT_ROOT"] == str(django_settings.ARTIFACT_ROOT)
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; print(settings.ARTIFACT_ROOT)",
        ],
        cwd=REPOSITORY_ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "webapp.settings.test"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert child.stdout.strip() == str(django_settings.ARTIFACT_ROOT)


def test_nul_character_in_rubric_configurations_is_refused_not_a_500(researcher):
    with pytest.raises(ValidationError) as raised:
        services.rubric_create(name="Nul", user=researcher, configurations=["big model", {"model": "a\u0000b"}])
    assert raised.value.message_dict["configurations"] == [
        "A configuration holds a NUL character (\\u0000), which the database cannot store."
    ]


def test_nul_character_deep_inside_a_jsonl_record_is_found_without_recursion(write_file, researcher):
    deep = "[" * 900 + '"\\u0000"' + "]" * 900
    content = '{"text": "fine", "nested": ' + deep + "}\n"
    with pytest.raises(ImportProblem, match=r'^corpus.jsonl, line 1: the "nested" field contains a NUL character'):
        services.corpus_import(
            name="Deep", uploaded_file_path=write_file(content), original_name="corpus.jsonl", user=researcher
        )


def test_batches_are_cut_by_text_size_so_big_documents_never_pile_up_in_memory(write_file, researcher, settings):
    settings.LIBRARY_MAX_COMPRESSION_RATIO = 1e9
    entry_bytes, entries = 3_000_000, 20
    content = zip_bytes([(f"chapter-{index:02}.txt", f"{index} " + "z" * entry_bytes) for index in range(entries)])
    tracemalloc.start()
    try:
        result = services.corpus_import(
            name="Book", uploaded_file_path=write_file(content), original_name="book.zip", user=researcher
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.corpus.document_count == entries
    total = entries * entry_bytes
    assert peak < total / 2, f"peak Python allocations {peak:,} bytes importing {total:,} bytes of text"
