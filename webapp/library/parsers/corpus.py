"""Corpus documents from .jsonl, .txt, .zip (of .txt files) or .parquet uploads, held to size limits.

Archives and parquet tables are compressed, so what they unpack to is counted as it is unpacked and
refused past the budget or the compression ratio (a zip bomb) before it can fill memory.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from zlib import error as zlib_error

from .reading import (
    ImportProblem,
    ProgressCallback,
    check_extension,
    check_no_nul_characters,
    check_size,
    decode_whole,
    document_too_large,
    first_nul_field,
    jsonl_objects,
    nothing_found,
    nul_problem,
    optional_string,
    required_string,
)

CORPUS_EXTENSIONS = (".jsonl", ".txt", ".zip", ".parquet")
TEXT_FIELDS = ("text", "article")
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


@dataclass(frozen=True)
class DocumentRecord:
    """One document of a corpus, with where it came from (file and line, row or archive entry)."""

    text: str
    title: str
    source: str
    meta: dict[str, Any] = field(default_factory=dict)


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
        raise nothing_found(file_name, "documents")


def _corpus_jsonl(
    path: Path, file_name: str, limits: SizeLimits, progress: ProgressCallback | None
) -> Iterator[DocumentRecord]:
    expected = 'a "text" or "article" field'
    for line_number, record in jsonl_objects(
        path, file_name, expected, limits.max_bytes, progress, max_line_bytes=limits.max_document_bytes
    ):
        text_field, text = required_string(record, TEXT_FIELDS, file_name, line_number)
        title = optional_string(record, "title", file_name, line_number)
        meta = {key: value for key, value in record.items() if key not in (text_field, "title")}
        yield DocumentRecord(text=text, title=title, source=f"{file_name}, line {line_number}", meta=meta)


def _corpus_txt(
    path: Path, file_name: str, limits: SizeLimits, progress: ProgressCallback | None
) -> Iterator[DocumentRecord]:
    size = os.path.getsize(path)
    if limits.max_document_bytes is not None and size > limits.max_document_bytes:
        raise document_too_large(file_name, size, limits.max_document_bytes)
    raw = path.read_bytes()  # one file is one document, and the document is under the per-document cap
    if progress is not None:
        progress(len(raw), len(raw))
    text = decode_whole(raw, file_name)
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
            raise document_too_large(entry_label, info.file_size, limits.max_document_bytes)
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
            text = decode_whole(raw, entry_label)
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
            _, text = required_string(row, (text_column,), file_name, row_number, unit="row")
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
            title = optional_string(row, "title", file_name, row_number, unit="row")
            meta = {key: value for key, value in row.items() if key not in (text_column, "title") and value is not None}
            meta = _json_safe(meta)
            found, field_name = first_nul_field({text_column: text, "title": title, **meta})
            if found:
                raise nul_problem(file_name, row_number, field_name, unit="row")
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
