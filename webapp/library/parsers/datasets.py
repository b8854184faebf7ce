"""Training datasets (SFT or preference rows) from .jsonl uploads, checked against the trainers' own layouts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .reading import (
    ImportProblem,
    ProgressCallback,
    check_extension,
    jsonl_objects,
    nothing_found,
    type_name,
)

DATASET_EXTENSIONS = (".jsonl",)
DATASET_PURPOSES = ("sft", "preference")


def read_training_rows(
    path: Path,
    *,
    file_name: str,
    purpose: str,
    max_bytes: int | None = None,
    max_document_bytes: int | None = None,
    progress: ProgressCallback | None = None,
) -> Iterator[dict[str, Any]]:
    """Rows of an SFT or preference dataset; the first row picks the layout and every row must follow it.

    The layouts are the training layer's own (`pipelines.training.layouts.DATASET_LAYOUTS`), so an
    imported dataset is one the trainers accept. Each layout field must be a non-empty string or a
    list of {"role", "content"} chat messages. Extra keys are kept (provenance, scores).
    """
    from pipelines.training.layouts import DATASET_LAYOUTS  # no torch

    check_extension(file_name, DATASET_EXTENSIONS)
    if purpose not in DATASET_PURPOSES:
        raise ValueError(f"unknown dataset purpose {purpose!r}")
    layouts = DATASET_LAYOUTS[purpose]
    described = " or ".join("(" + ", ".join(f'"{name}"' for name in layout) + ")" for layout in layouts)
    layout: tuple[str, ...] | None = None
    count = 0
    for line_number, record in jsonl_objects(
        Path(path), file_name, f"the fields {described}", max_bytes, progress, max_line_bytes=max_document_bytes
    ):
        if layout is None:
            layout = next((candidate for candidate in layouts if set(candidate) <= set(record)), None)
            if layout is None:
                closest = max(layouts, key=lambda candidate: len(set(candidate) & set(record)) / len(candidate))
                missing = next(name for name in closest if name not in record)
                raise ImportProblem(
                    file_name,
                    line_number,
                    missing,
                    f'missing the "{missing}" field; a {purpose} dataset needs {described}',
                )
        for name in layout:
            _check_text_or_messages(record, name, file_name, line_number)
        count += 1
        yield record
    if count == 0:
        raise nothing_found(file_name, "rows")


def _check_text_or_messages(record: dict[str, Any], name: str, file_name: str, line_number: int) -> None:
    if name not in record:
        raise ImportProblem(file_name, line_number, name, f'missing the "{name}" field (line 1 had it)')
    value = record[name]
    if isinstance(value, str):
        if not value.strip():
            raise ImportProblem(file_name, line_number, name, f'the "{name}" field is empty')
        return
    if not isinstance(value, list) or not value:
        raise ImportProblem(
            file_name,
            line_number,
            name,
            f'the "{name}" field must be text or a list of chat messages, found {type_name(value)}',
        )
    for index, message in enumerate(value, start=1):
        if not (
            isinstance(message, dict)
            and isinstance(message.get("role"), str)
            and isinstance(message.get("content"), str)
        ):
            raise ImportProblem(
                file_name,
                line_number,
                name,
                f'message {index} of "{name}" must be an object with string "role" and "content"',
            )
