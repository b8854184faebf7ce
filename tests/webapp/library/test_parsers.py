"""The upload readers: every format's happy path, and the exact words used for each kind of bad input."""

from __future__ import annotations

import json

import pytest

from webapp.library.parsers import corpus
from webapp.library.parsers.corpus import DocumentRecord, read_corpus
from webapp.library.parsers.fewshot import read_demonstration_prompt, read_qa_examples
from webapp.library.parsers.prompts import InstructionRecord, PromptRecord, read_seed_prompts
from webapp.library.parsers.reading import ImportProblem

from .conftest import parquet_bytes, zip_bytes


def test_jsonl_corpus_reads_text_or_article_with_title_and_meta(write_file):
    path = write_file(
        '{"title": "First", "text": "Alpha text", "lang": "en"}\n\n{"article": "Beta text"}\n', "corpus.jsonl"
    )
    records = list(read_corpus(path, file_name="corpus.jsonl"))
    assert records == [
        DocumentRecord(text="Alpha text", title="First", source="corpus.jsonl, line 1", meta={"lang": "en"}),
        DocumentRecord(text="Beta text", title="", source="corpus.jsonl, line 3", meta={}),
    ]


def test_txt_corpus_is_one_document_titled_by_the_file_name(write_file):
    path = write_file("Line one\nLine two\n", "notes.txt")
    assert list(read_corpus(path, file_name="notes.txt")) == [
        DocumentRecord(text="Line one\nLine two\n", title="notes.txt", source="notes.txt")
    ]


def test_zip_corpus_reads_each_txt_entry_and_skips_directories(write_file):
    path = write_file(zip_bytes([("a.txt", "Alpha"), ("sub/", ""), ("sub/b.txt", "Beta")]), "docs.zip")
    records = list(read_corpus(path, file_name="docs.zip"))
    assert [(record.title, record.text, record.source) for record in records] == [
        ("a.txt", "Alpha", "docs.zip:a.txt"),
        ("b.txt", "Beta", "docs.zip:sub/b.txt"),
    ]


def test_parquet_corpus_reads_rows_in_batches(write_file, monkeypatch):
    monkeypatch.setattr(corpus, "PARQUET_BATCH_ROWS", 2)
    path = write_file(
        parquet_bytes({"article": ["x", "y", "z"], "title": ["t1", None, "t3"], "year": [1, 2, 3]}), "p.parquet"
    )
    records = list(read_corpus(path, file_name="p.parquet"))
    assert records == [
        DocumentRecord(text="x", title="t1", source="p.parquet, row 1", meta={"year": 1}),
        DocumentRecord(text="y", title="", source="p.parquet, row 2", meta={"year": 2}),
        DocumentRecord(text="z", title="t3", source="p.parquet, row 3", meta={"year": 3}),
    ]


def test_seed_prompts_txt_takes_the_instruction_line_then_one_prompt_a_line(write_file):
    path = write_file("### Instruction: Be brief.\nWhat is Python?\n\n  Why is the sky blue?  \n", "seeds.txt")
    assert list(read_seed_prompts(path, file_name="seeds.txt")) == [
        InstructionRecord(text="Be brief.", source="seeds.txt, line 1"),
        PromptRecord(text="What is Python?", source="seeds.txt, line 2"),
        PromptRecord(text="Why is the sky blue?", source="seeds.txt, line 4"),
    ]


def test_seed_prompts_txt_without_instruction_and_jsonl(write_file):
    txt = write_file("One\nTwo\n", "seeds.txt")
    assert [record.text for record in read_seed_prompts(txt, file_name="seeds.txt")] == ["One", "Two"]
    jsonl = write_file('{"prompt": "One", "topic": "x"}\n{"text": "Two"}\n', "seeds.jsonl")
    records = list(read_seed_prompts(jsonl, file_name="seeds.jsonl"))
    assert records == [
        PromptRecord(text="One", source="seeds.jsonl, line 1", meta={"topic": "x"}),
        PromptRecord(text="Two", source="seeds.jsonl, line 2", meta={}),
    ]


def test_qa_examples_need_context_question_and_answer(write_file):
    path = write_file(json.dumps({"context": "C", "question": "Q", "answer": "A", "id": 7}) + "\n", "qa.jsonl")
    [record] = read_qa_examples(path, file_name="qa.jsonl")
    assert (record.context, record.question, record.answer, record.meta, record.source) == (
        "C",
        "Q",
        "A",
        {"id": 7},
        "qa.jsonl, line 1",
    )


