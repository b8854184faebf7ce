"""Streaming readers for library uploads: corpora, seed prompts, few-shot examples (pure Python, no Django).

Every reader yields plain records that carry their provenance (file name, line or row) and raises one
`ImportProblem` at the first bad record, naming the file, the place and what is wrong. Files are read
one line (or one parquet row batch) at a time, so memory stays bounded whatever the file size.
"""

from __future__ import annotations

import json
import os
import stat
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from zlib import error as zlib_error

ProgressCallback = Callable[[int, int], None]
"""Called with (bytes read so far, total bytes) while a file is read."""

CORPUS_EXTENSIONS = (".jsonl", ".txt", ".zip", ".parquet")
SEED_PROMPT_EXTENSIONS = (".txt", ".jsonl")
QA_EXTENSIONS = (".jsonl",)
DEMONSTRATION_EXTENSIONS = (".txt",)
INSTRUCTION_PREFIX = "### Instruction:"
DIALOGUE_SEPARATOR = "\n\n-----"
PARQUET_BATCH_ROWS = 1024
ARCHIVE_READ_CHUNK_BYTES = 1 << 20
# Below this many unpacked bytes an entry's compression ratio is not judged: tiny files of
# repeated characters compress extremely well without being a danger to anyone.
RATIO_CHECK_FLOOR_BYTES = 1 << 20


@dataclass(frozen=True)
class SizeLimits:
    """How much an upload may unpack to, per document and in all; None switches a limit off.

    `max_bytes` caps the file and everything an archive unpacks to (a running budget, counted
    from the bytes actually decompressed, not from the archive's own headers); `max_document_bytes`
    caps one document (a JSONL line, a .txt file, an archive entry, a parquet cell);
    `max_compression_ratio` refuses an archive entry that unpacks to more than that many times its
    compressed size (a zip bomb), once it has unpacked past RATIO_CHECK_FLOOR_BYTES.
    """

    max_bytes: int | None = None
    max_document_bytes: int | None = None
    max_compression_ratio: float | None = None


NO_LIMITS = SizeLimits()


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


@dataclass(frozen=True)
class DocumentRecord:
    text: str
    title: str
    source: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InstructionRecord:
    """The optional `### Instruction:` first line of a seed prompt file."""

    text: str
    source: str


@dataclass(frozen=True)
class PromptRecord:
    text: str
    source: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QAExampleRecord:
    context: str
    question: str
    answer: str
    source: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DemonstrationPrompt:
    """A demonstration prompt in ALMoST's format: a preamble, then dialogues separated by `-----` lines."""

    preamble: str
    dialogues: list[PromptRecord]


# ---------------------------------------------------------------- shared checks


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


def _type_name(value: Any) -> str:
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


