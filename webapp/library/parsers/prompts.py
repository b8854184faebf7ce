"""Seed prompts from .txt (an optional `### Instruction:` first line, then one prompt a line) or .jsonl uploads."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .reading import (
    ImportProblem,
    ProgressCallback,
    check_extension,
    check_no_nul_characters,
    check_size,
    decode_line,
    jsonl_objects,
    nothing_found,
    numbered_lines,
    required_string,
)

SEED_PROMPT_EXTENSIONS = (".txt", ".jsonl")
INSTRUCTION_PREFIX = "### Instruction:"


@dataclass(frozen=True)
class InstructionRecord:
    """The optional `### Instruction:` first line of a seed prompt file."""

    text: str
    source: str


@dataclass(frozen=True)
class PromptRecord:
    """One prompt, with where it came from; extra JSONL keys are kept in `meta`."""

    text: str
    source: str
    meta: dict[str, Any] = field(default_factory=dict)


def read_seed_prompts(
    path: Path,
    *,
    file_name: str,
    max_bytes: int | None = None,
    max_document_bytes: int | None = None,
    progress: ProgressCallback | None = None,
) -> Iterator[InstructionRecord | PromptRecord]:
    """Seed prompts from .txt (optional `### Instruction:` first line, then one prompt a line) or .jsonl."""
    extension = check_extension(file_name, SEED_PROMPT_EXTENSIONS)
    check_size(path, file_name, max_bytes)
    reader = _seed_prompts_txt if extension == ".txt" else _seed_prompts_jsonl
    count = 0
    instruction_seen = False
    for record in reader(Path(path), file_name, max_bytes, max_document_bytes, progress):
        count += isinstance(record, PromptRecord)
        instruction_seen = instruction_seen or isinstance(record, InstructionRecord)
        yield record
    if count == 0 and instruction_seen:
        raise ImportProblem(
            file_name, None, None, "no prompts after the instruction line; put one prompt on each following line"
        )
    if count == 0:
        raise nothing_found(file_name, "prompts")


def _seed_prompts_txt(
    path: Path,
    file_name: str,
    max_bytes: int | None,
    max_document_bytes: int | None,
    progress: ProgressCallback | None,
) -> Iterator[InstructionRecord | PromptRecord]:
    total = check_size(path, file_name, max_bytes)
    seen_text = False
    with open(path, "rb") as handle:
        for line_number, raw in numbered_lines(
            handle, total, progress, file_name=file_name, max_line_bytes=max_document_bytes
        ):
            text = decode_line(raw, file_name, line_number)
            if line_number == 1:
                text = text.removeprefix("\ufeff")
            check_no_nul_characters(text, file_name, first_line=line_number)
            text = text.strip()
            if not text:
                continue
            if not seen_text and text.startswith(INSTRUCTION_PREFIX):
                seen_text = True
                instruction = text.removeprefix(INSTRUCTION_PREFIX).strip()
                if not instruction:
                    raise ImportProblem(
                        file_name,
                        line_number,
                        "instruction",
                        f'the "{INSTRUCTION_PREFIX}" line has no instruction after it',
                    )
                yield InstructionRecord(text=instruction, source=f"{file_name}, line {line_number}")
                continue
            seen_text = True
            yield PromptRecord(text=text, source=f"{file_name}, line {line_number}")


def _seed_prompts_jsonl(
    path: Path,
    file_name: str,
    max_bytes: int | None,
    max_document_bytes: int | None,
    progress: ProgressCallback | None,
) -> Iterator[PromptRecord]:
    for line_number, record in jsonl_objects(
        path, file_name, 'a "prompt" or "text" field', max_bytes, progress, max_line_bytes=max_document_bytes
    ):
        prompt_field, text = required_string(record, ("prompt", "text"), file_name, line_number)
        meta = {key: value for key, value in record.items() if key != prompt_field}
        yield PromptRecord(text=text, source=f"{file_name}, line {line_number}", meta=meta)