def test_demonstration_prompt_splits_preamble_and_dialogues_with_their_lines(write_file):
    text = "Preamble here.\n\n-----\n\nHuman: Hi\n\nAssistant: Hello\n\n-----\n\nHuman: Bye\n\nAssistant: Bye!\n"
    prompt = read_demonstration_prompt(write_file(text, "demo.txt"), file_name="demo.txt")
    assert prompt.preamble == "Preamble here."
    assert prompt.dialogues == [
        PromptRecord(text="Human: Hi\n\nAssistant: Hello", source="demo.txt, line 5"),
        PromptRecord(text="Human: Bye\n\nAssistant: Bye!", source="demo.txt, line 11"),
    ]


def test_progress_reports_bytes_read_up_to_the_total(write_file):
    path = write_file("".join(json.dumps({"text": f"document {i}"}) + "\n" for i in range(100)), "corpus.jsonl")
    reports = []
    list(read_corpus(path, file_name="corpus.jsonl", progress=lambda done, total: reports.append((done, total))))
    assert reports[-1] == (path.stat().st_size, path.stat().st_size)


BAD_CORPORA = [
    pytest.param(
        "corpus.jsonl",
        b'{"text": "ok"}\n{"text": "caf\xe9"}\n',
        "corpus.jsonl, line 2: invalid UTF-8 (byte 0xe9 at column 14); save the file as UTF-8",
        id="invalid-utf8-jsonl",
    ),
    pytest.param(
        "notes.txt",
        b"fine\nw\xffrld\n",
        "notes.txt, line 2: invalid UTF-8 (byte 0xff); save the file as UTF-8",
        id="invalid-utf8-txt",
    ),
    pytest.param(
        "corpus.jsonl",
        b'{"text": "a"}\n{"text": "b"}\n{"text": "c"\n',
        "corpus.jsonl, line 3: not valid JSON (Expecting ',' delimiter at column 13); each line must be one JSON object",
        id="broken-json-line-3",
    ),
    pytest.param(
        "corpus.jsonl",
        b'{"text": "a"}\n{"text": "b"}\n["c"]\n',
        'corpus.jsonl, line 3: expected a JSON object with a "text" or "article" field, found a list',
        id="list-not-object",
    ),
    pytest.param(
        "corpus.jsonl",
        b'{"text": "a"}\n{"title": "no text"}\n',
        'corpus.jsonl, line 2: missing the "text" or "article" field',
        id="missing-field",
    ),
    pytest.param(
        "corpus.jsonl", b'{"text": "   "}\n', 'corpus.jsonl, line 1: the "text" field is empty', id="empty-field"
    ),
    pytest.param(
        "corpus.jsonl",
        b'{"text": 42}\n',
        'corpus.jsonl, line 1: the "text" field must be a string, found a number',
        id="number-field",
    ),
    pytest.param("corpus.jsonl", b"", "corpus.jsonl: the file is empty: no documents found", id="empty-file"),
    pytest.param(
        "corpus.jsonl", b"\n  \n", "corpus.jsonl: the file is empty: no documents found", id="blank-lines-only"
    ),
    pytest.param(
        "corpus.csv",
        b"text\nhello\n",
        'corpus.csv: unsupported file type ".csv"; upload one of: .jsonl, .txt, .zip, .parquet',
        id="unsupported-extension",
    ),
    pytest.param(
        "docs.zip",
        zip_bytes([("a.txt", "fine"), ("../evil.txt", "escape")]),
        'docs.zip: entry "../evil.txt" escapes the archive with ".."; archive entries must stay inside it',
        id="zip-dotdot",
    ),
    pytest.param(
        "docs.zip",
        zip_bytes([("a.txt", "fine"), ("/etc/evil.txt", "escape")]),
        'docs.zip: entry "/etc/evil.txt" has an absolute path; archive entries must be relative paths',
        id="zip-absolute",
    ),
    pytest.param(
        "docs.zip",
        zip_bytes([("a.txt", "fine")], symlink="link.txt"),
        'docs.zip: entry "link.txt" is a symbolic link; only regular .txt files are imported',
        id="zip-symlink",
    ),
    pytest.param(
        "docs.zip",
        zip_bytes([("a.txt", b"fine\n\xff")]),
        "docs.zip:a.txt, line 2: invalid UTF-8 (byte 0xff); save the file as UTF-8",
        id="zip-entry-invalid-utf8",
    ),
    pytest.param(
        "docs.zip",
        zip_bytes([("a.txt", "fine"), ("b.csv", "x")]),
        "docs.zip:b.csv: only .txt files can be imported from a zip archive",
        id="zip-non-txt-entry",
    ),
    pytest.param(
        "docs.zip", b"not a zip", "docs.zip: not a readable zip archive (File is not a zip file)", id="not-a-zip"
    ),
    pytest.param(
        "table.parquet",
        parquet_bytes({"body": ["x"]}),
        'table.parquet: missing the "text" or "article" column (columns found: body)',
        id="parquet-missing-column",
    ),
    pytest.param(
        "table.parquet",
        parquet_bytes({"text": ["x", None]}),
        'table.parquet, row 2: the "text" field must be a string, found null',
        id="parquet-null-text",
    ),
]


