"""Aggregation training data: groups from each input layout, the target rules, rows the SFT trainer accepts."""
from __future__ import annotations

import json

import pytest

from pipelines.aft import AggregationDataConfig, AggregationDataInputs, run_aggregation_data
from pipelines.aft.data import prepare_examples, response_groups
from pipelines.aft.prompts import AGG_TEMPLATE, PROPOSER_SYSTEM
from pipelines.common.progress import RecordingProgress
from pipelines.common.store import RunStore
from pipelines.errors import InvalidConfigError, InvalidInputError
from pipelines.llm.loader import LocalBackends
from pipelines.training.examples import load_sft_examples

AGGREGATOR = {"path": "aggregator"}
"""The aggregator model's spec in these tests; `_backends` hands it the tiny backend."""


def _backends(tmp_path, backend=None) -> LocalBackends:
    return LocalBackends(tmp_path / "models", given={"aggregator": backend} if backend is not None else {})


def _write(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


PAIRS = [
    {"prompt": "What is 2 + 2?", "chosen": "2 + 2 is 4.", "rejected": "2 + 2 is 5."},
    {"prompt": "What is 2 + 2?", "chosen": "It is 4.", "rejected": "2 + 2 is 5."},
    {"prompt": "What is 2 + 2?", "chosen": "2 + 2 is 4.", "rejected": "It is 4."},
    {"prompt": "Name the capital of France.", "chosen": "Paris.", "rejected": "Lyon."},
]


def test_preference_pairs_group_by_prompt_and_the_best_response_wins_most_comparisons():
    groups, layout = response_groups(PAIRS)
    assert layout == "preference" and len(groups) == 2
    arithmetic = groups[0]
    assert arithmetic.responses == ["2 + 2 is 4.", "2 + 2 is 5.", "It is 4."]
    assert arithmetic.scores == [2.0, -2.0, 0.0]  # wins minus losses
    examples, counts = prepare_examples(groups, AggregationDataConfig(target_rule="best_response", shuffle_proposals=False))
    assert examples[0]["target"] == "2 + 2 is 4." and examples[0]["proposals"] == ["2 + 2 is 5.", "It is 4."]
    assert examples[1]["target"] == "Paris." and examples[1]["proposals"] == ["Lyon."]
    assert counts == {"groups": 2, "skipped_too_few_proposals": 0, "examples": 2}


def test_generate_rows_with_scores_and_ultrafeedback_completions_are_read():
    generate_rows = [{"prompt": "Hi?", "responses": ["a", "b", "b", " "], "scores": [0.1, 0.9, 0.9, 1.0]}]
    groups, layout = response_groups(generate_rows)
    assert layout == "responses" and groups[0].responses == ["a", "b"] and groups[0].scores == [0.1, 0.9]
    feedback = [{"instruction": "Hi?", "completions": [{"response": "x", "overall_score": 3}, {"response": "y", "overall_score": 8.5}]}]
    groups, layout = response_groups(feedback)
    assert layout == "completions" and groups[0].scores == [3.0, 8.5]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"prompt": "q", "text": "a"}], "several responses per prompt"),
        ([{"prompt": "q", "responses": "just one"}], "row 1 `responses`"),
        ([{"prompt": "q", "responses": ["a", "b"], "scores": [1]}], "row 1 `scores`"),
        ([{"prompt": "", "responses": ["a", "b"]}], "row 1 `prompt`"),
    ],
)
def test_malformed_sources_are_refused_naming_the_row_and_field(rows, message):
    with pytest.raises(InvalidInputError, match=message.replace("`", ".")):
        response_groups(rows)


def test_best_response_needs_a_ranking(tmp_path):
    source = _write(tmp_path / "gen.jsonl", [{"prompt": "q", "responses": ["a", "b"]}])
    with pytest.raises(InvalidConfigError, match="use target_rule aggregator"):
        run_aggregation_data(
            AggregationDataConfig(target_rule="best_response"),
            AggregationDataInputs(source_path=source),
            _backends(tmp_path),
            RunStore(tmp_path / "run"),
            RecordingProgress(),
        )


