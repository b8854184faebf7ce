"""The resume-by-batch loop: finished batch files are skipped, counted as done, and never rewritten."""

from __future__ import annotations

import pytest

from pipelines.common.batches import batch_file_name, run_in_batches, split_in_batches
from pipelines.common.progress import RecordingProgress
from pipelines.common.store import RunStore
from pipelines.errors import RunCancelled


def _produce(calls: list[int]):
    def produce(index: int, batch: list[int]) -> list[dict[str, int]]:
        calls.append(index)
        return [{"item": item, "batch": index} for item in batch]

    return produce


def test_batches_split_in_order_with_a_shorter_last_one() -> None:
    assert split_in_batches([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
    assert split_in_batches([], 3) == []


def test_every_batch_is_produced_once_and_written_as_its_own_file(tmp_path) -> None:
    store, calls, progress = RunStore(tmp_path), [], RecordingProgress()
    batched = run_in_batches(list(range(5)), 2, _produce(calls), store=store, progress=progress, stage="work")
    assert calls == [0, 1, 2]
    assert batched.batch_names == [batch_file_name(0), batch_file_name(1), batch_file_name(2)]
    assert (batched.batches_generated, batched.items_generated) == (3, 5)
    assert list(store.read_jsonl(batch_file_name(2))) == [{"item": 4, "batch": 2}]
    assert ("work", 5) in progress.stages and progress.done_by_stage["work"] == 5


def test_a_stopped_run_resumes_with_the_missing_batches_only(tmp_path) -> None:
    store, calls = RunStore(tmp_path), []
    with pytest.raises(RunCancelled):
        run_in_batches(
            list(range(6)), 2, _produce(calls), store=store, progress=RecordingProgress(cancel_after=2), stage="work"
        )
    assert calls == [0]
    first_file = store.path(batch_file_name(0)).read_bytes()

    calls.clear()
    progress = RecordingProgress()
    batched = run_in_batches(list(range(6)), 2, _produce(calls), store=store, progress=progress, stage="work")
    assert calls == [1, 2] and batched.batches_generated == 2 and batched.items_generated == 4
    assert store.path(batch_file_name(0)).read_bytes() == first_file
    assert any("resuming: 1 of 3 batches already finished" in line for line in progress.messages)
    assert progress.done_by_stage["work"] == 6


def test_a_finished_run_produces_nothing(tmp_path) -> None:
    store, calls = RunStore(tmp_path), []
    run_in_batches([1, 2, 3], 2, _produce(calls), store=store, progress=RecordingProgress(), stage="work")
    calls.clear()
    batched = run_in_batches([1, 2, 3], 2, _produce(calls), store=store, progress=RecordingProgress(), stage="work")
    assert calls == [] and batched.batches_generated == 0


def test_batch_files_can_live_in_another_folder(tmp_path) -> None:
    store = RunStore(tmp_path)
    run_in_batches(
        [1],
        1,
        _produce([]),
        store=store,
        progress=RecordingProgress(),
        stage="work",
        batch_name=lambda index: batch_file_name(index, folder="judgments/a"),
    )
    assert store.exists("judgments/a/batch-000000.jsonl")