@pytest.mark.parametrize(("file_name", "content", "message"), BAD_CORPORA)
def test_bad_corpus_files_are_named_precisely(write_file, file_name, content, message):
    path = write_file(content, file_name)
    with pytest.raises(ImportProblem) as raised:
        list(read_corpus(path, file_name=file_name))
    assert str(raised.value) == message


def test_oversize_file_is_refused_before_reading(write_file, monkeypatch):
    path = write_file(b'{"text": "x"}\n' * 20, "corpus.jsonl")
    opened = []
    monkeypatch.setattr(
        "builtins.open", lambda *args, **kwargs: opened.append(args) or pytest.fail("the file was opened")
    )
    with pytest.raises(ImportProblem) as raised:
        list(read_corpus(path, file_name="corpus.jsonl", max_bytes=100))
    assert str(raised.value) == "corpus.jsonl: the file is 280 bytes, over the limit of 100 bytes"
    assert opened == []


def test_zip_that_unpacks_past_the_limit_is_refused(write_file):
    path = write_file(zip_bytes([("big.txt", "a" * 50_000)]), "docs.zip")
    assert path.stat().st_size < 10_000, "the compressed archive is under the limit; its contents are not"
    with pytest.raises(ImportProblem) as raised:
        list(read_corpus(path, file_name="docs.zip", max_bytes=10_000))
    assert str(raised.value) == "docs.zip: the archive unpacks to 50,000 bytes, over the limit of 10,000 bytes"


@pytest.mark.parametrize(
    ("file_name", "content", "message"),
    [
        ("seeds.txt", b"", "seeds.txt: the file is empty: no prompts found"),
        (
            "seeds.txt",
            b"### Instruction: Be brief.\n\n",
            "seeds.txt: no prompts after the instruction line; put one prompt on each following line",
        ),
        (
            "seeds.txt",
            b"### Instruction:\nq\n",
            'seeds.txt, line 1: the "### Instruction:" line has no instruction after it',
        ),
        (
            "seeds.txt",
            b"one\n\xc3\x28\n",
            "seeds.txt, line 2: invalid UTF-8 (byte 0xc3 at column 1); save the file as UTF-8",
        ),
        (
            "seeds.jsonl",
            b'{"prompt": "a"}\n{"question": "b"}\n',
            'seeds.jsonl, line 2: missing the "prompt" or "text" field',
        ),
        ("seeds.csv", b"a", 'seeds.csv: unsupported file type ".csv"; upload one of: .txt, .jsonl'),
    ],
)
def test_bad_seed_prompt_files_are_named_precisely(write_file, file_name, content, message):
    with pytest.raises(ImportProblem) as raised:
        list(read_seed_prompts(write_file(content, file_name), file_name=file_name))
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"context": "c", "question": "q"}\n', 'qa.jsonl, line 1: missing the "answer" field'),
        (b'{"context": "c", "question": "", "answer": "a"}\n', 'qa.jsonl, line 1: the "question" field is empty'),
        (
            b'{"context": ["c"], "question": "q", "answer": "a"}\n',
            'qa.jsonl, line 1: the "context" field must be a string, found a list',
        ),
        (b"", "qa.jsonl: the file is empty: no examples found"),
    ],
)
def test_bad_qa_files_are_named_precisely(write_file, content, message):
    with pytest.raises(ImportProblem) as raised:
        list(read_qa_examples(write_file(content, "qa.jsonl"), file_name="qa.jsonl"))
    assert str(raised.value) == message


def test_demonstration_prompt_without_dialogues_or_with_an_empty_one(write_file):
    with pytest.raises(
        ImportProblem, match=r'^demo.txt: no dialogues found; put a blank line and a "-----" line before each dialogue$'
    ):
        read_demonstration_prompt(write_file("Only a preamble.\n", "demo.txt"), file_name="demo.txt")
    text = "Preamble.\n\n-----\n\nHuman: Hi\n\n-----\n\n"
    with pytest.raises(ImportProblem) as raised:
        read_demonstration_prompt(write_file(text, "demo.txt"), file_name="demo.txt")
    assert str(raised.value) == 'demo.txt, line 7: empty dialogue after the "-----" separator on this line'


def test_import_problem_carries_its_parts():
    problem = ImportProblem("corpus.jsonl", 3, "text", 'missing the "text" field')
    assert (problem.file, problem.line, problem.field, problem.message) == (
        "corpus.jsonl",
        3,
        "text",
        'missing the "text" field',
    )
    assert str(problem) == 'corpus.jsonl, line 3: missing the "text" field'