def test_best_response_rows_are_sft_rows_in_the_inference_format(tmp_path):
    source = _write(tmp_path / "pairs.jsonl", PAIRS)
    config = AggregationDataConfig(target_rule="best_response", plain_rows=True)
    store = RunStore(tmp_path / "run")
    backends = _backends(tmp_path)
    result = run_aggregation_data(config, AggregationDataInputs(source_path=source), backends, store, RecordingProgress())
    assert backends.loaded == []  # a rule-based target needs no model
    (artifact,) = result.artifacts
    assert (artifact.name, artifact.kind) == ("aggregation sft", "sft")
    assert (result.summary["aggregation_rows"], result.summary["plain_rows"], result.summary["rows"]) == (2, 2, 4)
    assert result.summary["groups · groups"] == 2 and result.summary["groups · layout"] == "preference"
    rows = list(store.read_jsonl("aggregation_sft.jsonl"))
    aggregation, plain = rows[0], rows[1]
    system, user, assistant = aggregation["messages"]
    assert system["role"] == "system" and system["content"].startswith(AGG_TEMPLATE + "\n1. ")
    assert all(f"{i}. {p}" in system["content"] for i, p in enumerate(aggregation["proposals"], start=1))
    assert "2 + 2 is 4." not in aggregation["proposals"]  # the target is not among its own drafts
    assert (user, assistant) == ({"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "2 + 2 is 4."})
    assert plain["messages"][0] == {"role": "system", "content": PROPOSER_SYSTEM} and plain["row_kind"] == "plain"
    # The training layer reads the artifact as it is: the messages layout, the target as the completion.
    examples = load_sft_examples(artifact.jsonl_path)
    assert len(examples) == 4 and examples[0].completion == "2 + 2 is 4." and examples[0].prompt == [system, user]
    assert load_sft_examples(artifact.parquet_path)[0] == examples[0]


@pytest.fixture(scope="module")
def tiny_backend(tiny_model_dir):
    from pipelines.llm.transformers_backend import TransformersBackend

    backend = TransformersBackend(tiny_model_dir, device="cpu", torch_threads=1)
    yield backend
    backend.close()


def test_the_aggregator_rule_has_a_model_write_targets_and_resumes_by_batch(tmp_path, tiny_backend):
    rows = [{"prompt": f"Question {i}?", "responses": [f"draft {i}a", f"draft {i}b", f"draft {i}c"]} for i in range(5)]
    source = _write(tmp_path / "gen.jsonl", rows)
    config = AggregationDataConfig.from_dict({"aggregator": {"max_tokens": 6, "temperature": 0.7}, "batch_size": 2, "seed": 3})
    backends = _backends(tmp_path, tiny_backend)
    with pytest.raises(InvalidConfigError, match="needs a model"):
        run_aggregation_data(
            config, AggregationDataInputs(source_path=source), backends, RunStore(tmp_path / "none"), RecordingProgress()
        )
    inputs = AggregationDataInputs(source_path=source, model=AGGREGATOR)
    store = RunStore(tmp_path / "run")
    from pipelines.errors import RunCancelled

    with pytest.raises(RunCancelled):
        run_aggregation_data(config, inputs, backends, store, RecordingProgress(cancel_after=2))
    kept = store.path("data-batches", "batch-000000.jsonl").read_bytes()
    result = run_aggregation_data(config, inputs, backends, store, RecordingProgress())
    assert backends.loaded == ["aggregator", "aggregator"]  # once per attempt
    assert result.summary["batches_generated_this_attempt"] == 2
    assert store.path("data-batches", "batch-000000.jsonl").read_bytes() == kept
    made = list(store.read_jsonl("aggregation_sft.jsonl"))
    assert result.summary["aggregation_rows"] + result.summary["groups · skipped_empty_target"] == 5
    for row in made:
        assert row["target_rule"] == "aggregator" and row["target_source"].startswith("aggregation by ")
        assert sorted(row["proposals"]) == sorted(rows[int(row["prompt"].split()[1][:-1])]["responses"])
        assert row["messages"][-1] == {"role": "assistant", "content": row["target"]} and row["target"].strip()


def test_sft_on_aggregation_rows_trains_the_tiny_model(tmp_path, tiny_model_dir):
    from pipelines.training.arguments import TrainingArgs
    from pipelines.training.config import SFTConfig
    from pipelines.training.sft import run_sft

    source = _write(tmp_path / "pairs.jsonl", PAIRS)
    data = run_aggregation_data(
        AggregationDataConfig(target_rule="best_response"),
        AggregationDataInputs(source_path=source),
        _backends(tmp_path),
        RunStore(tmp_path / "data"),
        RecordingProgress(),
    )
    training = TrainingArgs.from_dict(
        {"max_steps": 2, "per_device_batch_size": 2, "learning_rate": 5e-3, "save_steps": 2, "max_length": 320,
         "max_prompt_length": 288, "optimizer": "adamw", "warmup_ratio": 0.0, "device": "cpu", "torch_threads": 1}
    )
    progress = RecordingProgress()
    result = run_sft(SFTConfig(training=training), tiny_model_dir, data.artifacts[0].jsonl_path, RunStore(tmp_path / "train"), progress)
    assert result.steps == 2
    assert [row["loss"] for row in progress.metric_rows if "loss" in row]
