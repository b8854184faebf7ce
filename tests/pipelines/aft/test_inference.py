"""Propose-and-aggregate on a model: every layer kept in the rows, the aggregator sees the numbered drafts, resume."""
from __future__ import annotations

import pytest

from pipelines.aft import AftConfig, AftInputs, run_aft
from pipelines.aft.prompts import AGG_TEMPLATE, PROPOSER_SYSTEM
from pipelines.common.batches import batch_file_name
from pipelines.common.progress import RecordingProgress
from pipelines.common.prompts import PROMPTS_FILE
from pipelines.common.store import RunStore
from pipelines.errors import RunCancelled
from pipelines.llm.loader import LocalBackends

PROMPTS = ["Name a primary colour.", "What is 3 + 4?", "Say hello in French.", "Name a fruit.", "What is ice?"]


def _store(tmp_path, prompts=PROMPTS) -> RunStore:
    store = RunStore(tmp_path / "run")
    store.write_jsonl(({"prompt_id": f"p{i}", "prompt": text} for i, text in enumerate(prompts)), PROMPTS_FILE)
    return store


@pytest.fixture(scope="module")
def tiny_backend(tiny_model_dir):
    from pipelines.llm.transformers_backend import TransformersBackend

    backend = TransformersBackend(tiny_model_dir, device="cpu", torch_threads=1)
    yield backend
    backend.close()


INPUTS = AftInputs(model={"path": "tiny"})


@pytest.fixture
def backends(tmp_path, tiny_backend) -> LocalBackends:
    return LocalBackends(tmp_path / "models", given={"tiny": tiny_backend})


def _small(**overrides) -> AftConfig:
    values = {
        "proposal_params": {"n": 3, "max_tokens": 4},
        "aggregation_params": {"n": 3, "max_tokens": 4},
        "hidden_layer": 1,
        "batch_size": 2,
        "seed": 7,
        **overrides,
    }
    return AftConfig.from_dict(values)


def _assert_network_rows(rows, n=3):
    for row in rows:
        proposals, hidden, final = row["layers"]
        assert [layer["role"] for layer in row["layers"]] == ["proposal", "aggregation", "final"]
        assert len(row["proposals"]) == n and len(row["hidden_layers"]) == 1 and len(row["hidden_layers"][0]) == n
        assert isinstance(row["final_answer"], str) and row["responses"] == [row["final_answer"]]
        assert proposals["system"] == PROPOSER_SYSTEM
        # Each aggregation layer's system message is the instruction plus the previous layer, numbered.
        expected_hidden = AGG_TEMPLATE + "\n" + "\n".join(f"{i}. {text}" for i, text in enumerate(row["proposals"], start=1))
        expected_final = AGG_TEMPLATE + "\n" + "\n".join(f"{i}. {text}" for i, text in enumerate(row["hidden_layers"][0], start=1))
        assert hidden["system"] == expected_hidden and final["system"] == expected_final
        assert len(row["completion_tokens_per_layer"]) == 3 and row["generations"] == 2 * n + 1
        assert row["completion_tokens"] == sum(row["completion_tokens_per_layer"]) > 0
        # The aggregator reads every draft, so its prompt is longer than the proposer's.
        assert hidden["prompt_tokens"] > proposals["prompt_tokens"]


def test_hidden_layer_1_n_3_keeps_proposals_hidden_aggregations_and_the_final_answer(tmp_path, backends):
    store = _store(tmp_path, PROMPTS[:3])
    result = run_aft(_small(), INPUTS, backends, store, RecordingProgress())
    rows = list(store.read_jsonl("aggregations.jsonl"))
    (artifact,) = result.artifacts
    assert (artifact.name, artifact.kind) == ("aggregations", "aggregations")
    assert result.summary["prompts"] == 3 and [row["prompt_id"] for row in rows] == ["p0", "p1", "p2"]
    _assert_network_rows(rows)
    assert result.summary["generations"] == 3 * 7
    # The run page's flat table: one line per layer's completion tokens, adding up to the total.
    per_layer = {key: value for key, value in result.summary.items() if key.startswith("completion tokens · ")}
    assert set(per_layer) == {f"completion tokens · {name}" for name in ("proposals", "aggregation 1", "final aggregation")}
    assert sum(per_layer.values()) == result.summary["completion_tokens"]
    assert not any(isinstance(value, dict) for value in result.summary.values())
    assert artifact.parquet_path.is_file()


