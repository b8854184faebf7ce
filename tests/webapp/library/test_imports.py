"""Import services: all-or-nothing, batched, bounded in memory; rubric create and update."""

from __future__ import annotations

import json
import threading
import time
import tracemalloc

import psutil
import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from webapp.library import services
from webapp.library.models import Corpus, Document, FewShotExample, FewShotSet, Rubric, SeedPrompt, SeedPromptSet
from webapp.library.parsers.reading import ImportProblem

from .conftest import parquet_bytes, zip_bytes

pytestmark = pytest.mark.django_db


def _row_counts() -> dict[str, int]:
    models = (Corpus, Document, SeedPromptSet, SeedPrompt, FewShotSet, FewShotExample)
    return {model.__name__: model.objects.count() for model in models}


def _jsonl(*texts: str) -> str:
    return "".join(json.dumps({"title": f"doc {index}", "text": text}) + "\n" for index, text in enumerate(texts))


def test_corpus_import_saves_documents_counts_and_provenance(write_file, researcher):
    path = write_file(_jsonl("alpha", "beta gamma", "delta"), "upload-123.tmp")
    corpus = services.corpus_import(
        name="Notes",
        uploaded_file_path=path,
        original_name="notes.jsonl",
        user=researcher,
        description="d",
        batch_size=2,
    ).corpus
    corpus.refresh_from_db()
    assert (corpus.document_count, corpus.character_count, corpus.source, corpus.created_by) == (
        3,
        20,
        "notes.jsonl",
        researcher,
    )
    assert list(corpus.documents.values_list("position", "title", "text", "source")) == [
        (0, "doc 0", "alpha", "notes.jsonl, line 1"),
        (1, "doc 1", "beta gamma", "notes.jsonl, line 2"),
        (2, "doc 2", "delta", "notes.jsonl, line 3"),
    ]


@pytest.mark.parametrize(
    ("original_name", "content", "expected_texts"),
    [
        ("essay.txt", b"One whole essay.\n", ["One whole essay.\n"]),
        ("docs.zip", zip_bytes([("a.txt", "Alpha"), ("b.txt", "Beta")]), ["Alpha", "Beta"]),
        ("table.parquet", parquet_bytes({"text": ["x", "y"]}), ["x", "y"]),
    ],
)
def test_corpus_import_reads_every_format(write_file, researcher, original_name, content, expected_texts):
    corpus = services.corpus_import(
        name="C", uploaded_file_path=write_file(content), original_name=original_name, user=researcher
    ).corpus
    assert list(corpus.documents.values_list("text", flat=True)) == expected_texts


def test_corpus_append_adds_after_the_last_document(write_file, researcher):
    corpus = services.corpus_import(
        name="C", uploaded_file_path=write_file(_jsonl("a", "b")), original_name="one.jsonl", user=researcher
    ).corpus
    services.corpus_append(corpus=corpus, uploaded_file_path=write_file(_jsonl("ccc")), original_name="two.jsonl")
    assert (corpus.document_count, corpus.character_count, corpus.source) == (3, 5, "one.jsonl; two.jsonl")
    assert list(corpus.documents.values_list("position", "text", "source")) == [
        (0, "a", "one.jsonl, line 1"),
        (1, "b", "one.jsonl, line 2"),
        (2, "ccc", "two.jsonl, line 1"),
    ]


BAD_UPLOADS = [
    pytest.param(
        "corpus.jsonl",
        b'{"text": "ok"}\n{"text": "caf\xe9"}\n',
        "corpus.jsonl, line 2: invalid UTF-8",
        id="invalid-utf8",
    ),
    pytest.param(
        "corpus.jsonl",
        b'{"text": "a"}\n{"text": "b"}\n{"text": "c"\n',
        "corpus.jsonl, line 3: not valid JSON (Expecting ',' delimiter at column 13)",
        id="broken-json-line-3",
    ),
    pytest.param(
        "corpus.jsonl",
        b'{"text": "a"}\n{"title": "b"}\n',
        'corpus.jsonl, line 2: missing the "text" or "article" field',
        id="missing-field",
    ),
    pytest.param("corpus.jsonl", b"", "corpus.jsonl: the file is empty: no documents found", id="empty-file"),
    pytest.param(
        "corpus.jsonl",
        b'{"text": "a"}\n' * 100,
        "corpus.jsonl: the file is 1,400 bytes, over the limit of 1,000 bytes",
        id="over-size",
    ),
    pytest.param(
        "docs.zip",
        zip_bytes([("a.txt", "fine"), ("../evil.txt", "x")]),
        'docs.zip: entry "../evil.txt" escapes the archive with ".."',
        id="zip-dotdot",
    ),
    pytest.param(
        "docs.zip",
        zip_bytes([("a.txt", "fine"), ("/tmp/evil.txt", "x")]),
        'docs.zip: entry "/tmp/evil.txt" has an absolute path',
        id="zip-absolute",
    ),
    pytest.param("corpus.csv", b"text\nx\n", 'corpus.csv: unsupported file type ".csv"', id="unsupported-extension"),
]


