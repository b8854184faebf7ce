"""The file half of fencing: inside `fenced_writes`, a refused check keeps a finished file from being renamed into place."""

from __future__ import annotations

import pytest

from pipelines.common.store import RunStore, atomic_writer, fenced_writes


class Fenced(Exception):
    pass


def test_a_refused_fence_check_leaves_neither_the_file_nor_its_temp_file(tmp_path):
    store = RunStore(tmp_path / "run")
    allowed = True
    checks: list[str] = []

    def check() -> None:
        checks.append("checked")
        if not allowed:
            raise Fenced("attempt 1 is fenced")

    with fenced_writes(check):
        store.write_jsonl([{"a": 1}], "batches", "batch-000000.jsonl")
        allowed = False
        with pytest.raises(Fenced):
            store.write_jsonl([{"a": 2}], "batches", "batch-000001.jsonl")
        with pytest.raises(Fenced), atomic_writer(tmp_path / "run" / "generations.parquet", "wb") as handle:
            handle.write(b"rows")

    assert sorted(path.name for path in (tmp_path / "run").rglob("*") if path.is_file()) == ["batch-000000.jsonl"]
    assert len(checks) == 3
    store.write_json({"after": True}, "outside.json")  # outside the block nothing is checked
    assert len(checks) == 3 and store.exists("outside.json")
