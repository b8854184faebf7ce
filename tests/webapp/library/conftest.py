"""Builders for library upload files: bytes on disk, zip archives with hostile entries, parquet tables."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest


def zip_bytes(entries: list[tuple[str, str | bytes]], *, symlink: str | None = None) -> bytes:
    """A zip archive holding `entries` (name, content), plus optionally a symbolic link entry."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in entries:
            # ZipInfo keeps the name as given (writestr(name) would strip a leading "/").
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = 0o120777 << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def parquet_bytes(columns: dict[str, list]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    return buffer.getvalue()


@pytest.fixture
def write_file(tmp_path):
    """Write bytes (or text) to a fresh file under tmp_path and return its path."""

    def write(content: bytes | str, name: str = "upload.bin") -> Path:
        path = tmp_path / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    return write
