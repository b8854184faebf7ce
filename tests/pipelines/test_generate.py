"""The generate pipeline on a tiny random model: rows, resume after a stop, determinism, bad input."""
from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from pipelines.common.progress import RecordingProgress
from pipelines.common.prompts import PROMPTS_FILE, write_prompts
from pipelines.common.store import RunStore
from pipelines.errors import InvalidConfigError, InvalidInputError, RunCancelled
from pipelines.generate import GenerateConfig, GenerateInputs, run_generate
from pipelines.llm.loader import LocalBackends
from pipelines.llm.types import SamplingParams

INPUTS = GenerateInputs(model={"path": "tiny"})


@pytest.fixture(scope="module")
def tiny_backend(tiny_model_dir):
    from pipelines.llm.transformers_backend import TransformersBackend

    backend = TransformersBackend(tiny_model_dir, device="cpu")
    yield backend
    backend.close()


@pytest.fixture
def backends(tmp_path, tiny_backend) -> LocalBackends:
    return LocalBackends(tmp_path / "models", given={"tiny": tiny_backend})


def _store_with_prompts(tmp_path, count: int) -> RunStore:
    store = RunStore(tmp_path / "run")
    write_prompts(store, ({"prompt_id": f"p{i}", "prompt": f"Question number {i}?"} for i in range(count)))
    return store


CONFIG = GenerateConfig(sampling=SamplingParams(n=2, max_tokens=6, temperature=1.0, seed=7), batch_size=3)


def test_every_prompt_gets_n_answers_in_jsonl_and_parquet(tmp_path, backends):
    store = _store_with_prompts(tmp_path, 7)
    progress = RecordingProgress()
    result = run_generate(CONFIG, INPUTS, backends, store, progress)

    (artifact,) = result.artifacts
    assert (artifact.name, artifact.kind) == ("generations", "generations")
    rows = [json.loads(line) for line in artifact.jsonl_path.read_text().splitlines()]
    assert [row["prompt_id"] for row in rows] == [f"p{i}" for i in range(7)]
    assert all(len(row["responses"]) == 2 and len(row["completion_tokens"]) == 2 for row in rows)
    assert all(0 < tokens <= 6 for row in rows for tokens in row["completion_tokens"])
    assert pq.read_table(artifact.parquet_path).num_rows == 7
    assert set(result.summary) == {"rows", "completion_tokens", "tokens_per_second", "batches_generated_this_attempt"}
    assert result.summary["rows"] == 7 and result.summary["batches_generated_this_attempt"] == 3
    assert result.summary["completion_tokens"] == sum(sum(row["completion_tokens"]) for row in rows)
    assert ("generate", 7) in progress.stages and progress.done_by_stage["generate"] == 7


def test_output_loads_with_datasets(tmp_path, backends):
    import datasets

    (artifact,) = run_generate(CONFIG, INPUTS, backends, _store_with_prompts(tmp_path, 4), RecordingProgress()).artifacts
    from_json = datasets.load_dataset("json", data_files=str(artifact.jsonl_path), split="train")
    from_parquet = datasets.load_dataset("parquet", data_files=str(artifact.parquet_path), split="train")
    assert from_json.num_rows == from_parquet.num_rows == 4
    assert from_parquet[0]["prompt_id"] == "p0"


def test_a_cancelled_run_resumes_without_redoing_finished_batches_and_matches_an_uninterrupted_run(tmp_path, backends):
    interrupted = _store_with_prompts(tmp_path / "a", 8)
    with pytest.raises(RunCancelled):
        run_generate(CONFIG, INPUTS, backends, interrupted, RecordingProgress(cancel_after=3))
    finished_before = sorted(p.name for p in interrupted.path("batches").iterdir())
    assert finished_before == ["batch-000000.jsonl"]
    first_batch_mtime = interrupted.path("batches", "batch-000000.jsonl").stat().st_mtime_ns

    resumed = run_generate(CONFIG, INPUTS, backends, interrupted, RecordingProgress())
    assert resumed.summary["batches_generated_this_attempt"] == 2
    assert interrupted.path("batches", "batch-000000.jsonl").stat().st_mtime_ns == first_batch_mtime

    uninterrupted = run_generate(CONFIG, INPUTS, backends, _store_with_prompts(tmp_path / "b", 8), RecordingProgress())
    assert resumed.artifacts[0].jsonl_path.read_text() == uninterrupted.artifacts[0].jsonl_path.read_text()


def test_a_rerun_with_every_batch_on_disk_loads_no_model(tmp_path, tiny_backend):
    store = _store_with_prompts(tmp_path, 4)
    run_generate(CONFIG, INPUTS, LocalBackends(tmp_path / "models", given={"tiny": tiny_backend}), store, RecordingProgress())

    rerun_backends = LocalBackends(tmp_path / "models", given={"tiny": tiny_backend})
    rerun = run_generate(CONFIG, INPUTS, rerun_backends, store, RecordingProgress())
    assert rerun_backends.loaded == []
    assert rerun.summary["rows"] == 4 and rerun.summary["batches_generated_this_attempt"] == 0


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"prompt_id": "a", "prompt": "x"}', '{"prompt_id": "a", "prompt": "y"}'], "line 2: duplicate prompt_id 'a'"),
        (['{"prompt_id": "a", "prompt": ""}'], "line 1: needs `prompt_id` and a non-empty `prompt`"),
        (['{"prompt_id": "a", "prompt": "x"}', "{broken"], "line 2: not valid JSON"),
        ([], "no prompts to answer"),
    ],
)
def test_bad_prompt_files_are_named(tmp_path, backends, lines, message):
    store = RunStore(tmp_path)
    store.path(PROMPTS_FILE).write_text("\n".join(lines))
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(").replace("`", "`")):
        run_generate(CONFIG, INPUTS, backends, store, RecordingProgress())


def test_config_round_trips_and_rejects_unknown_fields():
    assert GenerateConfig.from_dict(CONFIG.to_dict()) == CONFIG
    with pytest.raises(InvalidConfigError, match="unknown generate config field"):
        GenerateConfig.from_dict({"batchsize": 3})
    with pytest.raises(InvalidConfigError, match="batch_size"):
        GenerateConfig(batch_size=0)