def test_the_baseline_mode_draws_one_plain_sample_per_prompt(tmp_path, backends):
    store = _store(tmp_path, PROMPTS[:2])
    result = run_aft(_small(mode="single"), INPUTS, backends, store, RecordingProgress())
    rows = list(store.read_jsonl("aggregations.jsonl"))
    assert [len(row["layers"]) for row in rows] == [1, 1]
    assert all(row["generations"] == 1 and row["responses"] == row["proposals"] for row in rows)
    assert result.summary["mode"] == "single" and result.artifacts[0].name == "single samples"


def test_a_yaml_in_the_original_format_runs_unchanged(tmp_path, backends):
    yaml_text = """\
model_name: /path/to/any/model

proposal_params:
    temperature: 0.7
    top_p: 0.95
    max_tokens: 3
    n: 2

aggregation_params:
    temperature: 0.7
    top_p: 0.95
    max_tokens: 3
    n: 2

vllm_seed: 2024

hidden_layer: 1  # Number of aggregation layers, excluding the final layer
final_aggregation: True # Indicates whether this is the final aggregation step
"""
    store = _store(tmp_path, PROMPTS[:1])
    run_aft(AftConfig.from_yaml(yaml_text), INPUTS, backends, store, RecordingProgress())
    (row,) = store.read_jsonl("aggregations.jsonl")
    assert row["layer_names"] == ["proposals", "aggregation 1", "final aggregation"]
    assert [len(layer["responses"]) for layer in row["layers"]] == [2, 2, 1]


def test_a_cancelled_run_resumes_without_regenerating_finished_batches(tmp_path, backends):
    store = _store(tmp_path)
    config = _small()
    with pytest.raises(RunCancelled):
        run_aft(config, INPUTS, backends, store, RecordingProgress(cancel_after=2))
    assert store.exists(batch_file_name(0)) and not store.exists(batch_file_name(1))
    first_batch = store.path(batch_file_name(0)).read_bytes()

    progress = RecordingProgress()
    result = run_aft(config, INPUTS, backends, store, progress)
    assert result.summary["batches_generated_this_attempt"] == 2  # batches 1 and 2; batch 0 was kept
    assert store.path(batch_file_name(0)).read_bytes() == first_batch
    assert any("resuming: 1 of 3 batches" in message for message in progress.messages)
    rows = list(store.read_jsonl("aggregations.jsonl"))
    assert [row["prompt_id"] for row in rows] == [f"p{i}" for i in range(5)]

    # A rerun of the finished run (a resume after the export) loads no model.
    idle = LocalBackends(tmp_path / "models")
    assert run_aft(config, INPUTS, idle, store, RecordingProgress()).summary["prompts"] == 5 and idle.loaded == []

    # Per-batch seeds: the resumed batches hold what an uninterrupted run draws.
    fresh = _store(tmp_path / "fresh")
    run_aft(config, INPUTS, backends, fresh, RecordingProgress())
    assert list(fresh.read_jsonl("aggregations.jsonl"))[2]["layers"] == rows[2]["layers"]


@pytest.mark.slow
def test_real_model_hidden_layer_1_n_3_aggregates_numbered_drafts(tmp_path, embedded_model_dir):
    from pipelines.llm.transformers_backend import TransformersBackend

    backend = TransformersBackend(embedded_model_dir, device="cpu", torch_threads=1)
    try:
        store = _store(tmp_path, ["What is the capital of France? Answer in one sentence."])
        config = _small(proposal_params={"n": 3, "max_tokens": 24}, aggregation_params={"n": 3, "max_tokens": 24})
        result = run_aft(
            config, INPUTS, LocalBackends(tmp_path / "models", given={"tiny": backend}), store, RecordingProgress()
        )
    finally:
        backend.close()
    (row,) = store.read_jsonl("aggregations.jsonl")
    _assert_network_rows([row])
    # A real model writes real drafts, and the aggregator's system message holds them all, numbered.
    assert all(text.strip() for text in row["proposals"])
    assert all(f"{i}. {text}" in row["layers"][1]["system"] for i, text in enumerate(row["proposals"], start=1))
    assert row["final_answer"].strip()
    assert any("Paris" in text for text in row["proposals"] + row["hidden_layers"][0] + [row["final_answer"]])
    assert result.summary["completion_tokens_per_answer"] == row["completion_tokens"]
