"""From documents to AugCon's root chunks, and from a QA few-shot set to split demonstrations.

Chunking follows the paper's `load_data.py`: split a document into paragraphs at line breaks, skip
short paragraphs, and pack each paragraph's sentences greedily into chunks of at most `max_length`
characters. The paper's articles hold one paragraph per line; hard-wrapped text (the Python reference,
most plain-text English) separates paragraphs by blank lines instead, so a text with blank lines is
split at those and its wrapped lines are joined. The paper splits sentences at Chinese end marks only; we split after . ? ! and their
Chinese forms, and cut a sentence longer than a chunk at word boundaries so no chunk exceeds it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from pipelines.augcon.config import AugConConfig
from pipelines.augcon.prompts import CSTDemonstration
from pipelines.errors import InvalidInputError

_SENTENCE_END = re.compile(r"(?<=[.?!。？！])\s+|(?<=[。？！])")
_WHITESPACE = re.compile(r"\s+")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


@dataclass(frozen=True)
class RootChunk:
    """A CST root: one chunk of one document, with its question quota."""

    chunk_id: str
    document_id: str
    chunk_index: int
    text: str
    gen_count: int
    """Questions to keep after ranking."""
    target: int
    """Questions to generate before ranking (gen_count x over_generation)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RootChunk:
        return cls(**data)


def normalise(text: str) -> str:
    """One line, single spaces: the CST prompt shows each context on one line."""
    return _WHITESPACE.sub(" ", text).strip()


def split_sentences(paragraph: str) -> list[str]:
    return [part.strip() for part in _SENTENCE_END.split(paragraph) if part and part.strip()]


def _cut_long(sentence: str, limit: int) -> list[str]:
    """A sentence longer than a chunk, cut at spaces (or hard, for text without spaces)."""
    pieces: list[str] = []
    rest = sentence
    while len(rest) > limit:
        cut = rest.rfind(" ", 0, limit + 1)
        if cut <= 0:
            cut = limit
        pieces.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    if rest:
        pieces.append(rest)
    return pieces


def paragraphs(text: str) -> list[str]:
    """Blank-line separated blocks when the text has any (hard-wrapped prose), else one per line."""
    text = text.replace("\r\n", "\n")
    return _BLANK_LINE.split(text) if _BLANK_LINE.search(text) else text.split("\n")


def chunk_text(text: str, *, max_length: int, min_paragraph_length: int) -> list[str]:
    """The root chunks of one document, in reading order."""
    chunks: list[str] = []
    for raw_paragraph in paragraphs(text):
        paragraph = normalise(raw_paragraph)
        if len(paragraph) <= min_paragraph_length:
            continue
        current = ""
        for sentence in split_sentences(paragraph):
            for piece in _cut_long(sentence, max_length):
                candidate = f"{current} {piece}" if current else piece
                if len(candidate) <= max_length:
                    current = candidate
                else:
                    chunks.append(current)
                    current = piece
        if current:
            chunks.append(current)
    return chunks


def document_chunks(document: dict[str, Any], config: AugConConfig) -> list[RootChunk]:
    """Root chunks of a snapshot document (`document_id`, `text`), capped by `max_chunks_per_document`."""
    texts = chunk_text(
        document["text"], max_length=config.chunk_characters, min_paragraph_length=config.paragraph_characters
    )
    if config.max_chunks_per_document:
        texts = texts[: config.max_chunks_per_document]
    return [
        RootChunk(
            chunk_id=f"{document['document_id']}-c{index:03d}",
            document_id=document["document_id"],
            chunk_index=index,
            text=text,
            gen_count=config.gen_count(text),
            target=config.question_target(text),
        )
        for index, text in enumerate(texts)
    ]


def check_documents(rows: Iterable[dict[str, Any]], where: str = "documents.jsonl") -> list[dict[str, Any]]:
    """Snapshot documents need a unique `document_id` and a `text`; the message names the line."""
    documents: list[dict[str, Any]] = []
    seen: set[str] = set()
    for line, row in enumerate(rows, start=1):
        document_id = str(row.get("document_id") or "")
        if not document_id or not isinstance(row.get("text"), str):
            raise InvalidInputError(f"{where}, line {line}: needs `document_id` and a text field `text`")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", document_id):
            raise InvalidInputError(f"{where}, line {line}: document_id {document_id!r} may use letters, digits, _ . - only")
        if document_id in seen:
            raise InvalidInputError(f"{where}, line {line}: duplicate document_id {document_id!r}")
        seen.add(document_id)
        documents.append(row)
    if not documents:
        raise InvalidInputError(f"{where}: no documents")
    return documents


def few_shot_row(context: str, question: str, answer: str, meta: Any) -> dict[str, str]:
    """A QA example as the pipeline reads it; it may carry its own worked split (`context_1`,
    `context_2`) in its meta, which then stands in for the sentence split (`split_demonstration`)."""
    row = {"context": context, "question": question, "answer": answer}
    if isinstance(meta, dict) and meta.get("context_1") and meta.get("context_2"):
        row.update(context_1=str(meta["context_1"]), context_2=str(meta["context_2"]))
    return row


def check_few_shot(rows: Iterable[dict[str, Any]], where: str = "fewshot.jsonl") -> list[dict[str, Any]]:
    """QA examples need non-empty `context`, `question` and `answer`."""
    examples: list[dict[str, Any]] = []
    for line, row in enumerate(rows, start=1):
        for name in ("context", "question", "answer"):
            value = row.get(name)
            if not isinstance(value, str) or not value.strip():
                raise InvalidInputError(f"{where}, line {line}: field `{name}` is missing or empty")
        examples.append(row)
    if not examples:
        raise InvalidInputError(f"{where}: the QA few-shot set has no examples")
    return examples


def split_demonstration(example: dict[str, Any]) -> CSTDemonstration | None:
    """A QA example as a worked split: its own `context_1`/`context_2` when it has them, else its
    context cut at the sentence boundary nearest the middle; None for a one-sentence context."""
    context = normalise(example["context"])
    question = normalise(example["question"])
    if example.get("context_1") and example.get("context_2"):
        return CSTDemonstration(context, question, normalise(example["context_1"]), normalise(example["context_2"]))
    sentences = split_sentences(context)
    if len(sentences) < 2:
        return None
    middle = len(context) / 2
    best = min(range(1, len(sentences)), key=lambda cut: abs(len(" ".join(sentences[:cut])) - middle))
    return CSTDemonstration(context, question, " ".join(sentences[:best]), " ".join(sentences[best:]))


def cst_demonstrations(examples: list[dict[str, Any]], count: int) -> list[CSTDemonstration]:
    """The first `count` QA examples that make a split, in the set's order."""
    demonstrations: list[CSTDemonstration] = []
    for example in examples:
        if len(demonstrations) >= count:
            break
        demonstration = split_demonstration(example)
        if demonstration is not None:
            demonstrations.append(demonstration)
    return demonstrations
