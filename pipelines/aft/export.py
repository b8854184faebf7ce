"""Concatenate finished batch files into a run's JSONL and parquet artifacts, batch by batch."""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from pipelines.common.store import RunStore, atomic_writer


def export_batches(store: RunStore, batch_names: Sequence[str], stem: str) -> tuple[Path, Path, int]:
    """Write `<stem>.jsonl` and `<stem>.parquet` from the batch files in order; returns the row count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    jsonl_path = store.path(f"{stem}.jsonl")
    parquet_path = store.path(f"{stem}.parquet")
    writer: pq.ParquetWriter | None = None
    row_count = 0
    # Both files through atomic_writer: on a failure (a full disk) neither half-written file stays.
    with atomic_writer(jsonl_path) as jsonl, atomic_writer(parquet_path, "wb") as parquet_file:
        try:
            for name in batch_names:
                rows = list(store.read_jsonl(name))
                if not rows:
                    continue
                for row in rows:
                    jsonl.write(json.dumps(row, ensure_ascii=False) + "\n")
                row_count += len(rows)
                table = pa.Table.from_pylist(rows)
                if writer is None:
                    writer = pq.ParquetWriter(parquet_file, table.schema)
                writer.write_table(table.cast(writer.schema))
            if writer is None:  # no rows at all: an empty table still makes a valid file
                pq.write_table(pa.table({}), parquet_file)
        finally:
            if writer is not None:
                writer.close()
    return jsonl_path, parquet_path, row_count
