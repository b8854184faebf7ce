"""A run's dataset as JSONL and its parquet twin, written together and streamed batch by batch.

Every dataset a run hands to the site is a JSONL file (readable, appendable, what people download)
with a parquet twin beside it (typed columns for `datasets` and training). Both are written through
`atomic_writer`, so after a failure (a full disk, a cancelled attempt) neither half-written file
stays and a resume can trust that an existing table is complete. Rows are streamed one batch at a
time, so a large run never holds its whole output in memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.common.progress import Progress
from pipelines.common.result import ArtifactOutput
from pipelines.common.store import RunStore, atomic_writer


@dataclass(frozen=True)
class WrittenTable:
    """The two files of one dataset and its row count."""

    jsonl_path: Path
    parquet_path: Path
    row_count: int

    def artifact(self, name: str, kind: str) -> ArtifactOutput:
        """This table as a run's output artifact `name` of `kind` (both files)."""
        return ArtifactOutput(name=name, kind=kind, jsonl_path=self.jsonl_path, parquet_path=self.parquet_path)


def parquet_twin(jsonl_path: Path) -> Path:
    """Where the parquet twin of a JSONL file goes: beside it, same stem."""
    return jsonl_path.with_suffix(".parquet")


def write_table_in_batches(
    jsonl_path: Path, row_batches: Iterable[Sequence[dict[str, Any]]], *, empty_columns: Iterable[str] = ()
) -> WrittenTable:
    """Write `jsonl_path` and its parquet twin from batches of rows, in order.

    The parquet schema is the first non-empty batch's; later batches are cast to it. A table with
    no rows still gets a valid parquet file, with `empty_columns` as string columns, so a reader
    sees the columns it expects. Raises pyarrow's errors when rows do not fit one schema.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet_path = parquet_twin(jsonl_path)
    writer: pq.ParquetWriter | None = None
    row_count = 0
    with atomic_writer(jsonl_path) as jsonl, atomic_writer(parquet_path, "wb") as parquet_file:
        try:
            for rows in row_batches:
                if not rows:
                    continue
                for row in rows:
                    jsonl.write(json.dumps(row, ensure_ascii=False) + "\n")
                row_count += len(rows)
                table = pa.Table.from_pylist(list(rows))
                if writer is None:
                    writer = pq.ParquetWriter(parquet_file, table.schema)
                writer.write_table(table.cast(writer.schema))
            if writer is None:
                pq.write_table(pa.table({name: pa.array([], pa.string()) for name in empty_columns}), parquet_file)
        finally:
            if writer is not None:
                writer.close()
    return WrittenTable(jsonl_path=jsonl_path, parquet_path=parquet_path, row_count=row_count)


def write_table(jsonl_path: Path, rows: Sequence[dict[str, Any]], *, empty_columns: Iterable[str] = ()) -> WrittenTable:
    """Write a table held in memory: `write_table_in_batches` with one batch."""
    return write_table_in_batches(jsonl_path, [rows], empty_columns=empty_columns)


def export_batch_files(store: RunStore, batch_names: Sequence[str], stem: str, progress: Progress) -> WrittenTable:
    """Concatenate a run's finished batch files into `<stem>.jsonl` and `<stem>.parquet`, one batch at a time.

    This is the run's "export" stage (one step on `progress`), the last before its result.
    """
    progress.stage("export", total=1)
    table = write_table_in_batches(store.path(f"{stem}.jsonl"), (list(store.read_jsonl(name)) for name in batch_names))
    progress.advance(1)
    return table