@pytest.mark.parametrize(("original_name", "content", "message"), BAD_UPLOADS)
def test_bad_corpus_upload_saves_nothing(write_file, researcher, settings, original_name, content, message):
    settings.LIBRARY_MAX_UPLOAD_BYTES = 1000
    before = _row_counts()
    # Enough good records before the bad one to fill several batches, so earlier inserts must be rolled back.
    with pytest.raises(ImportProblem) as raised:
        services.corpus_import(
            name="Bad",
            uploaded_file_path=write_file(content),
            original_name=original_name,
            user=researcher,
            batch_size=1,
        )
    assert str(raised.value).startswith(message)
    assert _row_counts() == before
    assert not Corpus.objects.filter(name="Bad").exists()


@pytest.mark.parametrize(("original_name", "content", "message"), BAD_UPLOADS)
def test_bad_append_leaves_the_corpus_as_it_was(write_file, researcher, settings, original_name, content, message):
    corpus = services.corpus_import(
        name="Kept",
        uploaded_file_path=write_file(_jsonl("a", "b"), "first.jsonl"),
        original_name="first.jsonl",
        user=researcher,
    ).corpus
    settings.LIBRARY_MAX_UPLOAD_BYTES = 1000
    before = _row_counts()
    with pytest.raises(ImportProblem) as raised:
        services.corpus_append(
            corpus=corpus, uploaded_file_path=write_file(content), original_name=original_name, batch_size=1
        )
    assert str(raised.value).startswith(message)
    assert _row_counts() == before
    corpus.refresh_from_db()
    assert (corpus.document_count, corpus.character_count, corpus.source) == (2, 2, "first.jsonl")
    assert list(corpus.documents.values_list("text", flat=True)) == ["a", "b"]


def test_failure_after_several_batches_rolls_back_every_batch(write_file, researcher):
    content = _jsonl(*[f"text {index}" for index in range(25)]) + '{"text": 1}\n'
    with pytest.raises(
        ImportProblem, match=r'^corpus.jsonl, line 26: the "text" field must be a string, found a number$'
    ):
        services.corpus_import(
            name="Late",
            uploaded_file_path=write_file(content),
            original_name="corpus.jsonl",
            user=researcher,
            batch_size=10,
        )
    assert (Corpus.objects.count(), Document.objects.count()) == (0, 0)


def test_taken_name_is_refused_before_the_file_is_read(write_file, researcher):
    services.corpus_import(
        name="Same", uploaded_file_path=write_file(_jsonl("a")), original_name="a.jsonl", user=researcher
    )
    with pytest.raises(ValidationError) as raised:
        services.corpus_import(
            name="Same", uploaded_file_path=write_file(b"\xff not even utf-8"), original_name="b.jsonl", user=researcher
        )
    assert "name" in raised.value.message_dict
    assert Document.objects.count() == 1


def test_seed_prompt_set_import_keeps_the_instruction(write_file, researcher):
    path = write_file("### Instruction: Answer briefly.\nWhat is a list?\n\nWhat is a dict?\n")
    prompt_set = services.seed_prompt_set_import(
        name="Seeds", uploaded_file_path=path, original_name="seeds.txt", user=researcher
    )
    prompt_set.refresh_from_db()
    assert (prompt_set.instruction, prompt_set.prompt_count) == ("Answer briefly.", 2)
    assert list(prompt_set.prompts.values_list("position", "text")) == [(0, "What is a list?"), (1, "What is a dict?")]


def test_bad_seed_prompt_file_saves_nothing(write_file, researcher):
    before = _row_counts()
    with pytest.raises(ImportProblem, match=r'^seeds.jsonl, line 2: missing the "prompt" or "text" field$'):
        services.seed_prompt_set_import(
            name="S",
            uploaded_file_path=write_file(b'{"prompt": "a"}\n{"q": "b"}\n'),
            original_name="seeds.jsonl",
            user=researcher,
            batch_size=1,
        )
    assert _row_counts() == before


def test_qa_few_shot_import(write_file, researcher):
    path = write_file(json.dumps({"context": "C", "question": "Q", "answer": "A"}) + "\n")
    few_shot_set = services.few_shot_set_import(
        name="QA", uploaded_file_path=path, original_name="qa.jsonl", user=researcher
    )
    few_shot_set.refresh_from_db()
    assert (few_shot_set.kind, few_shot_set.example_count) == (FewShotSet.Kind.QA, 1)
    example = few_shot_set.examples.get()
    assert (example.context, example.question, example.answer, example.meta) == (
        "C",
        "Q",
        "A",
        {"source": "qa.jsonl, line 1"},
    )


