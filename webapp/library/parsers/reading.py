"""What every library upload reader shares: the `SourceFile` it reads, the `ImportProblem` it raises and the checks.

Extension and size checks, UTF-8 decoding (a byte order mark accepted), NUL characters refused with
their place (PostgreSQL cannot store one), JSON nesting depth, and `jsonl_objects`, which reads a
JSONL file one line at a time under a per-line byte limit so memory stays bounded whatever the size.
Pure Python, no Django.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

ProgressCallback = Callable[[int, int], None]
"""Called with (bytes read so far, total bytes) while a file is read."""

LINE_READ_CHUNK_BYTES = 1 << 20
"""How much of an overlong line is read at a time while its size is counted."""


@dataclass(frozen=True)
class SourceFile:
    """An uploaded file as an import reads it: its bytes on disk and the name the user gave it."""

    path: Path
    original_name: str


class ImportProblem(Exception):
    """The first thing wrong with an uploaded file: which file, where in it, which field, what."""

    def __init__(self, file: str, line: int | None, field: str | None, message: str, *, unit: str = "line") -> None:
        self.file = file
        self.line = line
        self.field = field
        self.message = message
        self.unit = unit
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.file}, {self.unit} {self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


def check_extension(file_name: str, allowed: Iterable[str]) -> str:
    """The lower-case extension of `file_name`, or an ImportProblem listing the supported ones."""
    allowed = tuple(allowed)
    extension = PurePosixPath(file_name).suffix.lower()
    if extension not in allowed:
        found = f'"{extension}"' if extension else "a file without an extension"
        supported = ", ".join(allowed)
        raise ImportProblem(file_name, None, None, f"unsupported file type {found}; upload one of: {supported}")
    return extension


def check_size(path: Path, file_name: str, max_bytes: int | None) -> int:
    """The size of the file at `path`, refused before any of it is read when it is over `max_bytes`."""
    size = os.path.getsize(path)
    if max_bytes is not None and size > max_bytes:
        raise ImportProblem(file_name, None, None, f"the file is {size:,} bytes, over the limit of {max_bytes:,} bytes")
    return size


MAX_JSON_NESTING = 32
"""Deepest nesting of lists and objects accepted in a JSON value typed into a form."""


def json_nesting_depth(value: Any) -> int:
    """How deeply lists and objects nest in a parsed JSON value, found without recursion."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        pending.extend((child, depth + 1) for child in children)
    return deepest


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "a string"


def first_nul_field(value: Any) -> tuple[bool, str | None]:
    """(found, top-level field) for the first NUL character in any string or key of a JSON value.

    Walked with a stack, not recursion, so a deeply nested value cannot raise RecursionError.
    """
    pending: list[tuple[Any, str | None]] = [(value, None)]
    while pending:
        item, field_name = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True, field_name
        elif isinstance(item, dict):
            for key, child in reversed(list(item.items())):
                name = field_name if field_name is not None else str(key)
                if "\x00" in str(key):
                    return True, name
                pending.append((child, name))
        elif isinstance(item, list):
            pending.extend((child, field_name) for child in reversed(item))
    return False, None


def nul_problem(
    file_name: str, line_number: int | None, field_name: str | None, *, unit: str = "line"
) -> ImportProblem:
    place = f'the "{field_name}" field' if field_name else "the text"
    return ImportProblem(
        file_name,
        line_number,
        field_name,
        f"{place} contains a NUL character (\\u0000), which the database cannot store; remove it",
        unit=unit,
    )


def check_no_nul_characters(text: str, file_name: str, *, first_line: int = 1) -> None:
    """Refuse a text holding a NUL character, naming the line it is on (PostgreSQL cannot store one)."""
    at = text.find("\x00")
    if at != -1:
        raise nul_problem(file_name, first_line + text.count("\n", 0, at), None)


def document_too_large(label: str, size: int, limit: int, *, line_number: int | None = None) -> ImportProblem:
    what = "the line" if line_number is not None else "the document"
    return ImportProblem(
        label,
        line_number,
        None,
        f"{what} is {size:,} bytes, over the per-document limit of {limit:,} bytes (LIBRARY_MAX_DOCUMENT_BYTES)",
    )


