"""JSONL and its parquet twin: the same rows in both, streamed by batch, nothing half-written on failure."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from pipelines.common.progress import RecordingProgress
from pipelines.common.store import RunStore
from pipelines.common.tables import export_batch_files, parquet_twin, write_table, write_table_in_batches


def test_batches_become_one_jsonl_and_one_parquet_in_order(tmp_path) -> None:
    table = write_table_in_batches(tmp_path / "rows.jsonl", [[{"a": 1}, {"a": 2}], [], [{"a": 3}]])
    assert table.row_count == 3
    assert table.parquet_path == tmp_path / "rows.parquet" == parquet_twin(table.jsonl_path)
    assert [json.loads(line) for line in table.jsonl_path.read_text().splitlines()] == [{"a": 1}, {"a": 2}, {"a": 3}]
    assert pq.read_table(table.parquet_path).to_pylist() == [{"a": 1}, {"a": 2}, {"a": 3}]


def test_an_empty_table_keeps_its_column_names_in_parquet(tmp_path) -> None:
    table = write_table(tmp_path / "empty.jsonl", [], empty_columns=["prompt", "chosen"])
    assert table.row_count == 0 and table.jsonl_path.read_text() == ""
    assert pq.read_table(table.parquet_path).column_names == ["prompt", "chosen"]


def test_finished_batch_files_are_exported_under_a_stem(tmp_path) -> None:
    store = RunStore(tmp_path)
    store.write_jsonl([{"x": "é"}], "batches/batch-000000.jsonl")
    store.write_jsonl([{"x": "b"}], "batches/batch-000001.jsonl")
    table = export_batch_files(
        store, ["batches/batch-000000.jsonl", "batches/batch-000001.jsonl"], "out", RecordingProgress()
    )
    assert table.jsonl_path == store.path("out.jsonl")
    assert table.jsonl_path.read_text(encoding="utf-8") == '{"x": "é"}\n{"x": "b"}\n'
    assert pq.read_table(table.parquet_path).num_rows == 2


def test_rows_that_fit_no_schema_leave_neither_file(tmp_path) -> None:
    with pytest.raises((ValueError, TypeError)):
        write_table_in_batches(tmp_path / "mixed.jsonl", [[{"a": 1}], [{"a": "text"}]])
    assert sorted(path.name for path in tmp_path.iterdir()) == []