def _nul_problem(
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
        raise _nul_problem(file_name, first_line + text.count("\n", 0, at), None)


def _document_too_large(label: str, size: int, limit: int, *, line_number: int | None = None) -> ImportProblem:
    what = "the line" if line_number is not None else "the document"
    return ImportProblem(
        label,
        line_number,
        None,
        f"{what} is {size:,} bytes, over the per-document limit of {limit:,} bytes (LIBRARY_MAX_DOCUMENT_BYTES)",
    )


def _decode(raw: bytes, file_name: str, line_number: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ImportProblem(
            file_name,
            line_number,
            None,
            f"invalid UTF-8 (byte 0x{raw[error.start]:02x} at column {error.start + 1}); save the file as UTF-8",
        ) from None


def _decode_whole(raw: bytes, file_name: str) -> str:
    """Decode a whole text file; a bad byte is reported with the line it is on."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line_number = raw.count(b"\n", 0, error.start) + 1
        raise ImportProblem(
            file_name, line_number, None, f"invalid UTF-8 (byte 0x{raw[error.start]:02x}); save the file as UTF-8"
        ) from None


def _progress_lines(
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
                raw = handle.readline(ARCHIVE_READ_CHUNK_BYTES)
                if not raw:
                    break
                size += len(raw)
            raise _document_too_large(file_name, size, max_line_bytes, line_number=line_number)
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
        for line_number, raw in _progress_lines(
            handle, total, progress, file_name=file_name, max_line_bytes=max_line_bytes
        ):
            text = _decode(raw, file_name, line_number)
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
                    file_name, line_number, None, f"expected a JSON object with {expected}, found {_type_name(value)}"
                )
            if "\\u0000" in text:
                found, field_name = first_nul_field(value)
                if found:
                    raise _nul_problem(file_name, line_number, field_name)
            yield line_number, value


def _required_string(
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
                    f'the "{name}" field must be a string, found {_type_name(value)}',
                    unit=unit,
                )
            if not value.strip():
                raise ImportProblem(file_name, line_number, name, f'the "{name}" field is empty', unit=unit)
            return name, value
    wanted = " or ".join(f'"{name}"' for name in names)
    raise ImportProblem(file_name, line_number, names[0], f"missing the {wanted} field", unit=unit)


def _optional_string(record: dict[str, Any], name: str, file_name: str, line_number: int, *, unit: str = "line") -> str:
    value = record.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ImportProblem(
            file_name, line_number, name, f'the "{name}" field must be a string, found {_type_name(value)}', unit=unit
        )
    return value


def _nothing_found(file_name: str, what: str) -> ImportProblem:
    return ImportProblem(file_name, None, None, f"the file is empty: no {what} found")


# ---------------------------------------------------------------- corpora

TEXT_FIELDS = ("text", "article")


def read_corpus(
    path: Path,
    *,
    file_name: str,
    max_bytes: int | None = None,
    max_document_bytes: int | None = None,
    max_compression_ratio: float | None = None,
    progress: ProgressCallback | None = None,
) -> Iterator[DocumentRecord]:
    """Documents from a .jsonl, .txt, .zip (of .txt files) or .parquet file, by the extension of `file_name`.

    The limits are those of `SizeLimits`: the file and all it unpacks to stay under `max_bytes`,
    each document under `max_document_bytes`, each archive entry under the compression ratio.
    """
    extension = check_extension(file_name, CORPUS_EXTENSIONS)
    check_size(path, file_name, max_bytes)
    limits = SizeLimits(
        max_bytes=max_bytes, max_document_bytes=max_document_bytes, max_compression_ratio=max_compression_ratio
    )
    readers = {".jsonl": _corpus_jsonl, ".txt": _corpus_txt, ".zip": _corpus_zip, ".parquet": _corpus_parquet}
    count = 0
    for record in readers[extension](Path(path), file_name, limits, progress):
        count += 1
        yield record
    if count == 0:
        raise _nothing_found(file_name, "documents")


def _corpus_jsonl(
    path: Path, file_name: str, limits: SizeLimits, progress: ProgressCallback | None
) -> Iterator[DocumentRecord]:
    expected = 'a "text" or "article" field'
    for line_number, record in jsonl_objects(
        path, file_name, expected, limits.max_bytes, progress, max_line_bytes=limits.max_document_bytes
    ):
        text_field, text = _required_string(record, TEXT_FIELDS, file_name, line_number)
        title = _optional_string(record, "title", file_name, line_number)
        meta = {key: value for key, value in record.items() if key not in (text_field, "title")}
        yield DocumentRecord(text=text, title=title, source=f"{file_name}, line {line_number}", meta=meta)


def _corpus_txt(
    path: Path, file_name: str, limits: SizeLimits, progress: ProgressCallback | None
) -> Iterator[DocumentRecord]:
    size = os.path.getsize(path)
    if limits.max_document_bytes is not None and size > limits.max_document_bytes:
        raise _document_too_large(file_name, size, limits.max_document_bytes)
    raw = path.read_bytes()  # one file is one document, and the document is under the per-document cap
    if progress is not None:
        progress(len(raw), len(raw))
    text = _decode_whole(raw, file_name)
    check_no_nul_characters(text, file_name)
    if text.strip():
        yield DocumentRecord(text=text, title=file_name, source=file_name)


def _zip_entry_problem(info: zipfile.ZipInfo) -> str | None:
    """Why an archive entry may not be imported, or None."""
    name = info.filename
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return f'entry "{name}" has an absolute path; archive entries must be relative paths'
    if ".." in name.replace("\\", "/").split("/"):
        return f'entry "{name}" escapes the archive with ".."; archive entries must stay inside it'
    if stat.S_ISLNK(info.external_attr >> 16):
        return f'entry "{name}" is a symbolic link; only regular .txt files are imported'
    return None


def _too_compressed(entry_label: str, unpacked: int, packed: int, limit: float) -> ImportProblem:
    return ImportProblem(
        entry_label,
        None,
        None,
        f"unpacks to {unpacked:,} bytes from {packed:,} compressed bytes, more than {limit:g} times its compressed "
        "size (LIBRARY_MAX_COMPRESSION_RATIO); an archive that expands like this is refused as a possible zip bomb",
    )


def _over_unpacked_budget(file_name: str, unpacked: int, limit: int) -> ImportProblem:
    return ImportProblem(
        file_name, None, None, f"the archive unpacks to {unpacked:,} bytes, over the limit of {limit:,} bytes"
    )


def _archive_entries_checked(archive: zipfile.ZipFile, file_name: str, limits: SizeLimits) -> list[zipfile.ZipInfo]:
    """The entries to import, after refusing the archive as a whole for any entry that may not be read.

    What the headers declare is checked first, so the usual bomb is refused before a byte is
    unpacked; `_read_archive_entry` counts the real bytes too, as headers can lie.
    """
    entries = archive.infolist()
    declared_total = 0
    for info in entries:
        problem = _zip_entry_problem(info)
        if problem:
            raise ImportProblem(file_name, None, None, problem)
        declared_total += info.file_size
    if limits.max_bytes is not None and declared_total > limits.max_bytes:
        raise _over_unpacked_budget(file_name, declared_total, limits.max_bytes)
    kept = []
    for info in entries:
        parts = PurePosixPath(info.filename).parts
        if info.is_dir() or parts[0] == "__MACOSX" or parts[-1].startswith("."):
            continue
        entry_label = f"{file_name}:{info.filename}"
        if PurePosixPath(info.filename).suffix.lower() != ".txt":
            raise ImportProblem(entry_label, None, None, "only .txt files can be imported from a zip archive")
        ratio = limits.max_compression_ratio
        if (
            ratio is not None
            and info.file_size > RATIO_CHECK_FLOOR_BYTES
            and info.file_size > ratio * max(info.compress_size, 1)
        ):
            raise _too_compressed(entry_label, info.file_size, info.compress_size, ratio)
        if limits.max_document_bytes is not None and info.file_size > limits.max_document_bytes:
            raise _document_too_large(entry_label, info.file_size, limits.max_document_bytes)
        kept.append(info)
    return kept


class _UnpackedBudget:
    """Bytes an archive may still unpack to, spent as entries are actually decompressed."""

    def __init__(self, file_name: str, limit: int | None) -> None:
        self.file_name = file_name
        self.limit = limit
        self.spent = 0

    def spend(self, count: int) -> None:
        self.spent += count
        if self.limit is not None and self.spent > self.limit:
            raise _over_unpacked_budget(self.file_name, self.spent, self.limit)


def _read_archive_entry(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, entry_label: str, limits: SizeLimits, budget: _UnpackedBudget
) -> bytearray:
    """One entry's bytes, decompressed a chunk at a time and refused as soon as a limit is passed."""
    unpacked = bytearray()
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(ARCHIVE_READ_CHUNK_BYTES):
                unpacked += chunk
                budget.spend(len(chunk))
                if limits.max_document_bytes is not None and len(unpacked) > limits.max_document_bytes:
                    raise ImportProblem(
                        entry_label,
                        None,
                        None,
                        f"the document is over the per-document limit of {limits.max_document_bytes:,} bytes "
                        f"(LIBRARY_MAX_DOCUMENT_BYTES) although the archive says {info.file_size:,} bytes",
                    )
                ratio = limits.max_compression_ratio
                if (
                    ratio is not None
                    and len(unpacked) > RATIO_CHECK_FLOOR_BYTES
                    and len(unpacked) > ratio * max(info.compress_size, 1)
                ):
                    raise _too_compressed(entry_label, len(unpacked), info.compress_size, ratio)
    except (zipfile.BadZipFile, OSError, EOFError, zlib_error) as error:
        raise ImportProblem(entry_label, None, None, f"cannot be read from the archive ({error})") from None
    return unpacked


def _corpus_zip(
    path: Path, file_name: str, limits: SizeLimits, progress: ProgressCallback | None
) -> Iterator[DocumentRecord]:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise ImportProblem(file_name, None, None, f"not a readable zip archive ({error})") from None
    with archive:
        entries = _archive_entries_checked(archive, file_name, limits)
        budget = _UnpackedBudget(file_name, limits.max_bytes)
        archive_size = os.path.getsize(path)
        done = 0
        for info in entries:
            entry_label = f"{file_name}:{info.filename}"
            raw = _read_archive_entry(archive, info, entry_label, limits, budget)
            done += info.compress_size
            if progress is not None:
                progress(done, archive_size)
            text = _decode_whole(raw, entry_label)
            del raw
            check_no_nul_characters(text, entry_label)
            if not text.strip():
                raise ImportProblem(entry_label, None, None, "the file is empty: no text found")
            name = info.filename
            yield DocumentRecord(text=text, title=PurePosixPath(name).name, source=entry_label, meta={"path": name})


def _corpus_parquet(
    path: Path, file_name: str, limits: SizeLimits, progress: ProgressCallback | None
) -> Iterator[DocumentRecord]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as error:  # pyarrow raises several types for a file that is not parquet
        raise ImportProblem(file_name, None, None, f"not a readable parquet file ({error})") from None
    columns = parquet.schema_arrow.names
    text_column = next((name for name in TEXT_FIELDS if name in columns), None)
    if text_column is None:
        found = ", ".join(columns) or "none"
        raise ImportProblem(file_name, None, "text", f'missing the "text" or "article" column (columns found: {found})')
    total_bytes = os.path.getsize(path)
    # Parquet pages are compressed too: what the footer says they unpack to is held to the same budget.
    unpacked = sum(
        parquet.metadata.row_group(index).total_byte_size for index in range(parquet.metadata.num_row_groups)
    )
    if limits.max_bytes is not None and unpacked > limits.max_bytes:
        raise ImportProblem(
            file_name,
            None,
            None,
            f"the table unpacks to {unpacked:,} bytes, over the limit of {limits.max_bytes:,} bytes",
        )
    if (
        limits.max_compression_ratio is not None
        and unpacked > RATIO_CHECK_FLOOR_BYTES
        and unpacked > limits.max_compression_ratio * total_bytes
    ):
        raise _too_compressed(file_name, unpacked, total_bytes, limits.max_compression_ratio)
    total_rows = parquet.metadata.num_rows or 1
    row_number = 0
    for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
        for row in batch.to_pylist():
            row_number += 1
            _, text = _required_string(row, (text_column,), file_name, row_number, unit="row")
            size = len(text.encode("utf-8"))
            if limits.max_document_bytes is not None and size > limits.max_document_bytes:
                raise ImportProblem(
                    file_name,
                    row_number,
                    text_column,
                    f"the document is {size:,} bytes, over the per-document limit of {limits.max_document_bytes:,} "
                    "bytes (LIBRARY_MAX_DOCUMENT_BYTES)",
                    unit="row",
                )
            title = _optional_string(row, "title", file_name, row_number, unit="row")
            meta = {key: value for key, value in row.items() if key not in (text_column, "title") and value is not None}
            meta = _json_safe(meta)
            found, field_name = first_nul_field({text_column: text, "title": title, **meta})
            if found:
                raise _nul_problem(file_name, row_number, field_name, unit="row")
            yield DocumentRecord(text=text, title=title, source=f"{file_name}, row {row_number}", meta=meta)
        if progress is not None:
            progress(total_bytes * row_number // total_rows, total_bytes)


def _json_safe(value: Any) -> Any:
    """Parquet values (dates, decimals, bytes) turned into what a JSON field can hold."""
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


# ---------------------------------------------------------------- seed prompts


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
        raise _nothing_found(file_name, "prompts")


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
        for line_number, raw in _progress_lines(
            handle, total, progress, file_name=file_name, max_line_bytes=max_document_bytes
        ):
            text = _decode(raw, file_name, line_number)
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
        prompt_field, text = _required_string(record, ("prompt", "text"), file_name, line_number)
        meta = {key: value for key, value in record.items() if key != prompt_field}
        yield PromptRecord(text=text, source=f"{file_name}, line {line_number}", meta=meta)


# ---------------------------------------------------------------- few-shot examples

QA_FIELDS = ("context", "question", "answer")


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
        values = {name: _required_string(record, (name,), file_name, line_number)[1] for name in QA_FIELDS}
        meta = {key: value for key, value in record.items() if key not in QA_FIELDS}
        count += 1
        yield QAExampleRecord(**values, source=f"{file_name}, line {line_number}", meta=meta)
    if count == 0:
        raise _nothing_found(file_name, "examples")


def read_demonstration_prompt(
    path: Path, *, file_name: str, max_bytes: int | None = None, max_document_bytes: int | None = None
) -> DemonstrationPrompt:
    """A demonstration prompt file: preamble, then dialogues each introduced by a `-----` line (as ALMoST's).

    The file is one prompt, read whole, so it is held to the per-document cap before it is read.
    """
    check_extension(file_name, DEMONSTRATION_EXTENSIONS)
    size = check_size(path, file_name, max_bytes)
    if max_document_bytes is not None and size > max_document_bytes:
        raise _document_too_large(file_name, size, max_document_bytes)
    text = _decode_whole(Path(path).read_bytes(), file_name).replace("\r\n", "\n")
    check_no_nul_characters(text, file_name)
    if not text.strip():
        raise _nothing_found(file_name, "text")
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
    return DemonstrationPrompt(preamble=preamble, dialogues=dialogues)


# ---------------------------------------------------------------- training datasets

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
        raise _nothing_found(file_name, "rows")


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
            f'the "{name}" field must be text or a list of chat messages, found {_type_name(value)}',
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