def test_demonstration_few_shot_import_stores_preamble_and_dialogues(write_file, researcher):
    path = write_file("Preamble.\n\n-----\n\nHuman: Hi\n\nAssistant: Hello\n\n-----\n\nHuman: Bye\n\nAssistant: Bye!\n")
    few_shot_set = services.few_shot_set_import(
        name="Demo",
        kind=FewShotSet.Kind.DEMONSTRATION,
        uploaded_file_path=path,
        original_name="demo.txt",
        user=researcher,
    )
    few_shot_set.refresh_from_db()
    assert (few_shot_set.preamble, few_shot_set.example_count) == ("Preamble.", 2)
    assert list(few_shot_set.examples.values_list("context", flat=True)) == [
        "Human: Hi\n\nAssistant: Hello",
        "Human: Bye\n\nAssistant: Bye!",
    ]


def test_bad_qa_file_saves_nothing(write_file, researcher):
    before = _row_counts()
    content = (
        json.dumps({"context": "C", "question": "Q", "answer": "A"})
        + "\n"
        + json.dumps({"context": "C", "question": "Q"})
        + "\n"
    )
    with pytest.raises(ImportProblem, match=r'^qa.jsonl, line 2: missing the "answer" field$'):
        services.few_shot_set_import(
            name="QA", uploaded_file_path=write_file(content), original_name="qa.jsonl", user=researcher, batch_size=1
        )
    assert _row_counts() == before


def test_rubric_create_and_update(researcher):
    rubric = services.rubric_create(
        name="R", user=researcher, criteria="Be right.", configurations=["big model", {"model": "small"}]
    )
    services.rubric_update(
        rubric=rubric, name="R2", criteria="Be right and kind.", guidelines="Read both.", configurations=["only"]
    )
    rubric.refresh_from_db()
    assert (rubric.name, rubric.criteria, rubric.guidelines, rubric.configurations) == (
        "R2",
        "Be right and kind.",
        "Read both.",
        ["only"],
    )
    with pytest.raises(ValidationError) as raised:
        services.rubric_create(name="Bad", user=researcher, configurations=["ok", 3])
    assert raised.value.message_dict == {"configurations": ["Item 2 must be a non-empty string or JSON object."]}
    assert not Rubric.objects.filter(name="Bad").exists()


def test_large_import_streams_in_batches_with_bounded_memory(tmp_path, researcher):
    """A ~50 MB JSONL file imports with memory (Python allocations and RSS) far below the file size, in many inserts."""
    path = tmp_path / "big.jsonl"
    paragraph = "Python reads this file one line at a time, so memory does not grow with the file. " * 48
    with open(path, "w") as out:
        for index in range(12_500):
            out.write(json.dumps({"title": f"document {index}", "text": f"{index} {paragraph}"}) + "\n")
    file_size = path.stat().st_size
    assert file_size > 45_000_000

    document_inserts = 0

    def count_document_inserts(execute, sql, params, many, context):
        nonlocal document_inserts
        if sql.startswith("INSERT") and "library_document" in sql:
            document_inserts += 1
        return execute(sql, params, many, context)

    process = psutil.Process()
    baseline_rss = process.memory_info().rss
    peak_rss = baseline_rss
    sampling = threading.Event()

    def sample_rss() -> None:
        nonlocal peak_rss
        while not sampling.wait(0.01):
            peak_rss = max(peak_rss, process.memory_info().rss)

    sampler = threading.Thread(target=sample_rss, daemon=True)
    reports: list[tuple[int, int]] = []
    started = time.monotonic()
    sampler.start()
    tracemalloc.start()
    try:
        with connection.execute_wrapper(count_document_inserts):
            corpus = services.corpus_import(
                name="Big",
                uploaded_file_path=path,
                original_name="big.jsonl",
                user=researcher,
                batch_size=250,
                progress=lambda done, total: reports.append((done, total)),
            ).corpus
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        sampling.set()
        sampler.join()
    elapsed = time.monotonic() - started

    assert corpus.document_count == 12_500 == Document.objects.filter(corpus=corpus).count()
    assert peak < file_size / 10, f"peak Python allocations {peak:,} bytes for a {file_size:,}-byte file"
    assert peak_rss - baseline_rss < file_size / 3, (
        f"RSS grew by {peak_rss - baseline_rss:,} bytes for a {file_size:,}-byte file"
    )
    assert document_inserts >= 50, f"expected batched inserts, saw {document_inserts}"
    assert len(reports) > 10 and reports[-1] == (file_size, file_size)
    assert elapsed < 60, f"took {elapsed:.1f} s"
    print(
        f"imported {file_size:,} bytes in {elapsed:.1f} s, peak Python allocations {peak:,} bytes, RSS growth {peak_rss - baseline_rss:,} bytes, {document_inserts} inserts"
    )