def decode_line(raw: bytes, file_name: str, line_number: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ImportProblem(
            file_name,
            line_number,
            None,
            f"invalid UTF-8 (byte 0x{raw[error.start]:02x} at column {error.start + 1}); save the file as UTF-8",
        ) from None


def decode_whole(raw: bytes, file_name: str) -> str:
    """Decode a whole text file; a bad byte is reported with the line it is on."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line_number = raw.count(b"\n", 0, error.start) + 1
        raise ImportProblem(
            file_name, line_number, None, f"invalid UTF-8 (byte 0x{raw[error.start]:02x}); save the file as UTF-8"
        ) from None


def numbered_lines(
    handle: BinaryIO,
    total: int,
    progress: ProgressCallback | None,
    *,
    file_name: str = "",
    max_line_bytes: int | None = None,
) -> Iterator[tuple[int, bytes]]:
    """(line number, raw line) pairs, reporting bytes read at most every 1 MiB.

    A line longer than `max_line_bytes` is refused with its size, which is counted by reading on
    in chunks: the line itself is never held in memory whole.
    """
    read = 0
    reported = 0
    line_number = 0
    while True:
        raw = handle.readline() if max_line_bytes is None else handle.readline(max_line_bytes + 1)
        if not raw:
            break
        line_number += 1
        read += len(raw)
        if max_line_bytes is not None and len(raw) > max_line_bytes and not raw.endswith(b"\n"):
            size = len(raw)
            while not raw.endswith(b"\n"):
                raw = handle.readline(LINE_READ_CHUNK_BYTES)
                if not raw:
                    break
                size += len(raw)
            raise document_too_large(file_name, size, max_line_bytes, line_number=line_number)
        if progress is not None and read - reported >= 1 << 20:
            progress(read, total)
            reported = read
        yield line_number, raw
    if progress is not None:
        progress(read, total)


def jsonl_objects(
    path: Path,
    file_name: str,
    expected: str,
    max_bytes: int | None,
    progress: ProgressCallback | None,
    *,
    max_line_bytes: int | None = None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSONL file; `expected` describes a record.

    A UTF-8 byte order mark before the first line is accepted; a NUL character in any string is
    refused (JSON can only carry one as the escape \\u0000, so lines without it skip the search).
    """
    total = check_size(path, file_name, max_bytes)
    with open(path, "rb") as handle:
        for line_number, raw in numbered_lines(
            handle, total, progress, file_name=file_name, max_line_bytes=max_line_bytes
        ):
            text = decode_line(raw, file_name, line_number)
            if line_number == 1:
                text = text.removeprefix("\ufeff")
            if not text.strip():
                continue
            try:
                value = json.loads(text.rstrip("\r\n"))
            except json.JSONDecodeError as error:
                raise ImportProblem(
                    file_name,
                    line_number,
                    None,
                    f"not valid JSON ({error.msg} at column {error.colno}); each line must be one JSON object",
                ) from None
            except RecursionError:
                raise ImportProblem(
                    file_name, line_number, None, "the JSON is nested too deeply to read; flatten the record"
                ) from None
            if not isinstance(value, dict):
                raise ImportProblem(
                    file_name, line_number, None, f"expected a JSON object with {expected}, found {type_name(value)}"
                )
            if "\\u0000" in text:
                found, field_name = first_nul_field(value)
                if found:
                    raise nul_problem(file_name, line_number, field_name)
            yield line_number, value


def required_string(
    record: dict[str, Any], names: tuple[str, ...], file_name: str, line_number: int, *, unit: str = "line"
) -> tuple[str, str]:
    """(field name, value) of the first of `names` present in `record`; it must be a non-empty string."""
    for name in names:
        if name in record:
            value = record[name]
            if not isinstance(value, str):
                raise ImportProblem(
                    file_name,
                    line_number,
                    name,
                    f'the "{name}" field must be a string, found {type_name(value)}',
                    unit=unit,
                )
            if not value.strip():
                raise ImportProblem(file_name, line_number, name, f'the "{name}" field is empty', unit=unit)
            return name, value
    wanted = " or ".join(f'"{name}"' for name in names)
    raise ImportProblem(file_name, line_number, names[0], f"missing the {wanted} field", unit=unit)


def optional_string(record: dict[str, Any], name: str, file_name: str, line_number: int, *, unit: str = "line") -> str:
    value = record.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ImportProblem(
            file_name, line_number, name, f'the "{name}" field must be a string, found {type_name(value)}', unit=unit
        )
    return value


def nothing_found(file_name: str, what: str) -> ImportProblem:
    return ImportProblem(file_name, None, None, f"the file is empty: no {what} found")
