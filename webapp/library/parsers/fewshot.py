"""Few-shot sets: QA examples from .jsonl, and ALMoST demonstration prompts (a preamble, then dialogues) from .txt."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .prompts import PromptRecord
from .reading import (
    ImportProblem,
    ProgressCallback,
    check_extension,
    check_no_nul_characters,
    check_size,
    decode_whole,
    document_too_large,
    jsonl_objects,
    nothing_found,
    required_string,
)

QA_EXTENSIONS = (".jsonl",)
QA_FIELDS = ("context", "question", "answer")
DEMONSTRATION_EXTENSIONS = (".txt",)
DIALOGUE_SEPARATOR = "\n\n-----"


@dataclass(frozen=True)
class QAExampleRecord:
    """One few-shot example: a context, a question about it and its answer."""

    context: str
    question: str
    answer: str
    source: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DemonstrationRecord:
    """A demonstration prompt file as read: its preamble, then its dialogues, each with the line it starts on.

    Stored as a few-shot set; the ALMoST worker turns that set into the pipeline's own
    `pipelines.almost.prompts.DemonstrationPrompt`, which holds plain dialogue strings.
    """

    preamble: str
    dialogues: list[PromptRecord]


def read_qa_examples(
    path: Path,
    *,
    file_name: str,
    max_bytes: int | None = None,
    max_document_bytes: int | None = None,
    progress: ProgressCallback | None = None,
) -> Iterator[QAExampleRecord]:
    """QA triples from JSONL: "context", "question" and "answer", all non-empty strings; other keys go to meta."""
    check_extension(file_name, QA_EXTENSIONS)
    expected = '"context", "question" and "answer" fields'
    count = 0
    for line_number, record in jsonl_objects(
        Path(path), file_name, expected, max_bytes, progress, max_line_bytes=max_document_bytes
    ):
        values = {name: required_string(record, (name,), file_name, line_number)[1] for name in QA_FIELDS}
        meta = {key: value for key, value in record.items() if key not in QA_FIELDS}
        count += 1
        yield QAExampleRecord(**values, source=f"{file_name}, line {line_number}", meta=meta)
    if count == 0:
        raise nothing_found(file_name, "examples")


def read_demonstration_prompt(
    path: Path, *, file_name: str, max_bytes: int | None = None, max_document_bytes: int | None = None
) -> DemonstrationRecord:
    """A demonstration prompt file: preamble, then dialogues each introduced by a `-----` line (as ALMoST's).

    The file is one prompt, read whole, so it is held to the per-document cap before it is read.
    """
    check_extension(file_name, DEMONSTRATION_EXTENSIONS)
    size = check_size(path, file_name, max_bytes)
    if max_document_bytes is not None and size > max_document_bytes:
        raise document_too_large(file_name, size, max_document_bytes)
    text = decode_whole(Path(path).read_bytes(), file_name).replace("\r\n", "\n")
    check_no_nul_characters(text, file_name)
    if not text.strip():
        raise nothing_found(file_name, "text")
    separator_at = text.find(DIALOGUE_SEPARATOR)
    if separator_at == -1:
        raise ImportProblem(
            file_name, None, None, 'no dialogues found; put a blank line and a "-----" line before each dialogue'
        )
    preamble = text[:separator_at].strip()
    dialogues = []
    while separator_at != -1:
        chunk_start = separator_at + len(DIALOGUE_SEPARATOR)
        separator_at = text.find(DIALOGUE_SEPARATOR, chunk_start)
        chunk = text[chunk_start : separator_at if separator_at != -1 else len(text)]
        # The separator line may be longer than five dashes; the dashes are not dialogue.
        body = chunk.lstrip("-")
        dialogue = body.strip()
        dialogue_at = chunk_start + (len(chunk) - len(body)) + (len(body) - len(body.lstrip()))
        line_number = text.count("\n", 0, dialogue_at) + 1
        if not dialogue:
            line_number = text.count("\n", 0, chunk_start) + 1
            raise ImportProblem(file_name, line_number, None, 'empty dialogue after the "-----" separator on this line')
        dialogues.append(PromptRecord(text=dialogue, source=f"{file_name}, line {line_number}"))
    return DemonstrationRecord(preamble=preamble, dialogues=dialogues)
