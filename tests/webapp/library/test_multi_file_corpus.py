"""A corpus from several files at once: documents in file order, each file held to the limits, all or nothing."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from tests.webapp.library.conftest import zip_bytes
from webapp.library import services
from webapp.library.forms import CORPUS_UPLOAD_MAX_FILES
from webapp.library.models import Corpus, Document
from webapp.library.parsers.reading import ImportProblem, SourceFile

pytestmark = pytest.mark.django_db

NOTES_JSONL = b'{"title": "Lists", "text": "A list is mutable."}\n{"title": "Tuples", "text": "A tuple is not."}\n'


def _nothing_created() -> bool:
    return not Corpus.all_objects.exists() and not Document.objects.exists()


def _files(write_file, *named: tuple[str, bytes]) -> list[SourceFile]:
    return [SourceFile(write_file(content, name), name) for name, content in named]


def test_documents_of_several_files_go_into_one_corpus_in_file_order(researcher, write_file):
    files = _files(
        write_file,
        ("notes.jsonl", NOTES_JSONL),
        ("essay.txt", b"An essay in one file."),
        ("more.zip", zip_bytes([("a.txt", "First archived."), ("b.txt", "A list is mutable.")])),
    )
    result = services.corpus_import_files(name="Mixed", files=files, user=researcher)
    documents = list(result.corpus.documents.order_by("position").values_list("position", "text", "source"))
    assert [text for _, text, _ in documents] == [
        "A list is mutable.",
        "A tuple is not.",
        "An essay in one file.",
        "First archived.",
        "A list is mutable.",
    ]
    assert [position for position, _, _ in documents] == [0, 1, 2, 3, 4]
    assert documents[1][2] == "notes.jsonl, line 2" and documents[2][2] == "essay.txt"
    assert result.corpus.source == "notes.jsonl; essay.txt; more.zip"
    assert result.corpus.document_count == 5
    assert result.duplicate_documents == 1, "a duplicate across files is counted like one within a file"
    assert "from notes.jsonl, essay.txt, more.zip" in result.summary("notes.jsonl, essay.txt, more.zip")


def test_a_bad_record_in_a_later_file_creates_nothing_and_names_file_line_and_field(researcher, write_file):
    files = _files(
        write_file,
        ("good.jsonl", NOTES_JSONL),
        ("bad.jsonl", b'{"text": "fine"}\n{"text": 7}\n'),
    )
    with pytest.raises(ImportProblem, match=r'^bad.jsonl, line 2: the "text" field must be a string, found a number$'):
        services.corpus_import_files(name="Half", files=files, user=researcher)
    assert _nothing_created()


def test_each_file_is_held_to_the_upload_size_limit(researcher, write_file, settings):
    settings.LIBRARY_MAX_UPLOAD_BYTES = 200
    files = _files(write_file, ("small.jsonl", NOTES_JSONL), ("large.txt", b"x" * 201))
    with pytest.raises(ImportProblem, match=r"^large.txt: .*over the limit of 200 bytes"):
        services.corpus_import_files(name="Sizes", files=files, user=researcher)
    assert _nothing_created()
    # Together the files are over the limit, but each is within it: accepted.
    files = _files(write_file, ("one.txt", b"y" * 150), ("two.txt", b"z" * 150))
    assert services.corpus_import_files(name="Sizes", files=files, user=researcher).corpus.document_count == 2


def _post(client: Client, *uploads: SimpleUploadedFile, name: str = "Uploaded"):
    return client.post(reverse("library:corpus-upload"), {"name": name, "file": list(uploads)})


def test_the_upload_page_takes_several_files_and_redirects_to_the_corpus(researcher_client: Client, settings):
    settings.LIBRARY_MAX_UPLOAD_BYTES = 200  # the request is larger than one file's limit, each file within it
    page = researcher_client.get(reverse("library:corpus-upload")).content.decode()
    assert re.search(r'<input type="file" name="file" [^>]*\bmultiple\b', page)
    response = _post(
        researcher_client,
        SimpleUploadedFile("notes.jsonl", NOTES_JSONL),
        SimpleUploadedFile("one.txt", b"a" * 150),
        SimpleUploadedFile("two.txt", b"b" * 150),
    )
    corpus = Corpus.objects.get(name="Uploaded")
    assert response.status_code == 302 and response.url == corpus.get_absolute_url()
    assert corpus.document_count == 4
    message = html.unescape(researcher_client.get(response.url).content.decode())
    assert "Added 4 documents from notes.jsonl, one.txt, two.txt to “Uploaded”." in message


def test_the_upload_page_refuses_all_files_when_one_is_bad_and_names_it(researcher_client: Client):
    response = _post(
        researcher_client,
        SimpleUploadedFile("notes.jsonl", NOTES_JSONL),
        SimpleUploadedFile("slides.pdf", b"%PDF-1.4"),
    )
    assert response.status_code == 400
    page = html.unescape(response.content.decode())
    assert "slides.pdf: unsupported file type" in page
    assert _nothing_created()


def test_more_files_than_the_limit_is_a_form_error(researcher_client: Client):
    uploads = [SimpleUploadedFile(f"{index}.txt", b"text") for index in range(CORPUS_UPLOAD_MAX_FILES + 1)]
    response = _post(researcher_client, *uploads)
    assert response.status_code == 400
    assert f"{CORPUS_UPLOAD_MAX_FILES + 1} files were chosen; upload at most {CORPUS_UPLOAD_MAX_FILES}" in (
        html.unescape(response.content.decode())
    )
    assert _nothing_created()


def test_one_file_over_the_limit_while_streaming_is_named(researcher_client: Client, settings):
    settings.LIBRARY_MAX_UPLOAD_BYTES = 200
    response = _post(
        researcher_client, SimpleUploadedFile("notes.jsonl", NOTES_JSONL), SimpleUploadedFile("big.txt", b"x" * 500)
    )
    assert response.status_code == 400
    assert "big.txt: the file is over the limit of 200 bytes" in html.unescape(response.content.decode())
    assert _nothing_created()


def test_the_single_file_import_still_reads_one_path(researcher, write_file: Path):
    path = write_file(NOTES_JSONL, "solo.jsonl")
    result = services.corpus_import(name="Solo", uploaded_file_path=path, original_name="solo.jsonl", user=researcher)
    assert result.corpus.source == "solo.jsonl" and result.added_documents == 2
